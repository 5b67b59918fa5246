import assert from 'node:assert/strict';
import { it } from 'node:test';
import pino from 'pino';
import { clusterKeys } from './cluster-keys.js';
import { NodeDirectory, type NodeDirectoryOptions } from './node-directory.js';
import { Lease } from './redis-lease.js';
import { describeRedis, redisHarness, waitFor } from './redis-test-support.js';

const log = pino({ level: 'silent' });

describeRedis('NodeDirectory: the nodes of the cluster', () => {
  const h = redisHarness();

  function directory(prefix: string, id: string, over: Partial<NodeDirectoryOptions> = {}): NodeDirectory {
    const self = {
      id,
      httpAddress: `http://10.0.0.${id.length}:8090`,
      grpcAddress: `10.0.0.${id.length}:8091`,
      version: '0.1.0',
      startedAt: 1_700_000_000_000,
    };
    return h.defer(
      new NodeDirectory({
        redis: h.client(),
        prefix,
        log,
        self,
        intervalMs: 50,
        staleAfterMs: 150,
        expireMs: 400,
        ...over,
      }),
      (d) => d.stop(),
    );
  }

  it('lets two nodes see each other, with the lease holder marked', async () => {
    const prefix = h.prefix();
    const a = directory(prefix, 'node-a');
    const b = directory(prefix, 'node-bb');
    const lease = h.defer(
      new Lease({ redis: h.client(), prefix, log, nodeId: 'node-bb', ttlMs: 300, renewIntervalMs: 100 }),
      (l) => l.stop(),
    );
    a.start();
    b.start();
    lease.start();
    await waitFor(() => lease.held, 1000, 'the lease');
    await waitFor(async () => (await a.list())?.length === 2, 1000, 'both entries');
    const snap = await a.snapshot();
    assert.ok(snap);
    assert.equal(snap.leaseHolder, 'node-bb');
    assert.ok(Math.abs(snap.now - Date.now()) < 1000, "now is Redis's clock (same machine here)");
    const [na, nb] = snap.nodes;
    assert.deepEqual(
      { ...na, lastSeen: 0, lastSeenAgoMs: 0, clockOffsetMs: 0 },
      {
        id: 'node-a',
        httpAddress: 'http://10.0.0.6:8090',
        grpcAddress: '10.0.0.6:8091',
        version: '0.1.0',
        startedAt: 1_700_000_000_000,
        lastSeen: 0,
        lastSeenAgoMs: 0,
        stale: false,
        leaseHolder: false,
        self: true,
        clockOffsetMs: 0,
      },
    );
    assert.equal(nb?.id, 'node-bb');
    assert.equal(nb?.leaseHolder, true);
    assert.equal(nb?.self, false);
    assert.ok(nb!.lastSeenAgoMs < 150 && nb!.lastSeen <= snap.now);
    const fromB = await b.list();
    assert.deepEqual(
      fromB?.map((n) => [n.id, n.self]),
      [
        ['node-a', false],
        ['node-bb', true],
      ],
    );
    // The stored entry is the node's JSON with Redis's lastSeen appended.
    const raw = JSON.parse((await h.admin().hget(clusterKeys(prefix).nodes, 'node-a'))!);
    assert.deepEqual(Object.keys(raw), [
      'id',
      'httpAddress',
      'grpcAddress',
      'version',
      'startedAt',
      'wallTime',
      'lastSeen',
    ]);
    assert.equal(typeof raw.lastSeen, 'number');
  });

  it("tells how far each node's own clock is from Redis's", async () => {
    const prefix = h.prefix();
    const a = directory(prefix, 'node-a');
    const ahead = directory(prefix, 'node-ahead', { wallClock: () => Date.now() + 90_000 });
    a.start();
    ahead.start();
    await waitFor(async () => (await a.list())?.length === 2, 1000, 'both entries');
    const offsets = Object.fromEntries((await a.list())!.map((n) => [n.id, n.clockOffsetMs]));
    // Same machine as Redis: only the write's latency separates the clocks, and 90 s for the skewed one.
    assert.ok(Math.abs(offsets['node-a']!) < 1000, JSON.stringify(offsets));
    assert.ok(Math.abs(offsets['node-ahead']! - 90_000) < 1000, JSON.stringify(offsets));
  });

  it('drops a stopped node from the list at once', async () => {
    const prefix = h.prefix();
    const a = directory(prefix, 'node-a');
    const b = directory(prefix, 'node-b');
    a.start();
    b.start();
    await waitFor(async () => (await a.list())?.length === 2, 1000, 'both entries');
    await b.stop();
    assert.deepEqual(
      (await a.list())?.map((n) => n.id),
      ['node-a'],
    );
  });

  it('marks an entry that is no longer written stale, then removes it', async () => {
    const prefix = h.prefix();
    const a = directory(prefix, 'node-a');
    const b = directory(prefix, 'node-b');
    a.start();
    b.start();
    await waitFor(async () => (await a.list())?.length === 2, 1000, 'both entries');
    await b.stop({ remove: false }); // a crash: the entry stays
    const staleAfter = await waitFor(
      async () => (await a.list())?.find((n) => n.id === 'node-b')?.stale === true,
      1000,
      'b to be stale',
    );
    const listed = await a.list();
    assert.equal(listed?.find((n) => n.id === 'node-a')?.stale, false, 'a keeps writing');
    assert.ok(listed!.find((n) => n.id === 'node-b')!.lastSeenAgoMs > 150);
    await waitFor(async () => (await a.list())?.length === 1, 1000, 'b to be removed');
    assert.equal(await h.admin().hexists(clusterKeys(prefix).nodes, 'node-b'), 0, 'removed from the hash');
    assert.ok(staleAfter > 50);
  });

  it('answers undefined while Redis is unreachable, and reports it', async () => {
    const prefix = h.prefix();
    const redis = h.client();
    const a = directory(prefix, 'node-a', { redis });
    assert.equal(await a.beat(), true);
    assert.equal(a.available, true);
    redis.disconnect();
    assert.equal(await a.list(), undefined);
    assert.equal(await a.beat(), false);
    assert.equal(a.available, false);
    assert.ok(a.lastError);
  });

  it('ignores an unreadable entry instead of failing the list', async () => {
    const prefix = h.prefix();
    const a = directory(prefix, 'node-a');
    await a.beat();
    await h.admin().hset(clusterKeys(prefix).nodes, 'junk', 'not json', 'half', '{"id":"half"}');
    assert.deepEqual(
      (await a.list())?.map((n) => n.id),
      ['node-a'],
    );
  });
});
