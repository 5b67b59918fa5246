import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { clusterKeys } from './cluster-keys.js';
import { HeartbeatRelay, type HeartbeatRelayOptions } from './heartbeat-relay.js';
import { describeRedis, RedisProxy, redisHarness, waitFor } from './redis-test-support.js';

const log = pino({ level: 'silent' });
const t0 = 1_700_000_000_000;

describeRedis('HeartbeatRelay: heartbeats taken by any node, visible to the sweeping node', () => {
  const h = redisHarness();

  function relay(prefix: string, over: Partial<HeartbeatRelayOptions> = {}): HeartbeatRelay {
    return h.defer(
      new HeartbeatRelay({ redis: h.client(), prefix, log, flushIntervalMs: 50, commandTimeoutMs: 2000, ...over }),
      (r) => r.stop(),
    );
  }

  /** Counts the pipelines a client sends and the commands in them. */
  function spy(redis: Redis): { pipelines: number; commands: number } {
    const seen = { pipelines: 0, commands: 0 };
    const pipeline = redis.pipeline.bind(redis);
    redis.pipeline = ((...args: Parameters<Redis['pipeline']>) => {
      const p = pipeline(...args);
      const exec = p.exec.bind(p);
      p.exec = (() => {
        seen.pipelines++;
        seen.commands += p.length;
        return exec();
      }) as typeof p.exec;
      return p;
    }) as Redis['pipeline'];
    return seen;
  }

  it('keeps the newest time per id when two nodes record heartbeats of the same instance', async () => {
    const prefix = h.prefix();
    const a = relay(prefix);
    const b = relay(prefix);
    a.record('i1', t0 + 500);
    a.record('i1', t0 + 100); // older than what a already noted: ignored
    a.record('i2', t0 + 10);
    b.record('i1', t0 + 300);
    b.record('i3', t0 + 20);
    assert.equal(await a.flush(), true);
    assert.equal(await b.flush(), true); // arrives later with an older time for i1: must not win
    assert.deepEqual(await h.admin().hgetall(clusterKeys(prefix).heartbeats), {
      i1: String(t0 + 500),
      i2: String(t0 + 10),
      i3: String(t0 + 20),
    });
    b.record('i1', t0 + 900);
    await b.flush();
    const sweeper = relay(prefix);
    assert.deepEqual(
      await sweeper.times(['i1', 'i2', 'i3', 'unknown']),
      new Map([
        ['i1', t0 + 900],
        ['i2', t0 + 10],
        ['i3', t0 + 20],
      ]),
    );
    assert.equal(a.pendingCount, 0);
    assert.equal(sweeper.available, true);
  });

  it('writes 1,000 ids in one pipelined round trip, and splits bigger batches into chunks of it', async () => {
    const prefix = h.prefix();
    const redis = h.client();
    const seen = spy(redis);
    const r = h.defer(new HeartbeatRelay({ redis, prefix, log, chunkSize: 1000 }), (x) => x.stop());
    const ids = Array.from({ length: 1000 }, (_, i) => `inst-${i}`);
    for (const [i, id] of ids.entries()) r.record(id, t0 + i);
    assert.equal(await r.flush(), true);
    assert.deepEqual(seen, { pipelines: 1, commands: 1 });
    assert.equal(await h.admin().hlen(clusterKeys(prefix).heartbeats), 1000);
    const times = await r.times(ids);
    assert.equal(times?.size, 1000);
    assert.equal(times?.get('inst-999'), t0 + 999);

    for (let i = 0; i < 2500; i++) r.record(`more-${i}`, t0);
    assert.equal(await r.flush(), true);
    assert.deepEqual(
      seen,
      { pipelines: 3, commands: 5 },
      'one pipeline of three scripts (times() above was one HMGET)',
    );
    assert.equal(await h.admin().hlen(clusterKeys(prefix).heartbeats), 3500);
  });

  it('loses nothing while Redis is unreachable: keeps the newest times and writes them once it is back', async () => {
    const prefix = h.prefix();
    const proxy = h.defer(await new RedisProxy().start(), (p) => p.stop());
    const r = relay(prefix, { redis: h.client({ port: proxy.port }), commandTimeoutMs: 200 });
    const seen: boolean[] = [];
    r.onAvailability((v) => seen.push(v));
    r.start();
    await waitFor(() => r.available, 1000, 'the relay to reach Redis');
    r.record('i1', t0 + 1);
    await waitFor(() => r.pendingCount === 0, 1000, 'the first flush');

    await proxy.cut();
    r.record('i1', t0 + 5);
    r.record('i2', t0 + 7);
    await waitFor(() => !r.available, 1000, 'the relay to notice the outage');
    assert.equal(await r.times(['i1']), undefined, 'times() cannot answer without Redis');
    r.record('i2', t0 + 6); // older than the kept one: the kept one stays
    r.record('i3', t0 + 9);
    assert.ok(r.lastError);
    assert.equal(r.pendingCount, 3);
    await new Promise((resolve) => setTimeout(resolve, 150)); // several failed flushes

    await proxy.restore();
    await waitFor(() => r.available && r.pendingCount === 0, 2000, 'the kept heartbeats to be written');
    assert.deepEqual(await h.admin().hgetall(clusterKeys(prefix).heartbeats), {
      i1: String(t0 + 5),
      i2: String(t0 + 7),
      i3: String(t0 + 9),
    });
    assert.deepEqual(seen, [true, false, true]);
  });

  it('keeps what it recorded after the client was disconnected, and writes it after a reconnect', async () => {
    const prefix = h.prefix();
    const redis = h.client();
    const r = relay(prefix, { redis, commandTimeoutMs: 200 });
    assert.equal(await r.flush(), true); // finds Redis there
    redis.disconnect();
    r.record('i1', t0);
    assert.equal(await r.flush(), false);
    assert.equal(r.available, false);
    assert.equal(r.pendingCount, 1);
    await redis.connect();
    assert.equal(await r.flush(), true);
    assert.equal(await h.admin().hget(clusterKeys(prefix).heartbeats, 'i1'), String(t0));
  });

  it('answers its own unwritten heartbeats in times(), newest first', async () => {
    const prefix = h.prefix();
    const a = relay(prefix);
    const sweeper = relay(prefix);
    a.record('i1', t0 + 10);
    await a.flush();
    sweeper.record('i1', t0 + 20); // taken by the sweeping node itself, not flushed yet
    sweeper.record('i2', t0 + 5);
    assert.deepEqual(
      await sweeper.times(['i1', 'i2']),
      new Map([
        ['i1', t0 + 20],
        ['i2', t0 + 5],
      ]),
    );
    sweeper.record('i1', t0 + 1);
    assert.deepEqual(await a.times(['i1']), new Map([['i1', t0 + 10]]));
  });

  it('forgets deregistered instances in Redis and in memory', async () => {
    const prefix = h.prefix();
    const r = relay(prefix);
    r.record('i1', t0);
    r.record('i2', t0);
    await r.flush();
    r.record('i1', t0 + 1); // pending, must not come back after forget
    assert.equal(await r.forget(['i1']), true);
    await r.flush();
    assert.deepEqual(await h.admin().hgetall(clusterKeys(prefix).heartbeats), { i2: String(t0) });
    assert.deepEqual(await r.times(['i1', 'i2']), new Map([['i2', t0]]));
  });
});
