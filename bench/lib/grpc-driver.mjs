// The gRPC load generator: a child process of the bench (forked by grpc-load.mjs), so it competes
// with the server for the machine's cores the way autocannon does, but never shares an event
// loop with the bench's own bookkeeping. It gets one job over IPC, runs it, answers the figures
// and exits.
//
//   unary:  K calls kept in flight over C connections, for a warm-up and then a measured
//           duration. Two clients, the same for the ceiling and the scenarios:
//           - h2 (default): gRPC's wire protocol written directly on node:http2 (one session per
//             connection; a call is a POST with a length-prefixed message, its status is the
//             grpc-status trailer). About 3x cheaper per call than @grpc/grpc-js's client, which
//             on this machine tops out near 6,500 calls/s at 100 % of a core while a bare grpc-js
//             server answering them idles at 50 %: with it, the bench would measure the client.
//           - grpc-js: @grpc/grpc-js's generic Client, C channels with distinct options and
//             local subchannel pools (so C connections), for cross-checks (BENCH_GRPC_CLIENT).
//   stream: one @grpc/grpc-js channel, one HeartbeatStream; a window of W HeartbeatBatch
//           messages in flight, every HeartbeatResults decoded and its items counted.
// Messages are encoded and decoded with @grpc/proto-loader's codecs. Requests are encoded before
// the run where they repeat; unary answers are not decoded during the run (a load generator that
// parses answers measures itself), only a few kept and decoded at the end as samples.
import http2 from 'node:http2';
import { createHistogram, performance } from 'node:perf_hooks';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { PROTO_ROOT, REGISTRY_PROTO } from '@muster/api';
import { hostFor } from './client.mjs';
import { cpuProbe } from './probe.mjs';

const SERVICE = 'muster.v1.Registry';
const identity = (b) => b;
const codeName = Object.fromEntries(Object.entries(grpc.status).map(([k, v]) => [v, k]));

async function loadMethods() {
  const pkg = await protoLoader.load(REGISTRY_PROTO, {
    includeDirs: [PROTO_ROOT],
    keepCase: false,
    longs: Number,
    defaults: true,
    oneofs: true,
  });
  return pkg[SERVICE];
}

/** Distinct options per channel and a local subchannel pool: C channels are C connections. */
function openChannels(address, count) {
  const channels = [];
  for (let i = 0; i < count; i++) {
    channels.push(
      new grpc.Client(address, grpc.credentials.createInsecure(), {
        'grpc.use_local_subchannel_pool': 1,
        'grpc.enable_retries': 0, // no retry buffering in the load generator
        'bench.channel': i,
        'grpc.max_receive_message_length': 64 * 1024 * 1024,
      }),
    );
  }
  return channels;
}

function waitReady(channels, ms = 20_000) {
  const deadline = Date.now() + ms;
  return Promise.all(
    channels.map(
      (c) => new Promise((resolve, reject) => c.waitForReady(deadline, (err) => (err ? reject(err) : resolve()))),
    ),
  );
}

/** Latencies in microseconds; HdrHistogram-like, 3 significant figures. */
const histogram = () => createHistogram({ lowest: 1, highest: 120_000_000, figures: 3 });
const latencyOf = (h) => ({
  p50: h.percentile(50) / 1000,
  p99: h.percentile(99) / 1000,
  max: h.max / 1000,
  mean: h.mean / 1000,
});

