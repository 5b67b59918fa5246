import { cannon, problems, steadyNote } from '../lib/cannon.mjs';
import { createClient, okHeartbeats, registerMany, singleHeartbeats } from '../lib/client.mjs';
import { fmtCpu } from '../lib/probe.mjs';
import { fmtInt, row } from '../lib/report.mjs';
import { withMuster } from '../lib/server.mjs';

// Heartbeats are spread over this many instances so the bench does not measure one hot record.
const INSTANCES = Number(process.env.BENCH_HB_INSTANCES ?? 10_000);
const BATCH = 100;

async function withInstances(name, fn) {
  return withMuster({ label: name }, async (server) => {
    const client = createClient(server.url);
    try {
      const list = await registerMany(client, 'hb', INSTANCES);
      return await fn(server, client, list);
    } finally {
      client.close();
    }
  });
}

export const heartbeat = {
  name: 'heartbeat',
  needsCeiling: true,
  describe: `PUT /v1/instances/{id}/heartbeat with the Bearer heartbeatToken, round-robin over ${INSTANCES.toLocaleString('en-US')} instances`,
  async run() {
    return withInstances('heartbeat', async (server, client, list) => {
      const requests = singleHeartbeats(list);
      const before = await okHeartbeats(client);
      const s = await cannon({ url: server.url, pid: server.pid, requests });
      const counted = (await okHeartbeats(client)) - before;
      return row({
        scenario: 'heartbeat, single',
        rps: s.rps,
        p99: s.p99,
        ratioTarget: 0.5,
        note: [`server counted ${fmtInt(counted)} ok (incl. warm-up)`, steadyNote(s), fmtCpu(s.cpu), problems(s)]
          .filter(Boolean)
          .join('; '),
      });
    });
  },
};

export const heartbeatBatch = {
  name: 'heartbeatBatch',
  needsCeiling: true,
  describe: `POST /v1/heartbeats with ${BATCH} {id, token} items per request over ${INSTANCES.toLocaleString('en-US')} instances`,
  async run() {
    return withInstances('heartbeatBatch', async (server, client, list) => {
      const bodies = [];
      for (let i = 0; i < list.length; i += BATCH) {
        bodies.push(JSON.stringify({ heartbeats: list.slice(i, i + BATCH).map(({ id, token }) => ({ id, token })) }));
      }
      const check = async () => {
        const r = await client.request('POST', '/v1/heartbeats', { body: bodies[0] });
        const bad = r.json?.results?.filter((x) => !x.ok) ?? [];
        if (r.status !== 200 || r.json.results.length !== BATCH || bad.length > 0)
          throw new Error(`a heartbeat batch answered ${r.status}: ${r.text.slice(0, 300)}`);
      };
      await check();
      let k = 0;
      const requests = [
        {
          method: 'POST',
          setupRequest(req) {
            req.body = bodies[k++ % bodies.length];
            return req;
          },
        },
      ];
      const before = await okHeartbeats(client);
      const s = await cannon({
        url: server.url,
        pid: server.pid,
        path: '/v1/heartbeats',
        requests,
        headers: { 'content-type': 'application/json' },
      });
      const counted = (await okHeartbeats(client)) - before;
      await check();
      return row({
        scenario: `heartbeat, batches of ${BATCH}`,
        rps: s.rps,
        p99: s.p99,
        target: { text: 'none (heartbeats/s reported)' },
        note: [
          `**${fmtInt(s.rps * BATCH)} heartbeats/s**`,
          `server counted ${fmtInt(counted)} ok (incl. warm-up)`,
          steadyNote(s),
          fmtCpu(s.cpu),
          problems(s),
        ]
          .filter(Boolean)
          .join('; '),
      });
    });
  },
};
