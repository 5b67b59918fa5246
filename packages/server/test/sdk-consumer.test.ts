import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { MusterClient, roundRobin } from '@muster/client';
import { api, spawnServer, startServer, tempDir, waitFor, type RunningServer } from './harness.js';

const TRANSPORTS = ['grpc', 'http'] as const;
type Started = RunningServer & { muster: { grpcAddress: string } };
const addressOf = (s: Started | { url: string; grpcAddress: string }, t: 'grpc' | 'http') =>
  t === 'grpc' ? ('muster' in s ? s.muster.grpcAddress : s.grpcAddress) : s.url;

async function registerHttp(
  base: string,
  service: string,
  port: number,
  extra: Record<string, unknown> = {},
): Promise<{ id: string; token: string }> {
  const r = await api(base, 'POST', `/v1/namespaces/default/services/${service}/instances`, {
    host: '10.2.0.1',
    port,
    ...extra,
  });
  assert.ok(r.status === 201 || r.status === 200, JSON.stringify(r.body));
  return { id: r.body.instance.id, token: r.body.heartbeatToken };
}

const pickedIds = (client: MusterClient, service: string, n = 200) => {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const p = client.pick(service);
    if (p) seen.add(p.id);
  }
  return seen;
};

for (const transport of TRANSPORTS) {
  describe(`SDK consumer over ${transport}`, () => {
    const clients: MusterClient[] = [];
    const servers: RunningServer[] = [];
    after(async () => {
      await Promise.all(clients.map((c) => c.close()));
      await Promise.all(servers.map((s) => s.stop()));
    });
    const client = (s: Started, opts: ConstructorParameters<typeof MusterClient>[0] = {}) => {
      const c = new MusterClient({ transport, servers: [addressOf(s, transport)], pollIntervalMs: 60_000, ...opts });
      clients.push(c);
      return c;
    };

    it('sees a new instance pushed by the watch, without polling', async () => {
      const s = await startServer();
      servers.push(s);
      await registerHttp(s.url, 'push', 1);
      const c = client(s);
      assert.equal((await c.discover('push')).instances.length, 1);
      const t0 = Date.now();
      const b = await registerHttp(s.url, 'push', 2);
      await waitFor(() => pickedIds(c, 'push').has(b.id), 2000, 'pick to return the new instance');
      const took = Date.now() - t0;
      assert.ok(took < 1000, `seen after ${took} ms`);
      const a = await c.discover('push');
      assert.equal(a.instances.length, 2);
      assert.equal(a.stale, false);
      assert.equal(a.source, 'watch');
    });

    it('watches a service that does not exist yet like any other: its first instance, and one after the service was deleted, arrive without a poll', async () => {
      const s = await startServer();
      servers.push(s);
      // Polls every 60 s: whatever arrives sooner came by the watch.
      const c = client(s, { emptyConfirmMs: 100 });
      await c.ready('late');
      assert.equal(c.pick('late'), undefined);
      const first = await registerHttp(s.url, 'late', 1);
      await waitFor(
        () => c.pick('late')?.id === first.id,
        20_000,
        'the first instance of a service that did not exist when the consumer started',
      );
      assert.equal((await c.discover('late')).source, 'watch');

      assert.equal((await api(s.url, 'DELETE', '/v1/namespaces/default/services/late?force=true')).status, 204);
      await waitFor(() => c.pick('late') === undefined, 20_000, 'the deleted service to be empty');
      const again = await registerHttp(s.url, 'late', 2);
      await waitFor(() => c.pick('late')?.id === again.id, 20_000, 'an instance of the service created again');
      assert.equal((await c.discover('late')).source, 'watch');
    });

    it('stops picking an instance whose heartbeats stopped', async () => {
      const s = await startServer({ 'health.sweepInterval': '100ms' });
      servers.push(s);
      const live = await registerHttp(s.url, 'dying', 1, { healthCheck: { ttl: 60 } });
      const dead = await registerHttp(s.url, 'dying', 2, { healthCheck: { ttl: 1 } });
      const c = client(s);
      await c.ready('dying');
      assert.deepEqual([...pickedIds(c, 'dying')].sort(), [live.id, dead.id].sort());
      await waitFor(() => !pickedIds(c, 'dying').has(dead.id), 6000, 'pick to stop returning the silent instance');
      assert.deepEqual([...pickedIds(c, 'dying', 1000)], [live.id]);
    });

    it('filters locally, and includes unhealthy instances below the protection threshold', async () => {
      const s = await startServer({ 'health.sweepInterval': '100ms' });
      servers.push(s);
      const ok = await registerHttp(s.url, 'guarded', 1, {
        healthCheck: { ttl: 60 },
        metadata: { env: 'prod' },
        location: { zone: 'z1' },
      });
      for (const port of [2, 3, 4]) await registerHttp(s.url, 'guarded', port, { healthCheck: { ttl: 1 } });
      const plain = client(s);
      const guarded = client(s, { services: { guarded: { protectionThreshold: 0.5 } } });
      await plain.ready('guarded');
      await guarded.ready('guarded');
      await waitFor(
        async () => (await plain.discover('guarded')).instances.length === 1,
        6000,
        'three instances to expire',
      );
      assert.deepEqual([...pickedIds(plain, 'guarded')], [ok.id]);
      assert.equal(
        (await guarded.discover('guarded')).instances.length,
        4,
        '1 of 4 healthy is under 50 %: all are served',
      );
      assert.equal(pickedIds(guarded, 'guarded', 2000).size, 4);
      assert.equal((await plain.discover('guarded', { status: 'unhealthy' })).instances.length, 3);
      assert.deepEqual(
        (await plain.discover('guarded', { metadata: { env: 'prod' } })).instances.map((i) => i.id),
        [ok.id],
      );
      assert.deepEqual(
        (await plain.discover('guarded', { zone: 'z1' })).instances.map((i) => i.id),
        [ok.id],
      );
    });

    it('holds back an update that empties the service until it is confirmed', async () => {
      const s = await startServer();
      servers.push(s);
      const a = await registerHttp(s.url, 'emptied', 1);
      const c = client(s, { emptyConfirmMs: 500 });
      await c.ready('emptied');
      const stale = new Promise<{ reason: string }>((r) => c.once('stale', r));
      assert.equal(
        (await api(s.url, 'DELETE', `/v1/instances/${a.id}`, undefined, { authorization: `Bearer ${a.token}` })).status,
        204,
      );
      assert.equal((await stale).reason, 'empty-unconfirmed');
      const held = await c.discover('emptied');
      assert.equal(held.instances.length, 1, 'the previous list is kept');
      assert.equal(held.stale, true);
      await waitFor(async () => (await c.discover('emptied')).instances.length === 0, 3000, 'the confirmed empty list');
      assert.equal((await c.discover('emptied')).stale, false);
    });

    it('balances with the configured balancer', async () => {
      const s = await startServer();
      servers.push(s);
      const ids = [];
      for (const [port, weight] of [
        [1, 300],
        [2, 100],
      ] as const)
        ids.push((await registerHttp(s.url, 'rr', port, { weight })).id);
      const c = client(s, { balancer: roundRobin });
      await c.ready('rr');
      const counts = new Map<string, number>();
      for (let i = 0; i < 400; i++) {
        const p = c.pick('rr')!;
        counts.set(p.id, (counts.get(p.id) ?? 0) + 1);
      }
      assert.equal(counts.get(ids[0]!), 300);
      assert.equal(counts.get(ids[1]!), 100);
    });
  });
}

