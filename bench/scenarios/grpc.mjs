import { batchStats, createClient, okHeartbeats, registerMany, scrape } from '../lib/client.mjs';
import { CEILING_INSTANCES, measureGrpcCeiling } from '../lib/grpc-ceiling.mjs';
import { GRPC_SETTINGS, grpcLoad } from '../lib/grpc-load.mjs';
import { fmtCpu } from '../lib/probe.mjs';
import { fmtBytes, fmtInt, fmtMs, fmtRatio, row } from '../lib/report.mjs';
import { withMuster } from '../lib/server.mjs';

// The gRPC API (muster.v1.Registry on the server's --grpc-port), driven by bench/lib/grpc-driver.mjs
// in a process of its own. Unary scenarios are compared with the gRPC ceiling (a bare grpc-js
// server answering a fixed DiscoverResponse, bench/lib/grpc-ceiling-server.mjs) measured with
// the same driver right before and right after, as the HTTP scenarios are with theirs: the
// runner's HTTP ceiling is not involved (needsCeiling false), and BENCH_REPEAT is applied here.

const INSTANCES = Number(process.env.BENCH_HB_INSTANCES ?? 10_000);
const REPEAT = Math.max(1, Math.floor(Number(process.env.BENCH_REPEAT ?? 1)));
const S = GRPC_SETTINGS;
const DISCOVER_INSTANCES = 10;

const log = (msg) => process.stderr.write(`[bench grpc] ${msg}\n`);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const join = (...parts) => parts.flat().filter(Boolean).join('; ');
const perCore = (rate, cpu) => (cpu?.server ? `${fmtInt(rate / cpu.server)} per server core-second` : '');
/** Calls per second of server CPU: less at the mercy of what else the shared machine runs. */
const coreRate = (r) => (r.cpu?.server ? r.rps / r.cpu.server : undefined);
/** A row with the server's per-core rate kept beside it for the comparison with the ceiling's. */
const withCoreRate = (rowObj, r) => Object.assign(rowObj, { coreRate: coreRate(r) });
const loadNote = (r) => `${r.client} client, ${r.inFlight} calls in flight over ${r.channels} connections`;

/** A note fragment for failed calls, so a fast error is not a result. */
function callProblems(r) {
  const bad = Object.entries(r.errorsByCode ?? {}).map(([c, n]) => `${fmtInt(n)}×${c}`);
  if (r.stuck) bad.push(`${r.stuck} calls unanswered 15 s after the run`);
  if (r.sessionErrors?.length) bad.push(`connection errors: ${r.sessionErrors.join(', ')}`);
  return bad.length ? `WARNING failed calls: ${bad.join(', ')}${r.firstError ? ` (first: ${r.firstError})` : ''}` : '';
}

// ---- the gRPC ceiling, measured around every compared run ----

const ceilings = [];
let lastCeiling; // { c, at }: reused as the next scenario's "before" when nothing ran in between
let ceilingRow; // the grpcCeiling scenario's row, kept up to date with every ceiling measured

async function ceilingNow() {
  log(`gRPC ceiling: bare grpc-js server, fixed ${CEILING_INSTANCES}-instance DiscoverResponse`);
  const c = await measureGrpcCeiling();
  ceilings.push(c);
  lastCeiling = { c, at: Date.now() };
  log(
    `gRPC ceiling: ${fmtInt(c.rps)} calls/s, p50 ${fmtMs(c.p50)} ms, p99 ${fmtMs(c.p99)} ms, ${fmtCpu(c.cpu)}${c.errors ? `, ${c.errors} errors` : ''}`,
  );
  if (ceilingRow) fillCeilingRow();
  return c;
}

function fillCeilingRow() {
  const first = ceilings[0];
  Object.assign(ceilingRow, {
    scenario: `gRPC ceiling: bare grpc-js server, Discover answering ${first.answerBytes} B (median of ${ceilings.length})`,
    rps: median(ceilings.map((c) => c.rps)),
    p99: median(ceilings.map((c) => c.p99)),
    ratio: 1,
    note: join(
      `runs: ${ceilings.map((c) => fmtInt(c.rps)).join(', ')} calls/s`,
      loadNote(first),
      `p50 ${fmtMs(first.p50)} ms (first run)`,
      `${fmtCpu(first.cpu)} (first run)`,
      `${fmtInt(median(ceilings.map(coreRate)))} calls per server core-second (median)`,
      ceilings.some((c) => c.errors) ? 'WARNING failed calls in a ceiling run' : '',
    ),
  });
}

