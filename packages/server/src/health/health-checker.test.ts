import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { WriteBatcher } from '../batch/write-batcher.js';
import { RegistryIndex } from '../index/registry-index.js';
import { Metrics } from '../metrics/metrics.js';
import { NO_HOOKS } from '../naming/naming-hooks.js';
import { NamingService } from '../naming/naming-service.js';
import { MemoryStore } from '../store/memory/memory-store.js';
import { HealthChecker, type HealthOptions, type SweepGate } from './health-checker.js';
import { UnflushedHeartbeats } from './unflushed-heartbeats.js';

const log = pino({ level: 'silent' });

/** The real domain stack on a memory store, with a clock the test moves by hand. */
async function stack(
  opts: Partial<HealthOptions> = {},
  store = new MemoryStore(),
  startAt = 1_000_000,
  gate?: SweepGate,
) {
  const clock = {
    t: startAt,
    now() {
      return this.t;
    },
  };
  const index = new RegistryIndex(0);
  index.load(await store.load());
  const metrics = new Metrics(() => ({ healthy: 0, unhealthy: 0, isolated: 0 }));
  const batcher = new WriteBatcher(store, { maxSize: 1000, maxWaitMs: 0 }, { onCommitted: (c) => index.apply(c) }, log);
  // Wired as a single node is: accepted heartbeats wait for the checker's flush.
  const unflushed = new UnflushedHeartbeats();
  const naming = new NamingService(
    index,
    batcher,
    store,
    clock,
    metrics,
    { autoCreateService: true, verification: { allowLinkLocal: false, allowLoopback: false, allowPrivate: true } },
    {
      ...NO_HOOKS,
      heartbeats: unflushed.note,
    },
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
      ...opts,
    },
    log,
    gate,
  );
  await naming.ensureDefaultNamespace();
  const register = async (n: number, service = 'svc') => {
    const out: Array<{ id: string; token: string }> = [];
    for (let i = 0; i < n; i++) {
      const r = await naming.register(
        'default',
        service,
        { host: `10.0.${out.length}.${i}`, port: 1000 + i, healthCheck: { ttl: 1 } },
        undefined,
      );
      out.push({ id: r.instance.id, token: r.heartbeatToken });
    }
    return out;
  };
  const healthy = (id: string) => index.instances.get(id)!.healthy;
  return { clock, index, naming, checker, register, healthy, store };
}

describe('health checker (injected clock)', () => {
  it('expires a silent instance at the first sweep after 3 x ttl, and a heartbeat brings it back', async () => {
    const { clock, checker, register, healthy, naming } = await stack();
    const [a] = await register(1);
    clock.t += 3000;
    await checker.sweep();
    assert.equal(healthy(a!.id), true, 'exactly 3 x ttl is not yet expired');
    clock.t += 1;
    await checker.sweep();
    assert.equal(healthy(a!.id), false);
    await naming.heartbeat(a!.id, a!.token);
    assert.equal(healthy(a!.id), true);
  });

  it('protects against a mass silence even when the silences are staggered across sweeps', async () => {
    const { clock, checker, register, healthy, naming } = await stack();
    const fleet = await register(20);
    // Heartbeat phases spread over one ttl, as real clients' are.
    const t0 = clock.t;
    for (let i = 0; i < fleet.length; i++) {
      clock.t = t0 + i * 50;
      await naming.heartbeat(fleet[i]!.id, fleet[i]!.token);
    }
    const silent = fleet.slice(0, 15);
    const talking = fleet.slice(15);
    for (let step = 0; step < 100; step++) {
      clock.t += 100;
      if (step % 3 === 0) for (const f of talking) await naming.heartbeat(f.id, f.token);
      await checker.sweep();
      for (const f of silent) assert.equal(healthy(f.id), true, `expired at step ${step}`);
    }
    assert.equal(checker.protecting, true);
  });

  it('still expires a small group going dark in a large registry', async () => {
    const { clock, checker, register, healthy, naming } = await stack();
    const fleet = await register(20);
    const dark = fleet.slice(0, 3);
    for (let step = 0; step < 40; step++) {
      clock.t += 100;
      for (const f of fleet.slice(3)) await naming.heartbeat(f.id, f.token);
      await checker.sweep();
    }
    for (const f of dark) assert.equal(healthy(f.id), false);
    for (const f of fleet.slice(3)) assert.equal(healthy(f.id), true);
    assert.equal(checker.protecting, false);
  });

  it('gives every instance a full 3 x ttl after a start, and removes long-unhealthy ones after cleanupAfter', async () => {
    const first = await stack();
    const [a] = await first.register(1);
    // Restart 10 s later on the same store: the stored heartbeat is 10 s old.
    const second = await stack({ cleanupAfterMs: 5000 }, first.store, first.clock.t + 10_000);
    assert.equal(second.healthy(a!.id), true);
    second.clock.t += 2900;
    await second.checker.sweep();
    assert.equal(second.healthy(a!.id), true, 'inside the grace window');
    second.clock.t += 200;
    await second.checker.sweep();
    assert.equal(second.healthy(a!.id), false, 'after the grace window');
    second.clock.t += 5001;
    await second.checker.sweep();
    assert.equal(second.index.instances.has(a!.id), false, 'removed after cleanupAfter');
    const types = (await second.store.listEvents({ limit: 10, instanceId: a!.id })).map((e) => e.type);
    assert.deepEqual(types, ['instance.registered', 'instance.unhealthy', 'instance.removed']);
  });

  it('in a cluster: expires only while holding the lease, by the newest heartbeat any node took, and nobody when that is unknown', async () => {
    const gate = {
      held: false,
      times: new Map<string, number>() as Map<string, number> | undefined,
      holdsLease() {
        return this.held;
      },
      async latestHeartbeats(ids: string[]) {
        return this.times && new Map([...this.times].filter(([id]) => ids.includes(id)));
      },
    };
    const { clock, checker, register, healthy } = await stack({}, new MemoryStore(), 1_000_000, gate);
    const [a, b] = await register(2);
    clock.t += 3001;
    await checker.sweep();
    assert.ok(healthy(a!.id) && healthy(b!.id), 'not the lease holder: nobody expires');
    gate.held = true;
    gate.times!.set(a!.id, clock.t - 500); // a heartbeat another node took for a
    await checker.sweep();
    assert.equal(healthy(a!.id), true, 'kept by the heartbeat another node took');
    assert.equal(healthy(b!.id), false);
    clock.t += 5000;
    gate.times = undefined; // Redis out: the times are unknowable
    await checker.sweep();
    assert.equal(healthy(a!.id), true, 'nobody expires while the heartbeat times are unknown');
  });
});
