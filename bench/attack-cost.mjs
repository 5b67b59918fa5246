#!/usr/bin/env node
// What three attacks on a registry cost it, for one or more builds of Muster side by side (each a
// repository checkout with `npm install` done), in alternating rounds:
//   nested      the server's CPU time per request of 1 MB of '[' (anonymous: POST /v1/tokens and a
//               registration), and discovery latency while 3 clients send such bodies in a loop
//   verifyStall how long an honest provider waits for its verification check while another
//               caller has registered 800 endpoints that accept connections and never answer
//
//   node bench/attack-cost.mjs [--rounds 3] [scenario ...] -- DIR [DIR ...]   (default DIR: this repository)
//
// Each server runs pinned to CPU 1 and the load to CPU 0 (taskset) on a machine with 2 or more.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { verificationProof } from '@muster/api';

const here = path.dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const opts = dash < 0 ? argv : argv.slice(0, dash);
const dirs = dash < 0 ? [path.resolve(here, '..')] : argv.slice(dash + 1).map((d) => path.resolve(d));
const roundsAt = opts.indexOf('--rounds');
const rounds = roundsAt < 0 ? 3 : Number(opts.splice(roundsAt, 2)[1]);
const scenarios = opts.length > 0 ? opts : ['nested', 'verifyStall'];
const pinned = os.cpus().length >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0;
if (pinned) spawnSync('taskset', ['-cp', '0', String(process.pid)], { stdio: 'ignore' });

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `muster server` of a checkout, auth on (the default), with the flags it knows of those given. */
async function startServer(dir, flags = {}) {
  const bin = path.join(dir, 'bin', 'muster.js');
  const help = spawnSync(process.execPath, [bin, 'server', '--help'], { encoding: 'utf8' }).stdout;
  const [httpPort, grpcPort] = [await freePort(), await freePort()];
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'muster-attack-'));
  const args = [
    bin,
    'server',
    '--http-port',
    httpPort,
    '--grpc-port',
    grpcPort,
    '--data-dir',
    dataDir,
    '--log-level',
    'warn',
    '--limits-writes-per-address',
    '0',
  ];
  for (const [flag, value] of Object.entries(flags)) if (help.includes(flag)) args.push(flag, value);
  const cmd = pinned ? ['taskset', ['-c', '1', process.execPath, ...args]] : [process.execPath, args];
  const child = spawn(cmd[0], cmd[1], { stdio: ['ignore', 'ignore', 'pipe'] });
  const url = `http://127.0.0.1:${httpPort}`;
  for (let i = 0; ; i++) {
    if (
      await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    if (i > 600) throw new Error(`${dir}: the server did not start`);
    await sleep(50);
  }
  const admin = fs.readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim();
  // taskset execs the server: the child's pid is the server's.
  const pid = child.pid;
  return {
    url,
    admin,
    cpuMs: () => {
      const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
    },
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const json = async (url, method, body, token) => {
  const r = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: await r.json().catch(() => undefined) };
};
const NESTED = '['.repeat(1_000_000);
const post = (url, body) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then(
    (r) => r.arrayBuffer().then(() => r.status),
    () => 0,
  );
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];