describe('SDK consumer: failover and outages', () => {
  it('keeps discovering through the second server when the first is killed', async () => {
    const a = await spawnServer();
    const b = await startServer();
    const c = new MusterClient({
      servers: [a.grpcAddress, b.muster.grpcAddress],
      pollIntervalMs: 60_000,
      backoffMaxMs: 500,
    });
    try {
      // Two independent registries (no cluster): the instance is registered on both.
      for (const s of [a.url, b.url]) await registerHttp(s, 'ha', 1, { healthCheck: { ttl: 60 } });
      const failovers: string[] = [];
      c.on('failover', (from, to) => failovers.push(`${from}->${to}`));
      assert.equal((await c.discover('ha')).instances.length, 1);
      await a.kill('SIGKILL');
      const added = await registerHttp(b.url, 'ha', 2, { healthCheck: { ttl: 60 } });
      await waitFor(() => pickedIds(c, 'ha').has(added.id), 5000, 'the consumer to follow the second server');
      const answer = await c.discover('ha');
      assert.equal(answer.instances.length, 2);
      assert.equal(answer.stale, false);
      assert.deepEqual(failovers, [`${a.grpcAddress}->${b.muster.grpcAddress}`]);
    } finally {
      await c.close();
      await a.stop();
      await b.stop();
    }
  });

  it('serves the disk cache, marked stale, when every server is down', async () => {
    const cacheDir = tempDir('muster-sdk-cache-');
    const s = await startServer();
    const first = new MusterClient({ servers: [s.muster.grpcAddress], cacheDir, backoffMaxMs: 300, timeoutMs: 1000 });
    const second = new MusterClient({ servers: [s.muster.grpcAddress], cacheDir, timeoutMs: 1000 });
    try {
      const inst = await registerHttp(s.url, 'cached', 1, { healthCheck: { ttl: 60 } });
      await first.ready('cached');
      await waitFor(() => fs.existsSync(`${cacheDir}/default/cached.json`), 3000, 'the cache file');
      const staleEvent = new Promise<{ reason: string }>((r) => first.once('stale', r));
      await s.stop();

      // The running consumer keeps its view, now stale.
      assert.equal((await staleEvent).reason, 'unreachable');
      const kept = await first.discover('cached');
      assert.deepEqual(
        kept.instances.map((i) => i.id),
        [inst.id],
      );
      assert.equal(kept.stale, true);
      assert.equal(first.pick('cached')?.id, inst.id);

      // A consumer that starts now has only the disk.
      await new Promise((r) => setTimeout(r, 50));
      const fromDisk = await second.discover('cached');
      assert.deepEqual(
        fromDisk.instances.map((i) => i.id),
        [inst.id],
      );
      assert.equal(fromDisk.stale, true);
      assert.equal(fromDisk.staleReason, 'disk-cache');
      assert.equal(fromDisk.source, 'disk');
      assert.ok(fromDisk.ageMs >= 50, `age ${fromDisk.ageMs} ms`);
      assert.equal(second.pick('cached')?.id, inst.id);
    } finally {
      await first.close();
      await second.close();
    }
  });

  it('does not serve instances older than maxHeartbeatAgeMs as fresh from the disk cache', async () => {
    const cacheDir = tempDir('muster-sdk-cache-');
    const s = await startServer();
    const writer = new MusterClient({ servers: [s.muster.grpcAddress], cacheDir });
    const inst = await registerHttp(s.url, 'aged', 1, { healthCheck: { ttl: 60 } });
    await writer.ready('aged');
    await waitFor(() => fs.existsSync(`${cacheDir}/default/aged.json`), 3000, 'the cache file');
    await writer.close();
    await s.stop();
    await new Promise((r) => setTimeout(r, 300));
    const strict = new MusterClient({
      servers: [s.muster.grpcAddress],
      cacheDir,
      maxHeartbeatAgeMs: 100,
      serveStale: false,
      timeoutMs: 500,
    });
    const lenient = new MusterClient({
      servers: [s.muster.grpcAddress],
      cacheDir,
      maxHeartbeatAgeMs: 100,
      timeoutMs: 500,
    });
    try {
      assert.equal((await strict.discover('aged')).instances.length, 0, 'too old to serve');
      assert.equal(strict.pick('aged'), undefined);
      const a = await lenient.discover('aged');
      assert.deepEqual(
        a.instances.map((i) => i.id),
        [inst.id],
        'served, because nothing fresher exists',
      );
      assert.equal(a.stale, true);
    } finally {
      await strict.close();
      await lenient.close();
    }
  });

  it('falls back to long-polling when watch streams fail, then to polling when long-polls fail too', async () => {
    const s = await startServer();
    // A proxy in front of the registry that, like some gateways, cannot pass streams, and later
    // not long-held requests either: the fault is made on the wire, not by stubbing the SDK.
    let refuse = /^\/v1\/watch/;
    const proxy = http.createServer((req, res) => {
      if (refuse.test(req.url!)) {
        res.writeHead(502).end('bad gateway');
        return;
      }
      const up = http.request(s.url + req.url, { method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode!, r.headers);
        r.pipe(res);
      });
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const via = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const c = new MusterClient({
      transport: 'http',
      servers: [via],
      pollIntervalMs: 300,
      backoffBaseMs: 20,
      backoffMaxMs: 50,
      watchRetryMs: 60_000,
    });
    try {
      await registerHttp(s.url, 'gated', 1);
      await c.ready('gated');
      await waitFor(async () => (await c.discover('gated')).source === 'long-poll', 5000, 'the consumer to long-poll');
      const t0 = Date.now();
      const b = await registerHttp(s.url, 'gated', 2);
      await waitFor(() => pickedIds(c, 'gated').has(b.id), 2000, 'the long-poll to bring the new instance');
      assert.ok(Date.now() - t0 < 250, `long-poll woke after ${Date.now() - t0} ms, before any poll would have`);

      refuse = /^\/v1\/watch|[?&]wait=/;
      const d = await registerHttp(s.url, 'gated', 3); // ends the parked long-poll; the next one is refused
      await waitFor(async () => (await c.discover('gated')).source === 'poll', 5000, 'the consumer to poll');
      await waitFor(() => pickedIds(c, 'gated').has(d.id), 2000, 'polling to bring the instance');
      const e = await registerHttp(s.url, 'gated', 4);
      await waitFor(() => pickedIds(c, 'gated').has(e.id), 2000, 'the next poll to bring the next instance');
      assert.equal((await c.discover('gated')).stale, false);
    } finally {
      await c.close();
      proxy.closeAllConnections();
      proxy.close();
      await s.stop();
    }
  });

  it('rejects with UNAVAILABLE when no server answers and there is no cache', async () => {
    const c = new MusterClient({ servers: ['127.0.0.1:1'], timeoutMs: 500 });
    try {
      await assert.rejects(c.discover('nothing'), { code: 'UNAVAILABLE' });
      assert.equal(c.pick('nothing'), undefined);
    } finally {
      await c.close();
    }
  });
});
