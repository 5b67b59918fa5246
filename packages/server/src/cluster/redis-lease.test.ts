import assert from 'node:assert/strict';
import { it } from 'node:test';
import pino from 'pino';
import { clusterKeys } from './cluster-keys.js';
import type { ClusterLog } from './redis-common.js';
import { Lease, type LeaseOptions } from './redis-lease.js';
import { describeRedis, RedisProxy, redisHarness, sleep, waitFor } from './redis-test-support.js';

// A pino logger must fit the modules' log type as it is.
const log: ClusterLog = pino({ level: 'silent' });
// Long enough that a loaded machine's event-loop stalls (a few hundred ms with two test suites on
// 2 cores) do not cost a healthy holder its lease; short enough to keep the tests quick.
const TTL = 1000;
const INTERVAL = 200;

describeRedis('Lease: one holder at a time of a lease in Redis', () => {
  const h = redisHarness();

  function lease(prefix: string, nodeId: string, over: Partial<LeaseOptions> = {}): Lease {
    const l = new Lease({
      redis: h.client(),
      prefix,
      log,
      nodeId,
      ttlMs: TTL,
      renewIntervalMs: INTERVAL,
      safetyMarginMs: 30,
      ...over,
    });
    return h.defer(l, (x) => x.stop());
  }

  /** Starts both and waits until one of them holds the lease. */
  async function race(prefix: string): Promise<{ a: Lease; b: Lease; holder: Lease; other: Lease }> {
    const a = lease(prefix, 'node-a');
    const b = lease(prefix, 'node-b');
    a.start();
    b.start();
    await waitFor(() => a.held || b.held, 5_000, 'a holder');
    const [holder, other] = a.held ? [a, b] : [b, a];
    return { a, b, holder, other };
  }

  it('lets exactly one of two nodes hold it, and keeps it held across renewals', async () => {
    const prefix = h.prefix();
    const { a, b, holder, other } = await race(prefix);
    const holderId = holder === a ? 'node-a' : 'node-b';
    // Sample for several ttls: never both, never a change of hands while the holder renews.
    for (let i = 0; i < 300; i++) {
      assert.ok(!(a.held && b.held), 'both nodes believe they hold the lease');
      assert.ok(holder.held, `the holder lost the lease after ${i * 10} ms`);
      assert.ok(!other.held);
      await sleep(10);
    }
    assert.equal(await holder.holder(), holderId);
    assert.equal(await other.holder(), holderId);
    assert.equal(await h.admin().get(clusterKeys(prefix).sweepLease), holderId);
    const pttl = await h.admin().pttl(clusterKeys(prefix).sweepLease);
    assert.ok(pttl > 0 && pttl <= TTL, `the key carries the ttl (${pttl})`);
  });

  it('passes to the other node within ttl + one interval when the holder crashes', async () => {
    const prefix = h.prefix();
    const { a, b, holder, other } = await race(prefix);
    const changes: boolean[] = [];
    other.onChange((held) => changes.push(held));
    const crashedAt = performance.now();
    await holder.stop({ release: false }); // timers stop, the key stays until it expires
    assert.equal(holder.held, false);
    const took = await waitFor(() => other.held, 5_000, 'the other node to take over');
    // One interval of slack beyond ttl + interval: a loaded machine polls late.
    assert.ok(
      performance.now() - crashedAt <= TTL + 2 * INTERVAL,
      `takeover after ${Math.round(performance.now() - crashedAt)} ms`,
    );
    assert.ok(took > INTERVAL, "the other node waited for the crashed holder's lease to expire");
    assert.deepEqual(changes, [true]);
    assert.ok(!(a.held && b.held));
  });

  it('passes to the other node within one interval when the holder releases it', async () => {
    const prefix = h.prefix();
    const { a, holder, other } = await race(prefix);
    const holderLost: boolean[] = [];
    holder.onChange((held) => holderLost.push(held));
    await holder.stop();
    assert.deepEqual(holderLost, [false]);
    assert.notEqual(
      await other.holder(),
      holder === a ? 'node-a' : 'node-b',
      "the key is gone (or already the other node's)",
    );
    const t = await waitFor(() => other.held, 5_000, 'the other node to take the released lease');
    assert.ok(t <= 2 * INTERVAL, `took the released lease after ${Math.round(t)} ms`);
  });

  it('drops the lease within the ttl when its Redis client is gone, and another node takes it', async () => {
    const prefix = h.prefix();
    const redisA = h.client();
    const a = h.defer(
      new Lease({
        redis: redisA,
        prefix,
        log,
        nodeId: 'node-a',
        ttlMs: TTL,
        renewIntervalMs: INTERVAL,
        safetyMarginMs: 30,
      }),
      (x) => x.stop(),
    );
    a.start();
    await waitFor(() => a.held, 1000, 'a to hold');
    const lost: boolean[] = [];
    a.onChange((held) => lost.push(held));
    redisA.disconnect();
    const t = await waitFor(() => !a.held, 5_000, 'a to drop the lease');
    assert.ok(t < TTL, `dropped after ${Math.round(t)} ms`);
    assert.deepEqual(lost, [false]);
    assert.equal(await a.holder(), undefined, 'holder() answers undefined when Redis cannot be asked');
    assert.ok(a.lastError);
    const b = lease(prefix, 'node-b');
    b.start();
    await waitFor(() => b.held, 5_000, 'b to take over');
    assert.equal(a.held, false);
  });

  it('drops the lease at its deadline when renewals hang instead of failing', async () => {
    const prefix = h.prefix();
    const proxy = h.defer(await new RedisProxy().start(), (p) => p.stop());
    // A command timeout longer than the ttl: only the deadline can drop the lease in time.
    const a = h.defer(
      new Lease({
        redis: h.client({ port: proxy.port }),
        prefix,
        log,
        nodeId: 'node-a',
        ttlMs: TTL,
        renewIntervalMs: INTERVAL,
        safetyMarginMs: 30,
        commandTimeoutMs: 10_000,
      }),
      (x) => x.stop(),
    );
    a.start();
    await waitFor(() => a.held, 1000, 'a to hold');
    // The deadline counts from the last renewal's sending, before Redis could start the key's ttl.
    const left = a.remainingMs();
    assert.ok(left > 0 && left <= TTL - 30, `held for ${Math.round(left)} ms more, past the key's expiry`);
    proxy.hold(); // renewals are sent but neither answered nor failed
    // Well inside the 10 s command timeout (a loaded machine polls late): only the deadline drops it.
    await waitFor(() => !a.held, 5_000, 'a to drop the lease while Redis hangs');
    const b = lease(prefix, 'node-b');
    b.start();
    await waitFor(() => b.held, 5_000, 'b to take over');
    proxy.release(); // the late renewal of a arrives now: its compare-and-renew must not steal
    await sleep(INTERVAL * 2);
    assert.ok(b.held && !a.held, 'b keeps the lease, a does not claim it');
  });

  it('counts as not held while Redis is unreachable from the start', async () => {
    const prefix = h.prefix();
    const dead = h.client({ port: 1, lazyConnect: true, retryStrategy: () => null, enableOfflineQueue: false });
    const a = h.defer(
      new Lease({
        redis: dead,
        prefix,
        log,
        nodeId: 'node-a',
        ttlMs: TTL,
        renewIntervalMs: INTERVAL,
        safetyMarginMs: 30,
      }),
      (x) => x.stop(),
    );
    a.start();
    await sleep(INTERVAL * 2);
    assert.equal(a.held, false);
    assert.ok(a.lastError);
    assert.equal(await a.holder(), undefined);
  });

  it('refuses settings under which a healthy holder would drop its lease between renewals', () => {
    const redis = h.admin();
    assert.throws(() => new Lease({ redis, prefix: 'x:', nodeId: 'n', ttlMs: 300, renewIntervalMs: 250 }), RangeError);
    assert.throws(() => new Lease({ redis, prefix: 'x:', nodeId: '', ttlMs: 300 }), RangeError);
  });
});