export const grpcCeiling = {
  name: 'grpcCeiling',
  needsCeiling: false,
  describe: `the gRPC ceiling alone: a bare @grpc/grpc-js server answering a fixed ${CEILING_INSTANCES}-instance DiscoverResponse (its row also gathers every gRPC ceiling run of the other gRPC scenarios)`,
  async run() {
    ceilingRow = row({ scenario: 'gRPC ceiling' });
    await ceilingNow();
    return ceilingRow;
  },
};

/**
 * A scenario run BENCH_REPEAT times; with `compared`, each run between two gRPC ceiling runs,
 * its rows' ratio to their mean; the run with the median ratio (else calls/s) is kept per row.
 */
function grpcScenario({ name, describe, compared = true, measure }) {
  return {
    name,
    describe,
    needsCeiling: false,
    async run() {
      const runs = [];
      for (let rep = 0; rep < REPEAT; rep++) {
        if (REPEAT > 1) log(`${name}: run ${rep + 1} of ${REPEAT}`);
        const recent = lastCeiling && Date.now() - lastCeiling.at < 5_000 ? lastCeiling.c : undefined;
        const before = compared ? (recent ?? (await ceilingNow())) : undefined;
        const rows = [await measure()].flat();
        const after = compared ? await ceilingNow() : undefined;
        for (const r of rows) {
          if (compared && r.rps !== undefined) {
            r.ratio = r.rps / ((before.rps + after.rps) / 2);
            const ceilingCore = (coreRate(before) + coreRate(after)) / 2;
            r.note = join(
              r.note,
              `gRPC ceiling around this run ${fmtInt(before.rps)} / ${fmtInt(after.rps)} calls/s`,
              r.coreRate && ceilingCore
                ? `per server core-second ${fmtRatio(r.coreRate / ceilingCore)} of the ceiling's (${fmtInt(coreRate(before))} / ${fmtInt(coreRate(after))})`
                : '',
            );
          }
          log(
            `${r.scenario}: ${fmtInt(r.rps)}/s, p99 ${fmtMs(r.p99)} ms${r.ratio !== undefined ? `, ${(r.ratio * 100).toFixed(0)} % of the gRPC ceiling` : ''}`,
          );
        }
        runs.push(rows);
      }
      if (runs.length === 1) return runs[0];
      return runs[0].map((_, i) => {
        const candidates = runs.map((r) => r[i]);
        const key = (r) => r.ratio ?? r.rps ?? -Infinity;
        const chosen = [...candidates].sort((a, b) => key(a) - key(b))[Math.floor((candidates.length - 1) / 2)];
        chosen.note = join(
          `median of ${candidates.length} runs (${compared ? `ratios ${candidates.map((r) => `${((r.ratio ?? NaN) * 100).toFixed(0)} %`).join(', ')}; ` : ''}/s ${candidates.map((r) => fmtInt(r.rps)).join(', ')})`,
          chosen.note,
        );
        return chosen;
      });
    },
  };
}

// ---- Muster ----

/** A fresh server (with its own gRPC port) and an HTTP client for setup and metrics. */
function withServer(label, fn) {
  return withMuster({ label }, async (server) => {
    const client = createClient(server.url);
    try {
      return await fn(server, client);
    } finally {
      client.close();
    }
  });
}

const metric = async (client, key) => (await scrape(client)).get(key) ?? 0;
const counted = (what, server, driver) =>
  server === driver
    ? `server counted ${fmtInt(server)} ${what}, as the driver (incl. warm-up)`
    : `WARNING server counted ${fmtInt(server)} ${what}, the driver ${fmtInt(driver)} (incl. warm-up)`;

export const grpcRegister = grpcScenario({
  name: 'grpcRegister',
  describe: 'Register, a new host per call (every call inserts an instance), SQLite synchronous=full',
  async measure() {
    return withServer('grpcRegister', async (server, client) => {
      const before = await scrape(client);
      const r = await grpcLoad({
        address: server.grpcAddress,
        serverPid: server.pid,
        mode: 'unary',
        method: 'Register',
        requests: { kind: 'register', message: { service: 'reg', port: 8080, healthCheck: { ttl: 60 } } },
      });
      const after = await scrape(client);
      const d = (k) => (after.get(k) ?? 0) - (before.get(k) ?? 0);
      const b = batchStats(before, after);
      const sample = r.samples[0]?.message;
      const bad = r.samples.filter(
        (s) => !s.message.created || !s.message.heartbeatToken || !s.message.instance?.id,
      ).length;
      return withCoreRate(
        row({
          scenario: 'gRPC Register, new instance (durable)',
          rps: r.rps,
          p99: r.p99,
          note: join(
            `**${fmtInt(r.rps)} registrations/s**`,
            `p50 ${fmtMs(r.p50)} ms`,
            counted('created', d('muster_registrations_total{result="created"}'), r.okTotal),
            bad
              ? `WARNING ${bad} of ${r.samples.length} sampled answers not created/without token`
              : `sampled answers created: true (e.g. ${sample?.instance?.host})`,
            `avg batch ${b.avgSize.toFixed(1)} writes, commit ${fmtMs(b.avgCommitMs)} ms (incl. warm-up)`,
            fmtCpu(r.cpu),
            perCore(r.rps, r.cpu),
            loadNote(r),
            callProblems(r),
          ),
        }),
        r,
      );
    });
  },
});

