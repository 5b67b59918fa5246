import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { cannon, problems, steadyNote } from '../lib/cannon.mjs';
import { batchStats, createClient, hostFor, registerMany, scrape } from '../lib/client.mjs';
import { fmtCpu } from '../lib/probe.mjs';
import { fmtBytes, fmtInt, fmtMs, row } from '../lib/report.mjs';
import { sleep, withMuster } from '../lib/server.mjs';

const COUNT = Number(process.env.BENCH_MEMORY_INSTANCES ?? 100_000);
const SERVICES = 100;
// Longer than health.flushInterval (10 s), so the set of heartbeats waiting to be flushed, which
// every registration adds to, has been written and emptied before the second reading.
const SETTLE_MS = Number(process.env.BENCH_MEMORY_SETTLE_MS ?? 11_000);
const hook = pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), '../lib/gc-hook.mjs')).href;

const metadataFor = (n) => ({
  version: `1.${n % 7}.${n % 13}`,
  zone: `zone-${n % 3}`,
  env: 'production',
  team: `team-${n % 20}`,
});

async function reading(client, server, gc) {
  if (gc) {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error('the server did not report a forced GC within 10 s')), 10_000);
      const onData = (d) => d.toString().includes('bench-gc-done') && done();
      const done = (err) => {
        clearTimeout(timer);
        server.child.stderr.off('data', onData);
        if (err) reject(err);
        else resolve();
      };
      server.child.stderr.on('data', onData);
      process.kill(server.pid, 'SIGUSR2');
    });
  }
  const m = await scrape(client);
  const need = (name) => {
    const v = m.get(name);
    if (v === undefined) throw new Error(`GET /metrics has no ${name}: were the metric names changed?`);
    return v;
  };
  return {
    heapUsed: need('muster_nodejs_heap_size_used_bytes'),
    rss: need('muster_process_resident_memory_bytes'),
    external: m.get('muster_nodejs_external_memory_bytes'),
    instances: (m.get('muster_instances{state="healthy"}') ?? 0) + (m.get('muster_instances{state="unhealthy"}') ?? 0),
  };
}

/**
 * Registers COUNT instances with 4 metadata keys over SERVICES services through the real API
 * (autocannon, many concurrent registrations, so the fill is also a registration figure with
 * metadata), then compares the server's heap before and after. The headline is heap used after a
 * forced full GC (a preload hook, see lib/gc-hook.mjs); heap used after a settle period without
 * forced GC and resident memory are reported beside it.
 */
export const memory = {
  name: 'memory',
  needsCeiling: false,
  describe: `${COUNT.toLocaleString('en-US')} instances × 4 metadata keys over ${SERVICES} services; heap per instance`,
  async run() {
    return withMuster({ label: 'memory', nodeArgs: ['--expose-gc', '--import', hook] }, async (server) => {
      const client = createClient(server.url);
      try {
        await sleep(2000);
        const base = await reading(client, server, false);
        const baseGc = await reading(client, server, true);

        let n = 0;
        const requests = [
          {
            method: 'POST',
            setupRequest(req) {
              const i = n++;
              req.path = `/v1/namespaces/default/services/mem-${i % SERVICES}/instances`;
              req.body = JSON.stringify({
                host: hostFor(i),
                port: 8080,
                healthCheck: { ttl: 60 },
                metadata: metadataFor(i),
              });
              return req;
            },
          },
        ];
        const beforeFill = await scrape(client);
        const s = await cannon({
          url: server.url,
          pid: server.pid,
          requests,
          amount: COUNT,
          warmup: false,
          headers: { 'content-type': 'application/json' },
        });
        const b = batchStats(beforeFill, await scrape(client));
        let have = (await reading(client, server, false)).instances;
        if (have < COUNT) {
          // Top up whatever the fill lost (errors are reported in the note), past every host used.
          await registerMany(client, 'mem-topup', COUNT - have, { offset: n + 1, metadata: metadataFor });
          have = (await reading(client, server, false)).instances;
        }

        await sleep(SETTLE_MS);
        const after = await reading(client, server, false);
        const afterGc = await reading(client, server, true);
        const added = afterGc.instances - baseGc.instances;
        const perGc = (afterGc.heapUsed - baseGc.heapUsed) / added;
        const perSettled = (after.heapUsed - base.heapUsed) / added;
        const perRss = (afterGc.rss - baseGc.rss) / added;
        const created = s.codes['201'] ?? 0;
        return row({
          scenario: `memory, ${fmtInt(added)} instances × 4 metadata keys`,
          rps: created / s.duration,
          p99: s.p99,
          target: { text: '< 2 KB/instance (heap used after forced GC)', met: added >= COUNT && perGc < 2048 },
          note: [
            `**${fmtBytes(perGc)}/instance heap used after forced GC** (${fmtBytes(baseGc.heapUsed)} → ${fmtBytes(afterGc.heapUsed)})`,
            `${fmtBytes(perSettled)}/instance heap used after ${SETTLE_MS / 1000} s settle, no forced GC`,
            `${fmtBytes(perRss)}/instance RSS (${fmtBytes(baseGc.rss)} → ${fmtBytes(afterGc.rss)}, incl. SQLite cache)`,
            `external ${fmtBytes(baseGc.external)} → ${fmtBytes(afterGc.external)}`,
            `req/s and p99 are the fill's registrations (${SERVICES} services, durable; avg batch ${b.avgSize.toFixed(1)} writes, commit ${fmtMs(b.avgCommitMs)} ms)`,
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
