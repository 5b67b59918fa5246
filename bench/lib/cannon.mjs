import autocannon from 'autocannon';
import { cpuProbe } from './probe.mjs';

const envNumber = (name, fallback) => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(v)}`);
  return n;
};

/**
 * The one set of load settings every comparable run uses, the ceiling included, so a ratio
 * compares the server and not the load generator's configuration.
 */
export const SETTINGS = Object.freeze({
  connections: envNumber('BENCH_CONNECTIONS', 100),
  pipelining: 1,
  duration: envNumber('BENCH_DURATION', 5),
  warmup: envNumber('BENCH_WARMUP', 1),
  timeout: 10,
});

/**
 * Runs autocannon once. With `steady`, it also collects latencies without each connection's
 * first request: a saturated Node server accepts about one new connection per event-loop turn,
 * so in a short run the first requests of the last connections wait seconds and dominate
 * autocannon's p99 (reproduced with a bare node:http server doing 1 ms of work per request).
 */
function once(opts, steady) {
  return new Promise((resolve, reject) => {
    const inst = autocannon(opts, (err, result) => (err ? reject(err) : resolve(result)));
    if (steady) {
      const seen = new Set();
      inst.on('response', (client, _status, _bytes, ms) => {
        if (seen.has(client)) steady.push(ms);
        else seen.add(client);
      });
    }
  });
}

function p99Of(xs) {
  if (xs.length === 0) return NaN;
  xs.sort((a, b) => a - b);
  return xs[Math.min(xs.length - 1, Math.ceil(0.99 * xs.length) - 1)];
}

/**
 * A short unrecorded run first: the JIT, the connection pools and the server's caches settle
 * before the measured run. `requests` may hold setupRequest closures: autocannon runs in this
 * thread (no workers), so they can share state with the scenario.
 */
export async function cannon({
  url,
  pid,
  path = '/',
  method = 'GET',
  headers,
  body,
  requests,
  amount,
  duration = SETTINGS.duration,
  connections = SETTINGS.connections,
  warmup = true,
}) {
  const base = {
    url: url + path,
    method,
    connections,
    pipelining: SETTINGS.pipelining,
    timeout: SETTINGS.timeout,
    ...(headers ? { headers } : {}),
    ...(body !== undefined ? { body } : {}),
    ...(requests ? { requests } : {}),
  };
  if (warmup && SETTINGS.warmup > 0) await once({ ...base, duration: SETTINGS.warmup });
  const steady = [];
  const stopProbe = cpuProbe(pid);
  const r = await once({ ...base, ...(amount ? { amount } : { duration }) }, steady);
  return { ...summarize(r), cpu: stopProbe(), steadyP99: p99Of(steady) };
}

export function summarize(r) {
  const codes = Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([c, s]) => [c, s.count]));
  const answered = Object.values(codes).reduce((a, b) => a + b, 0);
  const ok = Object.entries(codes)
    .filter(([c]) => c.startsWith('2'))
    .reduce((a, [, n]) => a + n, 0);
  return {
    // Per-second samples average out the ramp at both ends less honestly than a plain count.
    rps: ok / r.duration,
    answeredRps: answered / r.duration,
    p50: r.latency.p50,
    p99: r.latency.p99,
    max: r.latency.max,
    bytesPerSec: r.throughput.average,
    duration: r.duration,
    ok,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    codes,
  };
}

export const steadyNote = (s) =>
  `steady p99 ${s.steadyP99 < 10 ? s.steadyP99.toFixed(2) : s.steadyP99.toFixed(1)} ms (without each connection's first request)`;

/** A note fragment when something other than 2xx came back, so a fast error is not a result. */
export function problems(s) {
  const bad = Object.entries(s.codes)
    .filter(([c]) => !c.startsWith('2'))
    .map(([c, n]) => `${n}×${c}`);
  if (s.errors > 0) bad.push(`${s.errors} errors${s.timeouts ? ` (${s.timeouts} timeouts)` : ''}`);
  return bad.length ? `WARNING non-2xx/errors: ${bad.join(', ')}` : '';
}
