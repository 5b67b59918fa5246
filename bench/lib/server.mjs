import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { track } from './cleanup.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../..');

export const HOST = '127.0.0.1';

/** Asks the kernel for a free loopback port. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, HOST, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const kebab = (key) =>
  '--' +
  key
    .replace(/\./g, '-')
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .toLowerCase();

/**
 * Runs `muster server` of the checkout `dir` (this one by default) as a child process on a free loopback port with its own temp data dir.
 * Readiness is polled on /readyz: at --log-level warn the "muster is ready" line (info) is not
 * printed, so it cannot be what we wait for.
 */
export async function startMuster({ flags = {}, nodeArgs = [], label = 'muster', dir = repoRoot, cpu } = {}) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'muster-bench-'));
  const port = await freePort();
  // The gRPC API listens too (default port 8091): a port of our own, so a bench never collides
  // with a server someone left running and the gRPC scenarios know where to connect (at
  // --log-level warn the ready line that names it is not printed).
  const grpcPort = flags.grpcPort ?? (await freePort());
  // BENCH_CPU_PROF=dir writes a V8 CPU profile of every server the bench starts, for finding
  // what dominates a scenario (the profile is written when the server exits).
  const prof = process.env.BENCH_CPU_PROF
    ? [
        '--cpu-prof',
        `--cpu-prof-dir=${path.resolve(process.env.BENCH_CPU_PROF)}`,
        `--cpu-prof-name=${label}-${Date.now()}.cpuprofile`,
      ]
    : [];
  const args = [
    ...prof,
    ...nodeArgs,
    path.join(dir, 'bin', 'muster.js'),
    'server',
    '--host',
    HOST,
    '--http-port',
    String(port),
    '--data-dir',
    dataDir,
    '--log-level',
    'warn',
  ];
  // Auth stays on, as by default (client APIs are open on loopback); the per-client write
  // limits are lifted: one load generator is one address.
  for (const [k, v] of Object.entries({ limitsWritesPerAddress: 0, limitsWritesPerToken: 0, ...flags, grpcPort }))
    args.push(kebab(k), String(v));
  // BENCH_MUSTER_FLAGS="--store-sqlite-synchronous normal" and the like, for what-if runs.
  if (process.env.BENCH_MUSTER_FLAGS) args.push(...process.env.BENCH_MUSTER_FLAGS.trim().split(/\s+/));
  // `cpu` pins the server to those cores (taskset execs node: the child's pid is the server's).
  const [cmd, argv] =
    cpu === undefined ? [process.execPath, args] : ['taskset', ['-c', String(cpu), process.execPath, ...args]];
  const child = spawn(cmd, argv, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const untrack = track(child, dataDir);
  let output = '';
  const keep = (d) => {
    output += d.toString();
    if (output.length > 200_000) output = output.slice(-100_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let exitInfo;
  void exited.then((e) => (exitInfo = e));

  const url = `http://${HOST}:${port}`;
  // Not a start-up timeout: a server that is neither ready nor gone after 2 minutes is hung.
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (exitInfo || Date.now() > deadline) {
      const why = exitInfo
        ? `exited (${JSON.stringify(exitInfo)}) before it was ready`
        : 'was not ready within 120 s (hung)';
      if (!exitInfo) child.kill('SIGKILL');
      await exited;
      fs.rmSync(dataDir, { recursive: true, force: true });
      untrack();
      throw new Error(`${label} ${why}:\n${output}`);
    }
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }

  let stopped;
  return {
    url,
    port,
    grpcAddress: `${HOST}:${grpcPort}`,
    dataDir,
    pid: child.pid,
    child,
    output: () => output,
    async stop() {
      stopped ??= (async () => {
        if (!exitInfo) {
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
          await exited;
          clearTimeout(t);
        }
        fs.rmSync(dataDir, { recursive: true, force: true });
        untrack();
      })();
      return stopped;
    },
  };
}

/** Runs fn with a fresh server, so no scenario inherits another's instances or expiry storms. */
export async function withMuster(opts, fn) {
  const server = await startMuster(opts);
  try {
    return await fn(server);
  } finally {
    await server.stop();
    // At --log-level warn anything printed is worth a look (self-preservation, failed writes).
    const said = server
      .output()
      .split('\n')
      .filter((l) => l.trim() && !l.includes('bench-gc-done'));
    if (said.length)
      process.stderr.write(
        `[bench] ${opts.label ?? 'muster'} logged ${said.length} line(s):\n${said
          .slice(0, 5)
          .map((l) => '  ' + l.slice(0, 400))
          .join('\n')}\n`,
      );
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
