import fs from 'node:fs';
import path from 'node:path';
import { cannon, problems } from '../lib/cannon.mjs';
import { createClient, registerMany, singleHeartbeats } from '../lib/client.mjs';
import { fmtInt, row } from '../lib/report.mjs';
import { withMuster } from '../lib/server.mjs';

const ROUNDS = Math.max(1, Math.floor(Number(process.env.BENCH_AUTH_ROUNDS ?? 3)));
const HB_INSTANCES = 2000;

/**
 * One server per mode and round, measured back to back: auth off, and auth on with
 * auth.clients required, every discovery carrying a Bearer access token (looked up and its rules
 * matched on every request) and every heartbeat its instance's token.
 */
async function measure(on) {
  const flags = on ? { authEnabled: true, authClients: 'required' } : { authEnabled: false };
  return withMuster({ label: on ? 'auth-on' : 'auth-off', flags }, async (server) => {
    const client = createClient(server.url);
    try {
      // The same request bytes either way: with auth off the header is ignored, so the ratio is
      // the server's auth work alone, not the load generator's cost of a longer request.
      let headers = { authorization: `Bearer mst_000000000000_${'x'.repeat(43)}` };
      if (on) {
        const admin = fs.readFileSync(path.join(server.dataDir, 'admin.token'), 'utf8').trim();
        const made = await client.request('POST', '/v1/tokens', {
          body: { name: 'bench', rules: ['write:default/*'] },
          headers: { authorization: `Bearer ${admin}` },
        });
        if (made.status !== 201) throw new Error(`token creation answered ${made.status}: ${made.text}`);
        headers = { authorization: `Bearer ${made.json.secret}` };
      }
      await registerMany(client, 'auth-disc', 10, { headers });
      const list = await registerMany(client, 'auth-hb', HB_INSTANCES, { headers });
      const discPath = '/v1/namespaces/default/services/auth-disc/instances';
      const probe = await client.request('GET', discPath, { headers });
      if (probe.status !== 200) throw new Error(`discovery answered ${probe.status}: ${probe.text}`);
      const disc = await cannon({ url: server.url, pid: server.pid, path: discPath, headers });
      const hb = await cannon({ url: server.url, pid: server.pid, requests: singleHeartbeats(list) });
      return { disc, hb };
    } finally {
      client.close();
    }
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

export const authCost = {
  name: 'authCost',
  needsCeiling: false,
  describe: `discovery (10 instances) and single heartbeats with auth on (clients required, Bearer token) vs off, ${ROUNDS} rounds alternating which goes first`,
  async run() {
    const runs = { on: [], off: [] };
    for (let r = 0; r < ROUNDS; r++) {
      for (const on of r % 2 === 0 ? [false, true] : [true, false]) runs[on ? 'on' : 'off'].push(await measure(on));
    }
    const rows = [];
    for (const [key, label] of [
      ['disc', 'discovery, 10 instances'],
      ['hb', 'heartbeat, single'],
    ]) {
      const on = median(runs.on.map((x) => x[key].rps));
      const off = median(runs.off.map((x) => x[key].rps));
      const ratio = on / off;
      rows.push(
        row({
          scenario: `${label}: auth on vs off`,
          rps: on,
          p99: median(runs.on.map((x) => x[key].p99)),
          ratio,
          target: { text: '≥ 90 % of auth off', met: ratio >= 0.9 },
          note: [
            `auth on ${runs.on.map((x) => fmtInt(x[key].rps)).join(', ')} req/s; off ${runs.off.map((x) => fmtInt(x[key].rps)).join(', ')} req/s (median of ${ROUNDS} each; the ratio column is on / off)`,
            ...[...runs.on, ...runs.off].map((x) => problems(x[key])).filter(Boolean),
          ].join('; '),
        }),
      );
    }
    return rows;
  },
};
