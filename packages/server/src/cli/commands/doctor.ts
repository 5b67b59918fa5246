import fs from 'node:fs';
import type { Command } from 'commander';
import { diagnose, type Finding } from '../doctor-checks.js';
import { json, print } from '../format.js';
import { context, run } from './common.js';

const LABEL: Record<Finding['status'], string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' };

export function doctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('check a running server or cluster and say in plain words what is wrong (exit 1 when something is)')
    .option('--max-clock-skew <ms>', 'clocks of the nodes may differ by at most this many ms', (v) => Number(v), 1000)
    .action(
      run(async (opts: { maxClockSkew: number }, cmd: Command) => {
        const { client, output } = context(cmd);
        const ca = cmd.optsWithGlobals<{ ca?: string }>().ca;
        const findings = await diagnose(client, {
          maxClockSkewMs: opts.maxClockSkew,
          ...(ca ? { ca: fs.readFileSync(ca) } : {}),
        });
        const failed = findings.filter((f) => f.status === 'fail').length;
        const warned = findings.filter((f) => f.status === 'warn').length;
        if (output === 'json') print(json({ server: client.server, ok: failed === 0, findings }));
        else {
          const width = Math.max(...findings.map((f) => f.check.length));
          print(`muster doctor: ${client.server}`);
          for (const f of findings) {
            print(`  ${LABEL[f.status]}  ${f.check.padEnd(width)}  ${f.message}`);
            if (f.fix && f.status !== 'ok') print(`        ${' '.repeat(width)}  -> ${f.fix}`);
          }
          print(
            failed > 0
              ? `${failed} problem(s)${warned ? ` and ${warned} warning(s)` : ''} found.`
              : warned > 0
                ? `No problem found; ${warned} warning(s).`
                : 'No problem found.',
          );
        }
        if (failed > 0) process.exitCode = 1;
      }),
    );
}
