import { cannon, problems, steadyNote } from '../lib/cannon.mjs';
import { batchStats, createClient, newHostRegistrations, scrape } from '../lib/client.mjs';
import { fmtCpu } from '../lib/probe.mjs';
import { fmtInt, fmtMs, row } from '../lib/report.mjs';
import { withMuster } from '../lib/server.mjs';

/**
 * Durable registrations of endpoints never seen before: every request carries a host of its
 * own, so each one is a 201 that inserts rows, appends an event and bumps the revision.
 */
export const register = {
  name: 'register',
  needsCeiling: false,
  describe: 'POST /v1/namespaces/default/services/S/instances, a new host per request, SQLite synchronous=full',
  async run() {
    return withMuster({ label: 'register' }, async (server) => {
      const client = createClient(server.url);
      try {
        const requests = newHostRegistrations();
        const before = await scrape(client);
        const s = await cannon({
          url: server.url,
          pid: server.pid,
          path: '/v1/namespaces/default/services/reg/instances',
          requests,
          headers: { 'content-type': 'application/json' },
        });
        const b = batchStats(before, await scrape(client));
        const created = s.codes['201'] ?? 0;
        return row({
          scenario: 'register new instance (durable)',
          rps: created / s.duration,
          p99: s.p99,
          target: { text: '≥ 10,000 registrations/s', met: created / s.duration >= 10_000 },
          note: [
            `**${fmtInt(created / s.duration)} registrations/s**`,
            `avg batch ${b.avgSize.toFixed(1)} writes, commit ${fmtMs(b.avgCommitMs)} ms (incl. warm-up)`,
            steadyNote(s),
            fmtCpu(s.cpu),
            problems(s),
          ]
            .filter(Boolean)
            .join('; '),
        });
      } finally {
        client.close();
      }
    });
  },
};
