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
let files = fs.readdirSync('packages').flatMap((p) => find(path.join('packages', p, 'dist'))).sort();
if (filter.length > 0) files = files.filter((f) => filter.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files found: run npm run build first');
  process.exit(1);
}
// Most tests wait on timers (TTLs, long polls), not on the CPU: run several files at once.
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=4', '--test-reporter=spec', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
