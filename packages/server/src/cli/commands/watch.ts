import type { Command } from 'commander';
import type { DiscoverResponse } from '@muster/api';
import { MusterError } from '@muster/client';
import { print, time } from '../format.js';
import { instanceTable } from '../instance-table.js';
import { context, fail, instanceViewOptions, run, type InstanceViewOptions } from './common.js';

/** Home, then clear the screen: each snapshot replaces the last one, like `watch(1)`. */
const REDRAW = '\x1b[H\x1b[2J';

export function watchCommand(program: Command): void {
  const watch = program
    .command('watch <service>')
    .description('show the instances of a service after every change, until Ctrl-C');
  instanceViewOptions(watch).action(
    run(async (service: string, opts: InstanceViewOptions, cmd: Command) => {
      const { client, output } = context(cmd);
      const tty = process.stdout.isTTY === true && output === 'table';
      const render = (s: DiscoverResponse) => {
        const at = time(new Date().toISOString());
        if (output === 'json') return print(JSON.stringify(s)); // one line per snapshot: easy to pipe into jq
        const header = `${s.namespace}/${s.service}  revision ${s.revision}  at ${at}`;
        const body = instanceTable(s.instances, !opts.trunc);
        if (tty) process.stdout.write(`${REDRAW}${header}  (Ctrl-C to stop)\n\n${body}\n`);
        else print(`# ${header}\n${body}\n`);
      };
      const stream = await client.watch(
        opts.namespace,
        service,
        { status: opts.status, isolated: opts.isolated },
        render,
      );
      const stop = () => stream.close();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const end = await stream.ended;
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      switch (end.reason) {
        case 'closed':
          return;
        case 'server-close':
          fail(new MusterError('UNAVAILABLE', `the server ended the watch (${end.serverReason}): ${end.message}`));
        case 'error':
        case 'disconnected':
          fail(end.error);
      }
    }),
  );
}
