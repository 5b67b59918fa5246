// Picks per second of the SDK's load balancers (packages/client/dist/balance), in this process,
// no I/O; the last row picks through MusterClient from a view a real server keeps current. Every case is measured in each of several rounds, the cases interleaved within a
// round so that drift of the shared machine hits them alike; a case's figure is the median of its
// rounds. The baseline, a bare `arr[(Math.random() * n) | 0]` loop, is measured the same way in
// the same run, and every case is also quoted as a ratio to it.
//   BENCH_PICK_ROUNDS (default 5), BENCH_PICK_SECONDS (per case and round, default 1),
//   BENCH_PICK_WARMUP (s per case before the first round, default 0.5)
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createClient, registerMany } from '../lib/client.mjs';
import { fmtInt, row } from '../lib/report.mjs';
import { startMuster } from '../lib/server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, '../../packages/client/dist/balance');

const ROUNDS = Math.max(1, Math.floor(Number(process.env.BENCH_PICK_ROUNDS ?? 5)));
const SECONDS = Number(process.env.BENCH_PICK_SECONDS ?? 1);
const WARMUP = Number(process.env.BENCH_PICK_WARMUP ?? 0.5);
const TARGET = 5_000_000; // weighted random over 100 instances

const REGIONS = ['eu', 'us', 'ap'];
/**
 * n instances over 3 regions × 3 zones, with unrelated weights 1..1000 (the worst case for round
 * robin), or all 100, or a mix of 50, 100 and 200 (weights as set by hand).
 */
function instances(n, { weights = 'unrelated' } = {}) {
  return Array.from({ length: n }, (_, i) => {
    const region = REGIONS[i % 3];
    return {
      id: `${(i * 2654435761) >>> 0}-${i}`,
      host: `10.0.${i >> 8}.${i & 255}`,
      port: 8080 + (i % 7),
      weight: weights === 'equal' ? 100 : weights === 'mixed' ? [50, 100, 200][i % 3] : 1 + ((i * 7919) % 1000),
      priority: 0,
      metadata: {},
      location: { region, zone: `${region}-${((i / 3) % 3) | 0}` },
      healthy: true,
      isolate: false,
      lastHeartbeatAgeMs: 0,
    };
  });
}

/**
 * A measuring loop of its own per case (new Function compiles a separate function each time), so
 * no case runs in code whose type feedback another case made polymorphic: in the SDK a call site
 * usually sees one balancer. `expr` is one pick; it may use p, arr, n, opts and i.
 */
function loopFor(expr) {
  // eslint-disable-next-line no-new-func
  return new Function(
    'p',
    'arr',
    'n',
    'opts',
    `
    return function run(count) {
      let sink = 0;
      for (let i = 0; i < count; i++) {
        const x = ${expr};
        sink ^= x.port;
      }
      return sink;
    };`,
  );
}

/** Runs `run` in batches for `seconds`; answers picks per second. */
function measure(run, seconds) {
  let batch = 10_000;
  let done = 0;
  let sink = 0;
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  let now = t0;
  while (now < until) {
    sink ^= run(batch);
    done += batch;
    now = performance.now();
    if (now - t0 < 50) batch = Math.min(batch * 2, 1_000_000); // about 10+ clock reads a second
  }
  if (sink === 0.5) console.log('unreachable'); // keeps the result alive
  return (done / (now - t0)) * 1000;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

/**
 * What an application calls: MusterClient.pick on a view the SDK keeps over gRPC from a real
 * server, 100 instances of unrelated weights (the balancer rows above it pick from a bare list).
 */
async function sdkClient() {
  const { MusterClient } = await import(pathToFileURL(path.join(dist, '../index.js')).href);
  const server = await startMuster({ label: 'pick' });
  const http = createClient(server.url);
  const list = await registerMany(http, 'picked', 100);
  http.close();
  // registerMany gives every instance weight 100: unrelated weights as in the other rows.
  for (const [i, it] of list.entries()) {
    await fetch(`${server.url}/v1/instances/${it.id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${it.token}` },
      body: JSON.stringify({ weight: 1 + ((i * 7919) % 1000) }),
    });
  }
  const client = new MusterClient({ servers: [server.grpcAddress] });
  await client.ready('picked');
  await new Promise((r) => setTimeout(r, 1500)); // the watch settles (it is live after 1 s)
  return { client, close: async () => (await client.close(), await server.stop()) };
}

