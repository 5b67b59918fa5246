import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { PROTO_ROOT, REGISTRY_PROTO } from '@muster/api';
import { createClient, registerMany, scrape } from '../lib/client.mjs';
import { fmtMs, row } from '../lib/report.mjs';
import { sleep, withMuster } from '../lib/server.mjs';
import { percentile } from './longpoll.mjs';

// The gRPC side of the long-poll rows: Discover parked with the caller's revision and waitMs,
// and Watch streams holding the current revision, woken by one write. The tests only check that
// they wake with the change; how soon is measured here.
const SIZES = (process.env.BENCH_GRPC_WAKE_CLIENTS ?? '50,200').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_LONGPOLL_ROUNDS ?? 10);
const SERVICE = 'gw';

async function registryCtor() {
  const pkg = await protoLoader.load(REGISTRY_PROTO, {
    includeDirs: [PROTO_ROOT],
    keepCase: false,
    longs: Number,
    enums: String,
    defaults: false,
  });
  return grpc.loadPackageDefinition(pkg).muster.v1.Registry;
}

async function until(what, check, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await sleep(10);
  }
}

/**
 * `clients` Discover long-polls and as many Watch streams (one channel each, as separate
 * processes would have) on one service; each round one PATCH over HTTP. Latency = when an
 * answer (a Discover reply, a Watch snapshot) arrived here minus when the PATCH's
 * acknowledgement had been read here.
 */
async function measure(server, clients) {
  const Registry = await registryCtor();
  const writer = createClient(server.url, { maxSockets: 4 });
  const channels = Array.from(
    { length: clients },
    () => new Registry(server.grpcAddress, grpc.credentials.createInsecure()),
  );
  const gauge = async (kind) => (await scrape(writer)).get(`muster_watchers{kind="${kind}"}`) ?? 0;
  const [target] = await registerMany(writer, SERVICE, 10);
  const path = `/v1/namespaces/default/services/${SERVICE}/instances`;
  let current = (await writer.request('GET', path)).json.revision;
  const polls = [];
  const snapshots = [];
  let failures = 0;

  // Each stream answers the round's snapshot into `arrived`, set anew before each write.
  let arrived = [];
  const streams = channels.map((ch) => {
    const s = ch.Watch({ service: SERVICE, revision: current });
    s.on('data', (msg) => arrived.push({ at: performance.now(), revision: msg.revision }));
    s.on('error', () => {});
    return s;
  });
  try {
    await until(`${clients} Watch streams`, async () => (await gauge('grpc')) >= clients);
    for (let round = -1; round < ROUNDS; round++) {
      const held = current;
      arrived = [];
      const answers = channels.map(
        (ch) =>
          new Promise((resolve) => {
            ch.Discover({ service: SERVICE, revision: held, waitMs: 30_000 }, (err, res) =>
              resolve({ at: performance.now(), revision: err ? undefined : res.revision }),
            );
          }),
      );
      await until(`${clients} parked Discover calls`, async () => (await gauge('long_poll')) >= clients);
      await sleep(20); // let this process go idle so the timings below measure the server
      const ack = await writer.request('PATCH', `/v1/instances/${target.id}`, {
        body: { weight: 200 + round },
        headers: { authorization: `Bearer ${target.token}` },
      });
      if (ack.status !== 200) throw new Error(`PATCH answered ${ack.status}: ${ack.text}`);
      const ackAt = performance.now();
      current = ack.json.revision;
      const discovered = await Promise.all(answers);
      await until('every Watch snapshot', async () => arrived.length >= clients, 10_000).catch(() => {});
      if (round < 0) continue;
      for (const a of discovered) {
        if (a.revision === current) polls.push(a.at - ackAt);
        else failures++;
      }
      for (const a of arrived) {
        if (a.revision === current) snapshots.push(a.at - ackAt);
        else failures++;
      }
      failures += Math.max(0, clients - arrived.length);
      await sleep(50);
    }
  } finally {
    for (const s of streams) s.cancel();
    for (const ch of channels) ch.close();
    writer.close();
  }
  return { polls, snapshots, failures };
}

export const grpcWake = {
  name: 'grpcWake',
  needsCeiling: false,
  describe: `${SIZES.join(' / ')} gRPC Discover long-polls (revision + waitMs) and as many gRPC Watch streams on one service, ${ROUNDS} rounds of one PATCH each`,
  async run() {
    const rows = [];
    for (const clients of SIZES) {
      const m = await withMuster({ label: 'grpcWake' }, (server) => measure(server, clients));
      for (const [what, values] of [
        ['Discover long-poll', m.polls],
        ['Watch snapshot', m.snapshots],
      ]) {
        const p99 = percentile(values, 99);
        rows.push(
          row({
            scenario: `gRPC ${what} wake, ${clients} clients`,
            p99,
            target: { text: 'p99 < 20 ms', met: m.failures === 0 && p99 < 20 },
            note: [
              `from write ack: p50 ${fmtMs(percentile(values, 50))} ms, p99 ${fmtMs(p99)} ms, max ${fmtMs(Math.max(...values))} ms over ${ROUNDS} rounds (${values.length} answers)`,
              m.failures ? `WARNING ${m.failures} answers missed the change` : '',
            ]
              .filter(Boolean)
              .join('; '),
          }),
        );
      }
    }
    return rows;
  },
};
