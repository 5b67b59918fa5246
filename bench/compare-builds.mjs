#!/usr/bin/env node
// Two or more builds of Muster (each a checkout with `npm install` done) side by side on the hot
// paths, in alternating rounds, for "did this change make it slower?":
//   discovery10  GET of a 10-instance service (the pre-serialized answer)
//   heartbeat    PUT heartbeat with the instance's token, round robin over 10,000 instances
//   register     a durable registration of a new endpoint per request (SQLite synchronous=full)
//
//   node bench/compare-builds.mjs [--rounds 5] [--out file.md] [scenario ...] -- DIR [DIR ...]
//
// The machine's speed moves by more than the differences looked for, so each round runs every
// build once, in an order that alternates from round to round, and a build is judged by the median
// over rounds of its ratio to the first build in the same round. Each server is pinned to core 1
// and this process (autocannon) to core 0; only 2xx answers count; per-address write limits are off.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cannon } from './lib/cannon.mjs';
import { createClient, newHostRegistrations, registerMany, singleHeartbeats } from './lib/client.mjs';
import { repoRoot, withMuster } from './lib/server.mjs';

const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const opts = dash < 0 ? argv : argv.slice(0, dash);
const dirs = dash < 0 ? [repoRoot] : argv.slice(dash + 1).map((d) => path.resolve(d));
const take = (flag, fallback) => {
  const at = opts.indexOf(flag);
  return at < 0 ? fallback : opts.splice(at, 2)[1];
};
const rounds = Number(take('--rounds', 5));
const out = take('--out', undefined);
const chosen = opts.length > 0 ? opts : ['discovery10', 'heartbeat', 'register'];

const pinned = os.cpus().length >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0;
if (pinned) spawnSync('taskset', ['-cp', '0', String(process.pid)], { stdio: 'ignore' });
const cpu = pinned ? 1 : undefined;

/** Each scenario: a fresh server of `dir`, its data set up, one measured autocannon run; 2xx/s. */
const SCENARIOS = {
  async discovery10(dir) {
    return withMuster({ label: 'discovery10', dir, cpu }, async (server) => {
      const client = createClient(server.url);
      try {
        await registerMany(client, 'disc', 10);
        return await cannon({
          url: server.url,
          pid: server.pid,
          path: '/v1/namespaces/default/services/disc/instances',
        });
      } finally {
        client.close();
      }
    });
  },
  async heartbeat(dir) {
    return withMuster({ label: 'heartbeat', dir, cpu }, async (server) => {
      const client = createClient(server.url);
      try {
        const list = await registerMany(client, 'hb', 10_000);
        return await cannon({ url: server.url, pid: server.pid, requests: singleHeartbeats(list) });
      } finally {
        client.close();
      }
    });
  },
  async register(dir) {
    return withMuster({ label: 'register', dir, cpu }, (server) =>
      cannon({
        url: server.url,
        pid: server.pid,
        path: '/v1/namespaces/default/services/reg/instances',
        requests: newHostRegistrations(),
        headers: { 'content-type': 'application/json' },
      }),
    );
  },
};
for (const s of chosen)
  if (!SCENARIOS[s]) throw new Error(`unknown scenario ${s}; known: ${Object.keys(SCENARIOS).join(', ')}`);

const commitOf = (dir) =>
  spawnSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const loadAvg = () => os.loadavg()[0].toFixed(1);

// results[scenario][build] = [{ rps, p99 }] per round
const results = Object.fromEntries(chosen.map((s) => [s, dirs.map(() => [])]));
const loads = [];
for (let r = 0; r < rounds; r++) {
  const order = dirs.map((_, i) => i);
  if (r % 2 === 1) order.reverse();
  loads.push(loadAvg());
  for (const s of chosen) {
    for (const i of order) {
      const m = await SCENARIOS[s](dirs[i]);
      results[s][i].push({ rps: m.rps, p99: m.p99 });
      console.log(`round ${r + 1}/${rounds} ${s} ${commitOf(dirs[i])}: ${Math.round(m.rps)} 2xx/s, p99 ${m.p99} ms`);
    }
  }
}

const lines = [
  '# Builds compared in alternating rounds',
  '',
  `- date: ${new Date().toISOString()}, node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model.trim()}`,
  `- command: \`node bench/compare-builds.mjs --rounds ${rounds} ${chosen.join(' ')} -- ${dirs.map((d) => path.relative(process.cwd(), d) || '.').join(' ')}\``,
  `- builds: ${dirs.map((d, i) => `${i === 0 ? 'baseline ' : ''}${commitOf(d)}`).join(', ')}; server on core ${cpu ?? 'any'}, load generator on core ${pinned ? 0 : 'any'}`,
  `- load average (1 min) at the start of each round: ${loads.join(', ')}`,
  '',
  '| scenario | build | 2xx/s per round | median | p99 ms (median) | ratio to baseline (median of per-round ratios) |',
  '| --- | --- | --- | ---: | ---: | ---: |',
];
for (const s of chosen) {
  dirs.forEach((d, i) => {
    const runs = results[s][i];
    const ratios = runs.map((x, r) => x.rps / results[s][0][r].rps);
    lines.push(
      `| ${s} | ${commitOf(d)} | ${runs.map((x) => Math.round(x.rps)).join(', ')} | ${Math.round(median(runs.map((x) => x.rps)))} | ${median(runs.map((x) => x.p99))} | ${i === 0 ? '1' : `${median(ratios).toFixed(2)} (${ratios.map((x) => x.toFixed(2)).join(', ')})`} |`,
    );
  });
}
const text = lines.join('\n') + '\n';
console.log('\n' + text);
if (out) fs.writeFileSync(out, text);