/** Encoded requests; `wrap` frames them for the raw HTTP/2 client. */
function requestSource(method, spec, wrap) {
  const ser = (m) => wrap(method.requestSerialize(m));
  if (spec.kind === 'fixed') {
    const buf = ser(spec.message);
    return { next: () => buf, bytes: buf.length };
  }
  if (spec.kind === 'cycle') {
    const bufs = spec.messages.map((m) => ser(m));
    let k = 0;
    return { next: () => bufs[k++ % bufs.length], bytes: bufs[0].length };
  }
  if (spec.kind === 'register') {
    // A new endpoint per call, encoded as it is sent (each is used once).
    let n = spec.offset ?? 0;
    const base = spec.message;
    const first = ser({ ...base, host: hostFor(n) });
    return { next: () => ser({ ...base, host: hostFor(n++) }), bytes: first.length };
  }
  throw new Error(`unknown request kind ${spec.kind}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** C raw HTTP/2 sessions; call(slot, framed, cb(err, message)) with err { code, details }. */
async function h2Caller(address, count, path) {
  const sessionErrors = [];
  const connect = () =>
    new Promise((resolve, reject) => {
      const session = http2.connect(`http://${address}`);
      session.once('connect', () => resolve(session));
      session.once('error', reject);
      session.on('error', (err) => sessionErrors.push(String(err.message)));
    });
  // Muster's /readyz answers 200 some 60-80 ms before its gRPC port accepts connections (it
  // binds HTTP first): retry a refused connection for a while, as grpc-js's waitForReady does.
  const deadline = Date.now() + 20_000;
  const connectSoon = async () => {
    for (;;) {
      try {
        return await connect();
      } catch (err) {
        if (err.code !== 'ECONNREFUSED' || Date.now() > deadline) throw err;
        sessionErrors.length = 0;
        await sleep(20);
      }
    }
  };
  const sessions = await Promise.all(Array.from({ length: count }, connectSoon));
  const headers = { ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' };
  return {
    sessionErrors,
    close: () => sessions.forEach((s) => s.close()),
    call(slot, framed, cb) {
      let req;
      try {
        req = sessions[slot % count].request(headers);
      } catch (err) {
        // The session is gone (GOAWAY, reset): an error like any other, answered later.
        setTimeout(() => cb({ code: `SESSION_${err.code ?? 'ERROR'}`, details: err.message }), 10);
        return;
      }
      let status;
      let details;
      let chunks;
      let done = false;
      // A trailers-only answer (an error) has grpc-status in its headers.
      req.on('response', (h) => {
        if (h['grpc-status'] !== undefined) ((status = h['grpc-status']), (details = h['grpc-message']));
        else if (h[':status'] !== 200) ((status = 'HTTP_' + h[':status']), (details = String(h[':status'])));
      });
      req.on('trailers', (t) => {
        status = t['grpc-status'];
        details = t['grpc-message'];
      });
      req.on('data', (c) => (chunks ? chunks.push(c) : (chunks = [c])));
      req.on('end', () => {
        if (done) return;
        done = true;
        if (status === '0') {
          const body = chunks === undefined ? Buffer.alloc(0) : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
          cb(null, body.subarray(5)); // one message: flag byte, 4-byte length, the message
        } else
          cb({
            code: status === undefined ? 'NO_STATUS' : (codeName[status] ?? status),
            details: percentDecoded(details),
          });
      });
      req.on('error', (err) => {
        if (done) return;
        done = true;
        cb({ code: `STREAM_${err.code ?? 'ERROR'}`, details: err.message });
      });
      req.end(framed);
    },
  };
}

/** C @grpc/grpc-js channels, each its own connection; the same call() as h2Caller. */
async function grpcJsCaller(address, count, path) {
  const channels = openChannels(address, count);
  await waitReady(channels);
  return {
    sessionErrors: [],
    close: () => channels.forEach((c) => c.close()),
    call(slot, message, cb) {
      channels[slot % count].makeUnaryRequest(path, identity, identity, message, (err, res) =>
        err ? cb({ code: codeName[err.code] ?? String(err.code), details: err.details ?? err.message }) : cb(null, res),
      );
    },
  };
}

const percentDecoded = (s) => {
  try {
    return s && decodeURIComponent(s);
  } catch {
    return s;
  }
};

const frame = (msg) => {
  const out = Buffer.allocUnsafe(5 + msg.length);
  out[0] = 0;
  out.writeUInt32BE(msg.length, 1);
  msg.copy(out, 5);
  return out;
};

async function runUnary(methods, job) {
  const method = methods[job.method];
  if (!method) throw new Error(`no method ${job.method} in ${SERVICE}`);
  const client = job.client ?? 'h2';
  const source = requestSource(method, job.requests, client === 'h2' ? frame : identity);
  const caller = await (client === 'h2' ? h2Caller : grpcJsCaller)(job.address, job.channels, method.path);

  let phase = 'warmup'; // then 'measure', then 'drain'
  let inFlight = 0;
  let okTotal = 0;
  let okWindow = 0;
  const errorsTotal = {};
  const errorsWindow = {};
  let firstError;
  const hist = histogram();
  const samples = []; // the first two answers and the latest, decoded at the end
  let latest;
  let bytesIn = 0;
  let drained;

  const issue = (slot) => {
    const t = performance.now();
    inFlight++;
    caller.call(slot, source.next(), (err, res) => {
      inFlight--;
      const measuring = phase === 'measure';
      if (err) {
        const name = err.code;
        errorsTotal[name] = (errorsTotal[name] ?? 0) + 1;
        if (measuring) errorsWindow[name] = (errorsWindow[name] ?? 0) + 1;
        firstError ??= `${name}: ${err.details}`;
      } else {
        okTotal++;
        if (samples.length < 2) samples.push(res);
        else latest = res;
        if (measuring) {
          okWindow++;
          bytesIn += res.length;
          hist.record(Math.max(1, Math.round((performance.now() - t) * 1000)));
        }
      }
      if (phase !== 'drain') issue(slot);
      else if (inFlight === 0) drained?.();
    });
  };
  for (let slot = 0; slot < job.inFlight; slot++) issue(slot);

  await sleep(job.warmup * 1000);
  phase = 'measure';
  const stopProbe = cpuProbe(job.serverPid);
  const t0 = performance.now();
  await sleep(job.duration * 1000);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = stopProbe();
  phase = 'drain';
  if (inFlight > 0) await Promise.race([new Promise((r) => (drained = r)), sleep(15_000)]);
  caller.close();

  const errors = Object.values(errorsWindow).reduce((a, b) => a + b, 0);
  return {
    mode: 'unary',
    client,
    method: job.method,
    channels: job.channels,
    inFlight: job.inFlight,
    sessionErrors: caller.sessionErrors.slice(0, 3),
    seconds,
    calls: okWindow,
    rps: okWindow / seconds,
    ...latencyOf(hist),
    errors,
    errorsByCode: errorsWindow,
    errorsTotal,
    firstError,
    okTotal,
    requestBytes: source.bytes - (client === 'h2' ? 5 : 0),
    responseBytes: okWindow ? bytesIn / okWindow : undefined,
    samples: [...samples, ...(latest ? [latest] : [])].map((b) => ({
      bytes: b.length,
      message: method.responseDeserialize(b),
    })),
    cpu,
    stuck: inFlight,
  };
}

