#!/usr/bin/env node
// Runs every compiled test file (*.test.js under packages/*/dist) with Node's test runner.
// Node 20's runner takes no globs, so the files are listed here.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

function find(dir, out = []) {
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory() && e.name !== 'node_modules') find(p, out);
    else if (e.isFile() && e.name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const filter = process.argv.slice(2);
let files = fs
  .readdirSync('packages')
  .flatMap((p) => find(path.join('packages', p, 'dist')))
  .sort();
if (filter.length > 0) files = files.filter((f) => filter.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files found: run npm run build first');
  process.exit(1);
}
// Most tests wait on timers (TTLs, long polls), not on the CPU: run several files at once. The
// cluster end-to-end files assert time bounds across several server processes (a registration
// visible on another node within 1 s, an expiry 3 × ttl after the last heartbeat, a pause that
// outlasts a deadline): they run after the others, alone, so that what they measure is Muster on
// this machine's 2 cores, not three other test files competing for them.
const alone = files.filter((f) =>
  ['cluster.test.js', 'cluster-faults.test.js'].some((name) => f.endsWith(path.join('dist', 'test', name))),
);
// The console's tests each drive a Chromium: run beside the timing tests they would take the
// cores those measure, so they run after them, one at a time.
const browser = files.filter((f) => f.includes(path.join('dist', 'test', 'console') + path.sep));
// The packed-packages test spends minutes in npm install (it compiles better-sqlite3): it starts
// first, so that the other files run beside it instead of after it.
const first = (f) => (f.endsWith(path.join('dist', 'test', 'pack.test.js')) ? 0 : 1);
const together = files.filter((f) => !alone.includes(f) && !browser.includes(f)).sort((a, b) => first(a) - first(b));
let status = 0;
for (const [concurrency, group] of [
  [4, together],
  [1, browser],
  [1, alone],
]) {
  if (group.length === 0) continue;
  const r = spawnSync(
    process.execPath,
    ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...group],
    { stdio: 'inherit' },
  );
  status ||= r.status ?? 1;
}
process.exit(status);
