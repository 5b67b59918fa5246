import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ChangeBus, type ChangeBusOptions, type ClusterChange } from './change-bus.js';
import { clusterKeys } from './cluster-keys.js';
import type { ClusterLog } from './redis-common.js';
import { describeRedis, RedisProxy, redisHarness, sleep, waitFor } from './redis-test-support.js';

/** A log that remembers its warnings. */
function capture(): ClusterLog & { warnings: string[] } {
  const warnings: string[] = [];
  return {
    warnings,
    debug() {},
    info() {},
    warn: (_o, msg) => void warnings.push(msg ?? ''),
    error: (_o, msg) => void warnings.push(`error: ${msg ?? ''}`),
  };
}

describeRedis('ChangeBus: change notifications between nodes over Redis pub/sub', () => {
  const h = redisHarness();

  function bus(prefix: string, node: string, over: Partial<ChangeBusOptions> = {}): ChangeBus {
    return h.defer(
      new ChangeBus({ redis: h.client(), prefix, node, log: capture(), commandTimeoutMs: 300, ...over }),
      (b) => b.stop(),
    );
  }

  async function subscribed(b: ChangeBus, got: ClusterChange[]): Promise<void> {
    b.subscribe((c) => got.push(c));
    await waitFor(() => b.connected, 1000, 'the bus to subscribe');
  }

  it('delivers a change published on one node to the other within 50 ms, not back to the publisher', async () => {
    const prefix = h.prefix();
    const a = bus(prefix, 'node-a');
    const b = bus(prefix, 'node-b');
    const atA: ClusterChange[] = [];
    const atB: ClusterChange[] = [];
    await subscribed(a, atA);
    await subscribed(b, atB);
    const sent = performance.now();
    a.publish({ eventId: 7, namespace: 'ns', service: 'svc', node: 'node-a' });
    const t = await waitFor(() => atB.length === 1, 50, 'the change to arrive at b');
    assert.ok(t < 50 && performance.now() - sent < 50);
    assert.deepEqual(atB, [{ eventId: 7, namespace: 'ns', service: 'svc', node: 'node-a' }]);
    b.publish({ eventId: 8, namespace: 'ns', node: 'node-b' }); // a namespace change: no service
    await waitFor(() => atA.length === 1, 50, 'the change to arrive at a');
    assert.deepEqual(atA, [{ eventId: 8, namespace: 'ns', node: 'node-b' }]);
    await sleep(20);
    assert.equal(atA.length, 1, 'a did not hear its own change');
    assert.equal(atB.length, 1, 'b did not hear its own change');
    assert.equal(a.stats.published, 1);
  });

  it('sends the publishes of one tick as one message, and hears its own with ignoreOwn: false', async () => {
    const prefix = h.prefix();
    const raw: string[] = [];
    const listener = h.client();
    listener.on('message', (_ch: string, m: string) => raw.push(m));
    await listener.subscribe(clusterKeys(prefix).changes);
    const a = bus(prefix, 'node-a', { ignoreOwn: false, maxBatch: 2 });
    const got: ClusterChange[] = [];
    await subscribed(a, got);
    for (let i = 1; i <= 3; i++) a.publish({ eventId: i, namespace: 'ns', service: `s${i}`, node: 'node-a' });
    await waitFor(() => got.length === 3, 500, 'the changes to come back');
    assert.deepEqual(
      got.map((c) => c.eventId),
      [1, 2, 3],
    );
    assert.equal(raw.length, 2, 'three changes, maxBatch 2: two messages');
    assert.deepEqual(JSON.parse(raw[0]!), {
      v: 1,
      node: 'node-a',
      changes: [
        { eventId: 1, namespace: 'ns', service: 's1' },
        { eventId: 2, namespace: 'ns', service: 's2' },
      ],
    });
  });

  it('ignores and logs malformed messages on the channel, and keeps delivering good ones', async () => {
    const prefix = h.prefix();
    const log = capture();
    const b = bus(prefix, 'node-b', { log });
    const got: ClusterChange[] = [];
    await subscribed(b, got);
    const bad = [
      'not json',
      'null',
      '42',
      '[]',
      '{}',
      '{"v":2,"node":"x","changes":[]}',
      '{"v":1,"node":"x"}',
      '{"v":1,"node":5,"changes":[]}',
      '{"v":1,"node":"x","changes":[null]}',
      '{"v":1,"node":"x","changes":[{"eventId":"7","namespace":"ns"}]}',
      '{"v":1,"node":"x","changes":[{"eventId":1.5,"namespace":"ns"}]}',
      '{"v":1,"node":"x","changes":[{"eventId":-1,"namespace":"ns"}]}',
      '{"v":1,"node":"x","changes":[{"eventId":7}]}',
      '{"v":1,"node":"x","changes":[{"eventId":7,"namespace":"ns","service":3}]}',
    ];
    const admin = h.admin();
    for (const m of bad) await admin.publish(clusterKeys(prefix).changes, m);
    await admin.publish(
      clusterKeys(prefix).changes,
      JSON.stringify({
        v: 1,
        node: 'node-x',
        changes: [{ eventId: 3, namespace: 'ns', service: 'svc', extra: true }],
        future: 1,
      }),
    );
    await waitFor(() => got.length === 1, 500, 'the good message');
    assert.deepEqual(got, [{ eventId: 3, namespace: 'ns', service: 'svc', node: 'node-x' }]);
    assert.equal(b.stats.malformed, bad.length);
    assert.equal(log.warnings.filter((w) => w.includes('malformed')).length, 1, 'logged, but once a second at most');
    // One bad entry does not hide the good ones of the same message; eventId 0 (not known) is fine.
    await admin.publish(
      clusterKeys(prefix).changes,
      JSON.stringify({ v: 1, node: 'node-x', changes: [{ eventId: 'x' }, { eventId: 0, namespace: 'ns2' }] }),
    );
    await waitFor(() => got.length === 2, 500, 'the good entry of a partly bad message');
    assert.deepEqual(got[1], { eventId: 0, namespace: 'ns2', node: 'node-x' });
    assert.equal(b.stats.malformed, bad.length + 1);
    assert.equal(b.connected, true);
  });

  it('survives a dropped connection: reports it, subscribes again, and delivers again', async () => {
    const prefix = h.prefix();
    const proxy = h.defer(await new RedisProxy().start(), (p) => p.stop());
    const a = bus(prefix, 'node-a');
    const b = bus(prefix, 'node-b', { redis: h.client({ port: proxy.port }) });
    const got: ClusterChange[] = [];
    const states: boolean[] = [];
    b.onConnection((v) => states.push(v));
    await subscribed(b, got);

    await proxy.cut();
    await waitFor(() => !b.connected, 1000, 'b to notice');
    a.publish({ eventId: 1, namespace: 'ns', node: 'node-a' }); // missed: pub/sub keeps nothing
    await a.flush();
    await sleep(100);
    await proxy.restore();
    await waitFor(() => b.connected, 3000, 'b to subscribe again');
    a.publish({ eventId: 2, namespace: 'ns', node: 'node-a' });
    await waitFor(() => got.length === 1, 200, 'the change after the reconnect');
    assert.deepEqual(
      got.map((c) => c.eventId),
      [2],
    );
    assert.deepEqual(states, [true, false, true]);
  });

  it('reports a failed publish instead of throwing', async () => {
    const prefix = h.prefix();
    const redis = h.client();
    const log = capture();
    const a = bus(prefix, 'node-a', { redis, log });
    redis.disconnect();
    assert.doesNotThrow(() => a.publish({ eventId: 1, namespace: 'ns', node: 'node-a' }));
    await a.flush();
    assert.equal(a.stats.publishFailures, 1);
    assert.ok(a.lastError);
    assert.ok(log.warnings.some((w) => w.includes('publish failed')));
  });

  it('keeps delivering to other handlers when one throws, and stops delivering after unsubscribe', async () => {
    const prefix = h.prefix();
    const a = bus(prefix, 'node-a');
    const b = bus(prefix, 'node-b');
    const got: ClusterChange[] = [];
    b.subscribe(() => {
      throw new Error('handler bug');
    });
    const off = b.subscribe((c) => got.push(c));
    await waitFor(() => b.connected, 1000, 'b to subscribe');
    a.publish({ eventId: 1, namespace: 'ns', node: 'node-a' });
    await waitFor(() => got.length === 1, 200, 'the change');
    off();
    a.publish({ eventId: 2, namespace: 'ns', node: 'node-a' });
    await a.flush();
    await sleep(30);
    assert.equal(got.length, 1);
    await b.stop();
    assert.equal(b.connected, false);
  });
});
