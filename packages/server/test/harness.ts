import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { loadConfig } from '../src/config/config.js';
import { Muster } from '../src/muster.js';

/**
 * The one way tests get a running registry (etcd's tests/framework idea): a real server on a
 * free loopback port with a real SQLite file, either in this process or as a child process.
 */
export interface RunningServer {
  url: string;
  /** host:port of the gRPC API. */
  grpcAddress: string;
  dataDir: string;
  stop(): Promise<void>;
}

export type Flags = Record<string, string | number | boolean>;

export function tempDir(prefix = 'muster-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

const testLogger = () => pino({ level: process.env['MUSTER_TEST_LOG'] ?? 'silent' });

/**
 * What every test server runs with unless its flags say otherwise: auth and write limits off, so
 * the tests of registration, discovery and the cluster stay about those. The security tests
 * (auth-*.test.ts) start servers with auth on, as it is by default.
 */
export const TEST_DEFAULTS: Flags = { 'auth.enabled': false, 'limits.writesPerAddress': 0, 'limits.writesPerToken': 0 };

/**
 * Starts a server in this process. Flags use option keys: { 'health.sweepInterval': '100ms' };
 * a TLS server takes the tls.* flags (tlsFlags in tls-certs.ts), and its url is https://.
 * `announce` receives the note a first start shows on a terminal (where the admin token is kept).
 */
export async function startServer(
  flags: Flags = {},
  dataDir = tempDir(),
  announce: (text: string) => void = () => {},
): Promise<RunningServer & { muster: Muster }> {
  const config = loadConfig({
    flags: { httpPort: 0, grpcPort: 0, dataDir, 'log.level': 'silent', ...stringify({ ...TEST_DEFAULTS, ...flags }) },
  });
  const muster = await new Muster(config, { logger: testLogger(), announce }).start();
  return { muster, url: muster.url, grpcAddress: muster.grpcAddress, dataDir, stop: () => muster.stop() };
}

function stringify(flags: Flags): Record<string, string> {
  return Object.fromEntries(Object.entries(flags).map(([k, v]) => [k, String(v)]));
}

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
export const musterBin = path.join(repoRoot, 'bin', 'muster.js');

/**
 * How long a child process may take to exit, or to get ready, before a test calls it hung. Waits
 * end as soon as the child does what they wait for; this bound only keeps a hung child from
 * hanging the suite. A start-up has taken over 15 s on a loaded 2-core machine, so it is wide.
 */
export const HUNG_AFTER_MS = 120_000;

/**
 * The environment without the caller's MUSTER_* settings, so each test says what it means, nor
 * the npm_* variables `npm test` sets (a nested npm would take them for its own configuration).
 */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('MUSTER_') && !/^npm_/i.test(k)),
  );
  return { ...env, ...extra };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to its end (`muster ...` when `command` is not given), with `cleanEnv(env)`;
 * `hungAfterMs` for a command that is slow by nature (an npm install that compiles).
 */
export function runMuster(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  command: string[] = [process.execPath, musterBin],
  opts: { cwd?: string; hungAfterMs?: number } = {},
): Promise<RunResult> {
  const hungAfterMs = opts.hungAfterMs ?? HUNG_AFTER_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(command[0]!, [...command.slice(1), ...args], {
      cwd: opts.cwd ?? repoRoot,
      env: cleanEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '',
      stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`${command.join(' ')} ${args.join(' ')} hung: no exit in ${hungAfterMs} ms:\n${stdout}${stderr}`),
      );
    }, hungAfterMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface ChildServer extends RunningServer {
  child: ChildProcess;
  /** Everything the child wrote, for assertions and for failure messages. */
  output(): string;
  kill(signal: NodeJS.Signals): Promise<number | null>;
}

/** Starts `muster server` as a child process; resolves when it logs that it is ready. */
export async function spawnServer(
  flags: Flags = {},
  dataDir = tempDir(),
  env: NodeJS.ProcessEnv = {},
): Promise<ChildServer> {
  const args = ['--http-port', '0', '--grpc-port', '0', '--data-dir', dataDir];
  for (const [k, v] of Object.entries({ ...TEST_DEFAULTS, ...flags }))
    args.push(
      `--${k
        .replace(/\./g, '-')
        .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
        .toLowerCase()}`,
      String(v),
    );
  return spawnMuster(args, { ...process.env, ...env }, dataDir);
}

/**
 * Starts `muster server ARGS` (the arguments as given, nothing added) with exactly `env`;
 * resolves when it logs that it is ready, rejects as soon as it exits before that.
 */
export async function spawnMuster(
  args: string[],
  env: NodeJS.ProcessEnv,
  dataDir = '',
  command: string[] = [process.execPath, musterBin],
  cwd = repoRoot,
): Promise<ChildServer> {
  const child = spawn(command[0]!, [...command.slice(1), 'server', ...args], {
    cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const [url, grpcAddress] = await new Promise<[string, string]>((resolve, reject) => {
    // A child that hangs is killed: left running, it would keep the test process alive.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server hung: not ready in ${HUNG_AFTER_MS} ms:\n${out}`));
    }, HUNG_AFTER_MS);
    const onData = () => {
      const m = /"http":"(https?:\/\/[^"]+)","grpc":"([^"]+)".*"msg":"muster is ready"/.exec(out);
      if (m) {
        clearTimeout(timer);
        // Matching the whole output again on every later line costs a chatty server's tests dearly.
        child.stdout!.off('data', onData);
        resolve([m[1]!, m[2]!]);
      }
    };
    child.stdout!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before it was ready:\n${out}`));
    });
  });
  return {
    child,
    url,
    grpcAddress,
    dataDir,
    output: () => out,
    kill: async (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    stop: async () => void (await (child.exitCode === null ? (child.kill('SIGTERM'), exited) : exited)),
  };
}

/** fetch with JSON in and out. */
export async function api(
  base: string,
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(base + url, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON: keep the text */
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(25);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