async function cases(sdk) {
  const b = await import(pathToFileURL(path.join(dist, 'index.js')).href);
  const { PrefixSumPicker } = await import(pathToFileURL(path.join(dist, 'weighted-random.js')).href);
  const i100 = instances(100);
  const i1000 = instances(1000);
  const eq1000 = instances(1000, { weights: 'equal' });
  const mixed1000 = instances(1000, { weights: 'mixed' });
  const self = { region: 'eu', zone: 'eu-1' };
  const keyOpts = Array.from({ length: 4096 }, (_, i) => ({ key: `session-${(i * 40503) >>> 0}` }));
  const pick = 'p.pick()';
  return [
    {
      id: 'baseline',
      label: 'pick baseline: bare arr[(Math.random() * n) | 0], 1,000 instances',
      expr: 'arr[(Math.random() * n) | 0]',
      arr: i1000,
      baseline: true,
    },
    {
      id: 'wr100',
      label: 'pick: weighted random, 100 instances',
      build: () => b.weightedRandom.build(i100),
      expr: pick,
      target: true,
    },
    {
      id: 'wr1000',
      label: 'pick: weighted random, 1,000 instances',
      build: () => b.weightedRandom.build(i1000),
      expr: pick,
    },
    {
      id: 'prefix1000',
      label: 'pick: weighted random by prefix sums + binary search (comparison, not used), 1,000 instances',
      build: () => new PrefixSumPicker(i1000),
      expr: pick,
    },
    {
      id: 'rr1000',
      label: 'pick: round robin (smooth weighted), 1,000 instances of unrelated weights (O(n) loop)',
      build: () => b.roundRobin.build(i1000),
      expr: pick,
    },
    {
      id: 'rrmix1000',
      label: 'pick: round robin, 1,000 instances of weights 50/100/200 (precomputed cycle)',
      build: () => b.roundRobin.build(mixed1000),
      expr: pick,
    },
    {
      id: 'rreq1000',
      label: 'pick: round robin, 1,000 instances of equal weight (rotation)',
      build: () => b.roundRobin.build(eq1000),
      expr: pick,
    },
    {
      id: 'ring1000',
      label: 'pick: ring hash by key, 1,000 instances',
      build: () => b.ringHash.build(i1000),
      expr: 'p.pick(opts[i & 4095])',
      opts: keyOpts,
    },
    {
      id: 'loc1000',
      label: 'pick: locality (weighted random), 1,000 instances over 9 zones',
      build: () => b.locality().build(i1000, self),
      expr: pick,
    },
    {
      id: 'sdk100',
      label: 'pick: MusterClient.pick(service), weighted random, 100 instances kept by a gRPC watch',
      expr: 'arr.pick("picked")',
      arr: sdk.client,
    },
  ].map((c) => {
    let p;
    let buildMs;
    if (c.build) {
      // Built once per revision in the SDK: worth knowing too. Locality builds its groups' pickers
      // at their first pick, so its figure includes one pick.
      const times = [];
      for (let k = 0; k < 7; k++) {
        const t0 = performance.now();
        p = c.build();
        p.pick(c.opts?.[0]);
        times.push(performance.now() - t0);
      }
      buildMs = median(times);
    }
    const run = loopFor(c.expr)(p, c.arr, c.arr?.length ?? 0, c.opts);
    return { ...c, run, buildMs, rounds: [] };
  });
}

const fmtM = (x) => `${(x / 1e6).toFixed(2)} M`;

export const pick = {
  name: 'pick',
  needsCeiling: false,
  describe: `SDK load balancers: pick() per second in this process, no I/O (${ROUNDS} rounds × ${SECONDS} s per case, median)`,
  async run() {
    const sdk = await sdkClient();
    const all = await cases(sdk);
    try {
      for (const c of all) measure(c.run, WARMUP);
      for (let r = 0; r < ROUNDS; r++) for (const c of all) c.rounds.push(measure(c.run, SECONDS));
    } finally {
      await sdk.close();
    }
    const base = median(all.find((c) => c.baseline).rounds);
    return all.map((c) => {
      const ops = median(c.rounds);
      return row({
        scenario: c.label,
        rps: ops,
        ratio: ops / base,
        target: c.target ? { text: `≥ ${fmtInt(TARGET)} picks/s`, met: ops >= TARGET } : undefined,
        note: [
          `**${fmtInt(ops)} picks/s**, ${(1e9 / ops).toFixed(1)} ns/pick`,
          `median of ${ROUNDS} rounds of ${SECONDS} s after ${WARMUP} s warm-up (${c.rounds.map(fmtM).join(', ')} picks/s)`,
          c.buildMs === undefined
            ? ''
            : `build and first pick ${c.buildMs < 1 ? c.buildMs.toFixed(3) : c.buildMs.toFixed(1)} ms (median of 7)`,
          c.baseline
            ? 'the baseline of the pick rows: their ratio column is to it, not to the HTTP ceiling'
            : `ratio is to the same-run baseline (${fmtInt(base)} picks/s)`,
        ]
          .filter(Boolean)
          .join('; '),
      });
    });
  },
};
