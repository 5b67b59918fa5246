#!/usr/bin/env node
// Summarizes a V8 .cpuprofile (from BENCH_CPU_PROF=dir node bench/run.mjs ...): self time by
// function and by package, and total (inclusive) time of Muster's own functions, which is what
// tells a hot path apart from a hot leaf.
//   node bench/profile-summary.mjs dir/memory-123.cpuprofile [top=25]
import fs from 'node:fs';

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/profile-summary.mjs FILE.cpuprofile [top]');
  process.exit(2);
}
const top = Number(topArg ?? 25);
const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// Sample counts weighted by the time delta that follows each sample.
const selfUs = new Map();
for (let i = 0; i < prof.samples.length; i++) {
  const id = prof.samples[i];
  selfUs.set(id, (selfUs.get(id) ?? 0) + (prof.timeDeltas[i + 1] ?? 0));
}
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

const where = (cf) => {
  const url = cf.url.replace(/^file:\/\//, '');
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1];
  if (url.includes('/packages/'))
    return 'muster:' + url.slice(url.indexOf('/packages/') + 10).replace('/dist/src/', '/');
  if (url.startsWith('node:') || url === '')
    return cf.functionName.startsWith('(') ? cf.functionName : 'node internals';
  return url;
};
const label = (cf) =>
  `${cf.functionName || '(anonymous)'} ${where(cf)}${cf.lineNumber >= 0 ? `:${cf.lineNumber + 1}` : ''}`;

const fnSelf = new Map();
const pkgSelf = new Map();
const fnTotal = new Map();
for (const [id, us] of selfUs) {
  const n = byId.get(id);
  fnSelf.set(label(n.callFrame), (fnSelf.get(label(n.callFrame)) ?? 0) + us);
  const pkg = where(n.callFrame).replace(/^muster:.*/, 'muster (own code)');
  pkgSelf.set(pkg, (pkgSelf.get(pkg) ?? 0) + us);
  // Inclusive time: once per distinct frame on the stack.
  const seen = new Set();
  for (let p = id; p !== undefined; p = parent.get(p)) {
    const cf = byId.get(p).callFrame;
    if (!cf.url.includes('/packages/')) continue;
    const l = label(cf);
    if (seen.has(l)) continue;
    seen.add(l);
    fnTotal.set(l, (fnTotal.get(l) ?? 0) + us);
  }
}

const pct = (us) => `${((us / total) * 100).toFixed(1).padStart(5)} %`;
const print = (title, m, n) => {
  console.log(`\n${title}`);
  for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${pct(us)}  ${k}`);
};
console.log(`${file}: ${(total / 1e6).toFixed(2)} s sampled`);
print('self time by package', pkgSelf, 15);
print('self time by function', fnSelf, top);
print('total time of Muster functions', fnTotal, top);