const SCENARIOS = {
  async nested(dir) {
    const s = await startServer(dir);
    try {
      const out = {};
      for (const [label, route] of [
        ['tokens', '/v1/tokens'],
        ['register', '/v1/namespaces/default/services/x/instances'],
      ]) {
        await post(s.url + route, '{}');
        const t0 = s.cpuMs();
        for (let i = 0; i < 40; i++) await post(s.url + route, NESTED);
        out[`cpu ms/request ${label}`] = (s.cpuMs() - t0) / 40;
      }
      await json(`${s.url}/v1/namespaces/default/services/orders/instances`, 'POST', { host: '10.0.0.1', port: 80 });
      const discover = async (ms) => {
        const lat = [];
        for (const end = Date.now() + ms; Date.now() < end;) {
          const t = performance.now();
          await fetch(`${s.url}/v1/namespaces/default/services/orders/instances`).then((r) => r.arrayBuffer());
          lat.push(performance.now() - t);
          await sleep(20);
        }
        return lat;
      };
      const quiet = await discover(2000);
      // The attackers in a process of their own: sharing this one's event loop, their 1 MB bodies
      // would delay the measuring client's own requests.
      const attack = `const b = '['.repeat(1_000_000); for (let i = 0; i < 3; i++) (async () => { for (;;) await fetch(${JSON.stringify(`${s.url}/v1/tokens`)}, { method: 'POST', headers: { 'content-type': 'application/json' }, body: b }).then((r) => r.arrayBuffer(), () => {}); })();`;
      const attackers = spawn(process.execPath, ['-e', attack], { stdio: 'ignore' });
      await sleep(500);
      const loud = await discover(5000);
      attackers.kill('SIGKILL');
      Object.assign(out, {
        'discovery p50 ms quiet': pct(quiet, 50),
        'discovery p50 ms attacked': pct(loud, 50),
        'discovery p99 ms attacked': pct(loud, 99),
      });
      return out;
    } finally {
      await s.stop();
    }
  },

  async verifyStall(dir) {
    const s = await startServer(dir, { '--verification-allow-loopback': 'true' });
    const held = new Set();
    const silent = net.createServer((sock) => {
      held.add(sock);
      sock.on('close', () => held.delete(sock));
    });
    await new Promise((r) => silent.listen(0, '127.0.0.1', r));
    const secret = 'attack-cost-secret-0123456789';
    const provider = http.createServer((req, res) => {
      const q = new URL(req.url, 'http://x').searchParams;
      res.end(verificationProof(secret, q.get('challenge'), q.get('host'), Number(q.get('port'))));
    });
    await new Promise((r) => provider.listen(0, '127.0.0.1', r));
    try {
      for (const name of ['flooded', 'orders'])
        await json(`${s.url}/v1/namespaces/default/services`, 'POST', { name, verification: { secret } }, s.admin);
      const token = async (name) =>
        (await json(`${s.url}/v1/tokens`, 'POST', { name, rules: ['write:default/*'] }, s.admin)).body.secret;
      const [attacker, honest] = [await token('attacker'), await token('honest')];
      const t0 = Date.now();
      let accepted = 0;
      for (let at = 0; at < 800; at += 50) {
        const st = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            json(
              `${s.url}/v1/namespaces/default/services/flooded/instances`,
              'POST',
              { id: `junk-${at + i}`, host: '127.0.0.1', port: silent.address().port, healthCheck: { ttl: 60 } },
              attacker,
            ).then((r) => r.status),
          ),
        );
        accepted += st.filter((x) => x === 201).length;
      }
      const floodMs = Date.now() - t0;
      const reg = await json(
        `${s.url}/v1/namespaces/default/services/orders/instances`,
        'POST',
        { host: '127.0.0.1', port: provider.address().port, healthCheck: { ttl: 60 } },
        honest,
      );
      const started = Date.now();
      let state = reg.body.instance.verification.state;
      while (state !== 'verified' && Date.now() - started < 180_000) {
        await sleep(50);
        state = (await json(`${s.url}/v1/instances/${reg.body.instance.id}`, 'GET')).body.verification.state;
      }
      return {
        'flood ms': floodMs,
        'flood registrations accepted': accepted,
        'honest provider verified after ms': state === 'verified' ? Date.now() - started : '>180000',
      };
    } finally {
      await s.stop();
      for (const sock of held) sock.destroy();
      silent.close();
      provider.close();
    }
  },
};

const results = new Map();
for (let round = 1; round <= rounds; round++) {
  for (const name of scenarios) {
    for (const dir of dirs) {
      const r = await SCENARIOS[name](dir);
      process.stderr.write(`round ${round} ${name} ${dir}: ${JSON.stringify(r)}\n`);
      const key = `${name}\u0000${dir}`;
      if (!results.has(key)) results.set(key, []);
      results.get(key).push(r);
    }
  }
}
const median = (xs) =>
  typeof xs[0] === 'number' ? [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] : xs.join(' / ');
console.log(`| scenario | build | measure | median of ${rounds} rounds | rounds |\n| --- | --- | --- | --- | --- |`);
for (const [key, runs] of results) {
  const [name, dir] = key.split('\u0000');
  for (const measure of Object.keys(runs[0])) {
    const xs = runs.map((r) => r[measure]);
    const fmt = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(1)) : String(v));
    console.log(`| ${name} | ${dir} | ${measure} | ${fmt(median(xs))} | ${xs.map(fmt).join(', ')} |`);
  }
}