/** INSTANCES instances registered over HTTP (ttl 60 s: none expires during a scenario). */
const registerInstances = (client) => registerMany(client, 'hb', INSTANCES);

export const grpcHeartbeat = grpcScenario({
  name: 'grpcHeartbeat',
  describe: `Heartbeat (unary) with the heartbeat token, round-robin over ${INSTANCES.toLocaleString('en-US')} instances`,
  async measure() {
    return withServer('grpcHeartbeat', async (server, client) => {
      const list = await registerInstances(client);
      const before = await okHeartbeats(client);
      const r = await grpcLoad({
        address: server.grpcAddress,
        serverPid: server.pid,
        mode: 'unary',
        method: 'Heartbeat',
        requests: { kind: 'cycle', messages: list.map(({ id, token }) => ({ id, heartbeatToken: token })) },
      });
      const ok = (await okHeartbeats(client)) - before;
      return withCoreRate(
        row({
          scenario: `gRPC Heartbeat (unary), ${INSTANCES.toLocaleString('en-US')} instances`,
          rps: r.rps,
          p99: r.p99,
          note: join(
            `p50 ${fmtMs(r.p50)} ms`,
            counted('ok heartbeats', ok, r.okTotal),
            fmtCpu(r.cpu),
            perCore(r.rps, r.cpu),
            loadNote(r),
            callProblems(r),
          ),
        }),
        r,
      );
    });
  },
});

export const grpcHeartbeatStream = grpcScenario({
  name: 'grpcHeartbeatStream',
  compared: false,
  describe: `HeartbeatStream: ${INSTANCES.toLocaleString('en-US')} instances over one connection and one stream, ${S.streamBatch} heartbeats per HeartbeatBatch, ${S.streamWindow} batches in flight`,
  async measure() {
    return withServer('grpcHeartbeatStream', async (server, client) => {
      const list = await registerInstances(client);
      const batches = [];
      for (let i = 0; i < list.length; i += S.streamBatch) {
        batches.push(list.slice(i, i + S.streamBatch).map(({ id, token }) => ({ id, heartbeatToken: token })));
      }
      const before = await okHeartbeats(client);
      const r = await grpcLoad({
        address: server.grpcAddress,
        serverPid: server.pid,
        mode: 'stream',
        batches,
        window: S.streamWindow,
      });
      const ok = (await okHeartbeats(client)) - before;
      const failures = Object.entries(r.failedByCode)
        .map(([c, n]) => `${fmtInt(n)}×${c}`)
        .join(', ');
      const target = 20_000;
      return row({
        scenario: `gRPC HeartbeatStream, 1 stream, batches of ${r.batchSize}, window ${r.window}`,
        rps: r.rps,
        p99: r.p99,
        target: { text: `≥ ${fmtInt(target)} heartbeats/s`, met: r.heartbeatsPerSec >= target && r.failed === 0 },
        note: join(
          `**${fmtInt(r.heartbeatsPerSec)} heartbeats/s** (req/s and p99 are batches: a batch's answer)`,
          `p50 ${fmtMs(r.p50)} ms`,
          perCore(r.heartbeatsPerSec, r.cpu),
          fmtCpu(r.cpu),
          r.failed
            ? `WARNING ${fmtInt(r.failed)} heartbeats failed: ${failures} (first: ${r.firstFailure})`
            : 'no heartbeat failed',
          counted('ok heartbeats', ok, r.total.ok),
          `${r.batchesCycled} batches of ${fmtBytes(r.requestBytes)} cycled`,
          r.bad ? `WARNING ${r.bad}` : '',
          r.status.code !== 'OK' ? `WARNING the stream ended with ${r.status.code} ${r.status.details ?? ''}` : '',
          r.stuck ? `WARNING ${r.stuck} batches unanswered at the end` : '',
        ),
      });
    });
  },
});

