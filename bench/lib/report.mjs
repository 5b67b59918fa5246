import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SETTINGS } from './cannon.mjs';

export const fmtInt = (n) => (n === undefined || !Number.isFinite(n) ? '—' : Math.round(n).toLocaleString('en-US'));
export const fmtMs = (n) => (n === undefined || !Number.isFinite(n) ? '—' : n < 10 ? n.toFixed(2) : n.toFixed(1));
export const fmtRatio = (r) => (r === undefined || !Number.isFinite(r) ? '—' : `${(r * 100).toFixed(0)} %`);
export const fmtBytes = (n) =>
  Math.abs(n) >= 1024 * 1024
    ? `${(n / 1024 / 1024).toFixed(1)} MiB`
    : Math.abs(n) >= 1024
      ? `${(n / 1024).toFixed(1)} KiB`
      : `${Math.round(n)} B`;

/**
 * One line of the table. `target` is { text, met } where met is true, false or undefined (no
 * target); a scenario compared with the ceiling gives `ratioTarget` instead and the runner,
 * which owns the ceiling measurements, fills in ratio and target.
 */
export function row({ scenario, rps, p99, ratio, ratioTarget, target, note = '' }) {
  return { scenario, rps, p99, ratio, ratioTarget, target, note };
}

const verdict = (t) =>
  !t ? '' : t.met === undefined ? `target ${t.text}` : `target ${t.text}: **${t.met ? 'met' : 'MISSED'}**`;

export function markdownTable(rows) {
  const esc = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const lines = ['| scenario | req/s | p99 ms | ratio to ceiling | note |', '| --- | ---: | ---: | ---: | --- |'];
  for (const r of rows) {
    const note = [verdict(r.target), r.note].filter(Boolean).join('; ');
    lines.push(`| ${esc(r.scenario)} | ${fmtInt(r.rps)} | ${fmtMs(r.p99)} | ${fmtRatio(r.ratio)} | ${esc(note)} |`);
  }
  return lines.join('\n');
}

/** Which server was measured: the tree changes under the bench, so a figure needs its commit. */
export function gitRevision(cwd) {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'packages', 'bin'], {
      cwd,
      encoding: 'utf8',
    }).trim();
    return `${head}${dirty ? ' + uncommitted changes in packages/ or bin/' : ''}`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

/** How this run was started, as someone would type it again. */
export function commandLine() {
  const env = Object.entries(process.env)
    .filter(([k]) => k.startsWith('BENCH_'))
    .map(([k, v]) => `${k}=${v}`);
  const args = process.argv.slice(2);
  const cmd =
    process.env.npm_lifecycle_event === 'bench'
      ? ['npm', 'run', 'bench', ...(args.length ? ['--', ...args] : [])]
      : ['node', 'bench/run.mjs', ...args];
  return [...env, ...cmd].join(' ');
}

export function writeResults(file, { rows, ceiling, started, scenarios, notes }) {
  const cpu = os.cpus();
  const md = [
    '# Muster benchmark results',
    '',
    `- date: ${started.toISOString()}`,
    `- node: ${process.version} (${process.platform} ${process.arch})`,
    `- machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${fmtBytes(os.totalmem())} RAM; temp dir ${os.tmpdir()}`,
    `- command: \`${commandLine()}\``,
    `- server: commit ${gitRevision(path.dirname(file))}`,
    `- scenarios: ${scenarios.join(', ')}`,
    `- autocannon: ${SETTINGS.connections} connections, pipelining ${SETTINGS.pipelining}, ${SETTINGS.duration} s measured after ${SETTINGS.warmup} s warm-up, the same for the ceiling and every autocannon scenario`,
    ceiling
      ? `- ceiling (bare node:http, fixed 2 KB JSON, median of the runs in the table): ${fmtInt(ceiling.rps)} req/s, p99 ${fmtMs(ceiling.p99)} ms`
      : '- ceiling: not measured in this run',
    '',
    markdownTable(rows),
    '',
    ...notes.map((n) => `- ${n}`),
    '',
  ].join('\n');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, md);
}
