import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { WriteBatcher } from './batch/write-batcher.js';
import { HealthChecker } from './health/health-checker.js';
import { UnflushedHeartbeats } from './health/unflushed-heartbeats.js';
import { RegistryIndex } from './index/registry-index.js';
import { Metrics } from './metrics/metrics.js';
import { namingHooks, type ClusterHooks } from './muster.js';
import { NO_HOOKS } from './naming/naming-hooks.js';
import { NamingService } from './naming/naming-service.js';
import { MemoryStore } from './store/memory/memory-store.js';

const log = pino({ level: 'silent' });

/** A cluster node as the naming service sees it: what it was told, and what the store is asked. */
function fakeCluster(found = false): ClusterHooks & { beats: Array<[string, number]>; fetched: string[] } {
  const beats: Array<[string, number]> = [];
  const fetched: string[] = [];
  return {
    beats,
    fetched,
    recordHeartbeat: (id, at) => void beats.push([id, at]),
    fetchInstance: async (id) => (fetched.push(id), found),
  };
}

/** The naming service and health checker wired as muster.ts wires them, on a memory store and a hand-moved clock. */
async function node(cluster?: ClusterHooks) {
  const store = new MemoryStore();
  const clock = {
    t: 1_000_000,
    now() {
      return this.t;
    },
  };
  const index = new RegistryIndex(0);
  index.load(await store.load());
  const metrics = new Metrics(() => ({ healthy: 0, unhealthy: 0, isolated: 0 }));
  const batcher = new WriteBatcher(store, { maxSize: 1000, maxWaitMs: 0 }, { onCommitted: (c) => index.apply(c) }, log);
  const unflushed = new UnflushedHeartbeats();
  const naming = new NamingService(
    index,
    batcher,
    store,
    clock,
    metrics,
    {
      autoCreateService: true,
      verification: { allowLinkLocal: false, allowLoopback: false, allowPrivate: true },
    },
    namingHooks(cluster, unflushed, NO_HOOKS.verification),
  );
  const checker = new HealthChecker(
    index,
    naming,
    unflushed,
    clock,
    metrics,
    {
      sweepIntervalMs: 100,
      cleanupAfterMs: 0,
      protectRatio: 0.5,
      protectMin: 10,
      flushIntervalMs: 1000,
    },
    log,
  );
  await naming.ensureDefaultNamespace();
  const r = await naming.register('default', 'svc', { host: '10.0.0.1', port: 1000, healthCheck: { ttl: 1 } });
  const stored = async () => (await store.load()).instances.find((i) => i.id === r.instance.id)!.lastHeartbeat;
  return { clock, naming, checker, unflushed, id: r.instance.id, token: r.heartbeatToken, stored };
}

describe('heartbeat routing (muster.ts namingHooks)', () => {
  it('a single node keeps heartbeats for the health checker, whose flush writes them to the store', async () => {
    const n = await node();
    n.clock.t += 700;
    await n.naming.heartbeat(n.id, n.token);
    assert.equal(n.unflushed.size, 1);
    await n.checker.flush();
    assert.equal(n.unflushed.size, 0);
    assert.equal(await n.stored(), n.clock.t, 'the flush wrote the heartbeat time');
  });

  it('a cluster node sends heartbeats to the relay, with their time, and none to the local flush', async () => {
    const cluster = fakeCluster();
    const n = await node(cluster);
    const registeredAt = n.clock.t;
    n.clock.t += 700;
    await n.naming.heartbeat(n.id, n.token);
    await n.naming.heartbeatBatch([{ id: n.id, token: n.token }]);
    assert.deepEqual(cluster.beats, [
      [n.id, n.clock.t],
      [n.id, n.clock.t],
    ]);
    assert.equal(n.unflushed.size, 0, 'the local checker is not told');
    await n.checker.flush();
    assert.equal(await n.stored(), registeredAt, 'nothing flushed to the store by this node');
  });

  it('a cluster node asks the store for an instance it has not indexed before it answers NOT_FOUND; a single node does not', async () => {
    const cluster = fakeCluster(false);
    const clustered = await node(cluster);
    await assert.rejects(clustered.naming.heartbeat('elsewhere', 'token'), { code: 'NOT_FOUND' });
    assert.deepEqual(cluster.fetched, ['elsewhere']);
    assert.deepEqual(cluster.beats, [], 'a refused heartbeat goes nowhere');
    const single = await node();
    await assert.rejects(single.naming.heartbeat('elsewhere', 'token'), { code: 'NOT_FOUND' });
    assert.equal(single.unflushed.size, 0);
  });
});
