import { withBareServer } from '../ceiling.mjs';
import { createClient, rawGetter, registerMany, scrape } from '../lib/client.mjs';
import { fmtMs, row } from '../lib/report.mjs';
import { sleep, withMuster } from '../lib/server.mjs';

// Several sizes: on this machine even a bare node:http server needs ~0.1 ms per answer it
// writes, so the client count decides whether a 20 ms p99 is reachable at all.
const SIZES = (process.env.BENCH_LONGPOLL_CLIENTS ?? '50,200,1000').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_LONGPOLL_ROUNDS ?? 10);

export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

async function until(what, check, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await sleep(10);
  }
}

/**
 * `clients` parked requests, one trigger, ROUNDS times after one unrecorded warm-up round (the
 * first round of a fresh server runs the wake path cold and is several times slower). Latency
 * of an answer = when its first byte arrived here minus when the trigger's own answer (the
 * write's acknowledgement) had been read here. Each waiter is a bare socket (rawGetter) and
 * answers are parsed only after a round: with node:http and JSON.parse per answer, this client
 * alone spread 200 answers over ~25 ms on this machine, the whole target.
 */
async function measureWake(url, clients, { park, parked, trigger, changed }) {
  const waiters = Array.from({ length: clients }, () => rawGetter(url));
  const writer = createClient(url, { maxSockets: 4 });
  const fromAck = [];
  const fromSend = [];
  const acks = [];
  const spreads = [];
  let failures = 0;
  try {
    for (let round = -1; round < ROUNDS; round++) {
      const polls = waiters.map((w) => park(w));
      await until(`${clients} parked requests`, () => parked(writer, clients));
      await sleep(20); // let this process go idle so the timings below measure the server
      const sent = performance.now();
      const ack = await trigger(writer, round);
      const answers = await Promise.all(polls);
      if (round < 0) {
        await sleep(50);
        continue;
      }
      acks.push(ack.at - sent);
      let first = Infinity;
      let last = -Infinity;
      for (const a of answers) {
        if (!changed(a)) {
          failures++;
          continue;
        }
        fromAck.push(a.at - ack.at);
        fromSend.push(a.at - sent);
        first = Math.min(first, a.at);
        last = Math.max(last, a.at);
      }
      spreads.push(last - first);
      await sleep(50);
    }
  } finally {
    for (const w of waiters) w.close();
    writer.close();
  }
  return {
    failures,
    answers: fromAck.length,
    p50: percentile(fromAck, 50),
    p99: percentile(fromAck, 99),
    max: Math.max(...fromAck),
    sentP50: percentile(fromSend, 50),
    sentP99: percentile(fromSend, 99),
    ackP50: percentile(acks, 50),
    spreadP50: percentile(spreads, 50),
  };
}

/** The same harness against a bare node:http server: what this machine and client add anyway. */
function bareFloor(clients) {
  return withBareServer(({ url }) =>
    measureWake(url, clients, {
      park: (w) => w.get('/hold'),
      parked: async (c, n) => Number((await c.request('GET', '/parked')).text) >= n,
      trigger: (c) => c.request('POST', '/release', { parse: false }),
      changed: (a) => a.status === 200,
    }),
  );
}

/**
 * Many clients park a long-poll (revision=R&wait=30s) on one service; one PATCH changes it. The
 * server wakes watchers in the same tick that it answers the writer, so a value can be negative:
 * that watcher heard of the change before the writer did.
 */
export const longpoll = {
  name: 'longpoll',
  needsCeiling: false,
  describe: `${SIZES.join(' / ')} long-polls (revision=R&wait=30s) on one service, ${ROUNDS} rounds of one PATCH each; also a bare node:http floor`,
  async run() {
    const rows = [];
    for (const clients of SIZES) rows.push(await longpollOf(clients));
    return rows;
  },
};

async function longpollOf(clients) {
  const floor = await bareFloor(clients);
  const m = await withMuster({ label: 'longpoll' }, async (server) => {
    const setup = createClient(server.url);
    let target;
    let current; // the revision the next long-polls hold
    let previous; // the revision before the last write: an answer must be newer
    const path = '/v1/namespaces/default/services/lp/instances';
    try {
      [target] = await registerMany(setup, 'lp', 10);
      current = (await setup.request('GET', path)).json.revision;
    } finally {
      setup.close();
    }
    return measureWake(server.url, clients, {
      park: (w) => w.get(`${path}?revision=${current}&wait=30s`),
      parked: async (c, n) => ((await scrape(c)).get('muster_watchers{kind="long_poll"}') ?? 0) >= n,
      async trigger(c, round) {
        const ack = await c.request('PATCH', `/v1/instances/${target.id}`, {
          body: { weight: 200 + round }, // never the default 100: an unchanged weight is no change
          headers: { authorization: `Bearer ${target.token}` },
        });
        if (ack.status !== 200) throw new Error(`PATCH answered ${ack.status}: ${ack.text}`);
        previous = current;
        current = ack.json.revision;
        return ack;
      },
      changed: (a) => a.status === 200 && JSON.parse(a.text).revision > previous,
    });
  });
  return row({
    scenario: `long-poll wake, ${clients} clients`,
    p99: m.p99,
    target: { text: 'p99 < 20 ms', met: m.failures === 0 && m.p99 < 20 },
    note: [
      `from write ack: p50 ${fmtMs(m.p50)} ms, p99 ${fmtMs(m.p99)} ms, max ${fmtMs(m.max)} ms over ${ROUNDS} rounds (${m.answers} answers)`,
      `from write sent: p50 ${fmtMs(m.sentP50)} ms, p99 ${fmtMs(m.sentP99)} ms; write ack p50 ${fmtMs(m.ackP50)} ms`,
      `first→last answer of a round p50 ${fmtMs(m.spreadP50)} ms`,
      `floor with a bare node:http server and this client: p50 ${fmtMs(floor.p50)} ms, p99 ${fmtMs(floor.p99)} ms, first→last ${fmtMs(floor.spreadP50)} ms`,
      m.failures ? `WARNING ${m.failures} long-polls did not answer the change` : '',
    ]
      .filter(Boolean)
      .join('; '),
  });
}
