import assert from 'node:assert/strict';
import { it } from 'node:test';
import pino from 'pino';
import { clusterKeys } from './cluster-keys.js';
import { FlushBarrier } from './flush-barrier.js';
import { HeartbeatRelay } from './heartbeat-relay.js';
import { describeRedis, redisHarness, sleep } from './redis-test-support.js';

const log = pino({ level: 'silent' });

describeRedis("FlushBarrier: a new sweep lease holder waits for every node's held heartbeats", () => {
  const h = redisHarness();
  const barrier = (prefix: string, waitMs = 5000) =>
    new FlushBarrier({ redis: h.client(), prefix, log, waitMs, commandTimeoutMs: 500 });
  const relay = (prefix: string, node: string) =>
    h.defer(new HeartbeatRelay({ redis: h.client(), prefix, log, node, flushIntervalMs: 60_000 }), (r) => r.stop());

  it('holds the sweep until every node that flushed under the last holder has flushed again; a node that stopped is not waited for', async () => {
    const prefix = h.prefix();
    await h.admin().set(clusterKeys(prefix).flushGeneration, '6');
    const [a, b, c] = [relay(prefix, 'a'), relay(prefix, 'b'), relay(prefix, 'c')];
    await Promise.all([a.flush(), b.flush(), c.flush()]); // each notes generation 6
    await h.admin().hset(clusterKeys(prefix).flushed, 'long-gone', '3');
    const sweep = barrier(prefix);
    sweep.arm(); // generation 7
    assert.equal(await sweep.passed(), false, 'no node has flushed since');
    assert.equal(
      await h.admin().hexists(clusterKeys(prefix).flushed, 'long-gone'),
      0,
      "a note older than the last holder's is removed",
    );
    await a.flush();
    b.record('i1', Date.now());
    await b.flush();
    assert.equal(await sweep.passed(), false, 'c has not flushed');
    await c.stop(); // a clean stop removes its note
    assert.equal(await sweep.passed(), true);
    assert.equal(await sweep.passed(), true, 'and stays passed until the lease is taken again');
  });

  it('gives up on a node that does not flush after waitMs, and waits that long when nobody can know who is alive (a counter at 1)', async () => {
    const prefix = h.prefix();
    const silent = relay(prefix, 'silent');
    await h.admin().set(clusterKeys(prefix).flushGeneration, '1');
    await silent.flush();
    // A second: longer than two round trips to a loaded Redis take.
    const sweep = barrier(prefix, 1000);
    const fresh = barrier(h.prefix(), 1000);
    sweep.arm();
    fresh.arm(); // a new cluster: the counter starts at 1
    assert.equal(await sweep.passed(), false);
    assert.equal(await fresh.passed(), false, 'nothing says who was flushing');
    await sleep(1050);
    assert.equal(await sweep.passed(), true, 'after waitMs');
    assert.equal(await fresh.passed(), true);
    fresh.disarm();
    assert.equal(await fresh.passed(), true, 'not armed: nothing to wait for');
  });
});