export const grpcDiscoverUnchanged = grpcScenario({
  name: 'grpcDiscoverUnchanged',
  describe: `Discover of a ${DISCOVER_INSTANCES}-instance service with the current revision (answered unchanged, no instances), then without a revision (the full answer), on one server`,
  async measure() {
    return withServer('grpcDiscoverUnchanged', async (server, client) => {
      const service = `disc-${DISCOVER_INSTANCES}`;
      await registerMany(client, service, DISCOVER_INSTANCES);
      const http = await client.request('GET', `/v1/namespaces/default/services/${service}/instances`);
      const revision = http.json?.revision;
      if (http.status !== 200 || typeof revision !== 'number')
        throw new Error(`discovery over HTTP answered ${http.status}: ${http.text.slice(0, 200)}`);
      const run = (message) =>
        grpcLoad({
          address: server.grpcAddress,
          serverPid: server.pid,
          mode: 'unary',
          method: 'Discover',
          requests: { kind: 'fixed', message },
        });

      const notModified = () => metric(client, 'muster_discoveries_total{answer="not_modified"}');
      const nm0 = await notModified();
      const u = await run({ service, revision });
      const nm = (await notModified()) - nm0;
      const uBad = u.samples.filter(
        (s) => !s.message.unchanged || s.message.instances.length !== 0 || s.message.revision !== revision,
      ).length;

      const f = await run({ service });
      const fBad = f.samples.filter(
        (s) => s.message.unchanged || s.message.instances.length !== DISCOVER_INSTANCES,
      ).length;
      return [
        withCoreRate(
          row({
            scenario: `gRPC Discover, current revision (unchanged), ${DISCOVER_INSTANCES}-instance service`,
            rps: u.rps,
            p99: u.p99,
            note: join(
              `p50 ${fmtMs(u.p50)} ms`,
              `answer ${u.responseBytes?.toFixed(0)} B`,
              uBad
                ? `WARNING ${uBad} of ${u.samples.length} sampled answers not unchanged/empty`
                : `sampled answers unchanged: true, no instances, revision ${revision}`,
              counted('not_modified discoveries', nm, u.okTotal),
              fmtCpu(u.cpu),
              perCore(u.rps, u.cpu),
              loadNote(u),
              callProblems(u),
            ),
          }),
          u,
        ),
        withCoreRate(
          row({
            scenario: `gRPC Discover, ${DISCOVER_INSTANCES} instances, no revision`,
            rps: f.rps,
            p99: f.p99,
            note: join(
              `p50 ${fmtMs(f.p50)} ms`,
              `answer ${f.responseBytes?.toFixed(0)} B`,
              fBad
                ? `WARNING ${fBad} of ${f.samples.length} sampled answers without ${DISCOVER_INSTANCES} instances`
                : `sampled answers hold ${DISCOVER_INSTANCES} instances`,
              fmtCpu(f.cpu),
              perCore(f.rps, f.cpu),
              loadNote(f),
              callProblems(f),
            ),
          }),
          f,
        ),
      ];
    });
  },
});

export const GRPC_SCENARIOS = [grpcCeiling, grpcRegister, grpcHeartbeat, grpcHeartbeatStream, grpcDiscoverUnchanged];

export const GRPC_NOTE =
  "gRPC rows (muster.v1.Registry on the server's own --grpc-port): load from bench/lib/grpc-driver.mjs in a child process of its own, messages encoded with @grpc/proto-loader's codecs. Unary calls: " +
  `${S.inFlight} in flight over ${S.channels} HTTP/2 connections, ${S.duration} s measured after ${S.warmup} s warm-up (BENCH_GRPC_INFLIGHT, BENCH_GRPC_CHANNELS), sent by a minimal gRPC client written on node:http2 (BENCH_GRPC_CLIENT=h2, the default; @grpc/grpc-js's own client costs the load generator 2-3x more CPU per call and, on 2 cores, saturates before a bare grpc-js server does; BENCH_GRPC_CLIENT=grpc-js uses it). ` +
  'req/s counts calls answered OK in the measured window; their ratio is to the gRPC ceiling (a bare @grpc/grpc-js server, no Muster, answering Discover with one fixed pre-encoded DiscoverResponse of a few instances) measured with the same driver and settings right before and right after, not to the HTTP ceiling. ' +
  `HeartbeatStream: one @grpc/grpc-js channel and one stream, ${S.streamBatch} heartbeats per HeartbeatBatch, ${S.streamWindow} batches in flight (BENCH_GRPC_STREAM_BATCH, BENCH_GRPC_STREAM_WINDOW); req/s and p99 are batches, heartbeats/s are the items answered ok. ` +
  '"per server core-second" divides a rate by the server process\'s CPU (100 % = one core), and its ratio to the ceiling\'s compares CPU per call rather than throughput: it moves less when other load on the shared machine leaves both the server and the driver below a core each.';