async function runStream(methods, job) {
  const method = methods.HeartbeatStream;
  const batches = job.batches.map((items) => method.requestSerialize({ heartbeats: items }));
  const items = job.batches.map((b) => b.length);
  const [channel] = openChannels(job.address, 1);
  await waitReady([channel]);

  const call = channel.makeBidiStreamRequest(method.path, identity, identity);
  let phase = 'warmup';
  let k = 0;
  let inFlight = 0;
  let blocked = false;
  const sentAt = [];
  const sentItems = [];
  const w = { batches: 0, ok: 0, failed: 0 };
  const total = { batches: 0, ok: 0, failed: 0 };
  const failedByCode = {};
  let firstFailure;
  let bad;
  const hist = histogram();
  let drained;
  let status;
  const ended = new Promise((resolve) => call.on('status', (s) => resolve((status = s))));
  call.on('error', () => {}); // the status says it; an unhandled 'error' would kill the driver

  const pump = () => {
    while (phase !== 'drain' && !blocked && inFlight < job.window && !status) {
      const i = k++ % batches.length;
      sentAt.push(performance.now());
      sentItems.push(items[i]);
      inFlight++;
      if (!call.write(batches[i])) {
        blocked = true;
        call.once('drain', () => {
          blocked = false;
          pump();
        });
      }
    }
  };
  call.on('data', (buf) => {
    inFlight--;
    const t = sentAt.shift();
    const expected = sentItems.shift();
    const msg = method.responseDeserialize(buf);
    const results = msg.results ?? [];
    let ok = 0;
    for (const r of results) {
      if (r.ok) ok++;
      else {
        const code = r.error?.code || 'NOT_OK';
        failedByCode[code] = (failedByCode[code] ?? 0) + 1;
        firstFailure ??= `${r.id}: ${code} ${r.error?.message ?? ''}`;
      }
    }
    if (results.length !== expected) bad ??= `an answer had ${results.length} results for a batch of ${expected}`;
    const failed = results.length - ok;
    total.batches++;
    total.ok += ok;
    total.failed += failed;
    if (phase === 'measure') {
      w.batches++;
      w.ok += ok;
      w.failed += failed;
      hist.record(Math.max(1, Math.round((performance.now() - t) * 1000)));
    }
    if (phase === 'drain') {
      if (inFlight === 0) drained?.();
    } else pump();
  });
  pump();

  await sleep(job.warmup * 1000);
  phase = 'measure';
  const stopProbe = cpuProbe(job.serverPid);
  const t0 = performance.now();
  await sleep(job.duration * 1000);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = stopProbe();
  phase = 'drain';
  if (inFlight > 0 && !status) await Promise.race([new Promise((r) => (drained = r)), ended, sleep(15_000)]);
  call.end();
  await Promise.race([ended, sleep(15_000)]);
  channel.close();

  return {
    mode: 'stream',
    window: job.window,
    batchSize: items[0],
    batchesCycled: batches.length,
    seconds,
    batches: w.batches,
    rps: w.batches / seconds,
    heartbeats: w.ok,
    heartbeatsPerSec: w.ok / seconds,
    failed: w.failed,
    failedByCode,
    firstFailure,
    total,
    bad,
    ...latencyOf(hist),
    requestBytes: batches[0].length,
    status: status
      ? { code: codeName[status.code] ?? status.code, details: status.details }
      : { code: 'NONE (stream did not end within 15 s)' },
    cpu,
    stuck: inFlight,
  };
}

process.once('message', async (job) => {
  try {
    const methods = await loadMethods();
    const result = job.mode === 'stream' ? await runStream(methods, job) : await runUnary(methods, job);
    process.send({ ok: true, result }, () => process.exit(0));
  } catch (err) {
    process.send({ ok: false, error: String(err?.stack ?? err) }, () => process.exit(1));
  }
});
