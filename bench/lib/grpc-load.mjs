import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SETTINGS } from './cannon.mjs';
import { track } from './cleanup.mjs';

const driverFile = path.join(path.dirname(fileURLToPath(import.meta.url)), 'grpc-driver.mjs');

const envInt = (name, fallback) => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
};

/**
 * The one set of gRPC load settings, the gRPC ceiling included: K unary calls in flight over C
 * channels (C TCP connections), the stream's batch size and window; duration and warm-up are
 * the HTTP scenarios' (BENCH_DURATION, BENCH_WARMUP).
 */
if (!['h2', 'grpc-js'].includes(process.env.BENCH_GRPC_CLIENT || 'h2'))
  throw new Error('BENCH_GRPC_CLIENT must be h2 or grpc-js');

export const GRPC_SETTINGS = Object.freeze({
  inFlight: envInt('BENCH_GRPC_INFLIGHT', 100),
  channels: envInt('BENCH_GRPC_CHANNELS', 4),
  streamBatch: envInt('BENCH_GRPC_STREAM_BATCH', 100),
  streamWindow: envInt('BENCH_GRPC_STREAM_WINDOW', 8),
  // h2: gRPC written on node:http2 (the default; see grpc-driver.mjs); grpc-js: @grpc/grpc-js's client.
  client: process.env.BENCH_GRPC_CLIENT || 'h2',
  duration: SETTINGS.duration,
  warmup: SETTINGS.warmup,
});

/**
 * Runs one job in a fresh driver process (grpc-driver.mjs) and answers its figures.
 * job: { address, serverPid, mode: 'unary', method, requests } or { ..., mode: 'stream', batches }.
 */
export function grpcLoad(job) {
  const full = {
    client: GRPC_SETTINGS.client,
    inFlight: GRPC_SETTINGS.inFlight,
    channels: GRPC_SETTINGS.channels,
    window: GRPC_SETTINGS.streamWindow,
    duration: GRPC_SETTINGS.duration,
    warmup: GRPC_SETTINGS.warmup,
    ...job,
  };
  return new Promise((resolve, reject) => {
    // BENCH_GRPC_DRIVER_PROF=dir: a V8 CPU profile of every driver, to tell its cost from the server's.
    const prof = process.env.BENCH_GRPC_DRIVER_PROF
      ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.BENCH_GRPC_DRIVER_PROF)}`]
      : [];
    const child = fork(driverFile, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: prof });
    const untrack = track(child);
    let answer;
    const limit = setTimeout(
      () => {
        answer ??= {
          ok: false,
          error: `the gRPC driver did not answer within ${Math.round(full.duration + full.warmup + 60)} s`,
        };
        child.kill('SIGKILL');
      },
      (full.duration + full.warmup + 60) * 1000,
    );
    child.once('message', (m) => (answer = m));
    child.once('exit', (code, signal) => {
      clearTimeout(limit);
      untrack();
      if (answer?.ok) resolve(answer.result);
      else reject(new Error(answer?.error ?? `the gRPC driver exited (${code ?? signal}) without an answer`));
    });
    child.send(full);
  });
}
