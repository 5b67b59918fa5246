import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { api, spawnServer, tempDir } from './harness.js';

const svc = '/v1/namespaces/default/services/ledger/instances';

describe('durability: SIGKILL never loses an acknowledged registration', () => {
  it('keeps every acknowledged write; unacknowledged ones are whole or absent', async () => {
    const dataDir = tempDir();
    const first = await spawnServer({}, dataDir);
    const N = 600;
    const acked = new Set<number>();
    let killed = false;
    const inFlight = Array.from({ length: N }, (_, i) =>
      api(first.url, 'POST', svc, {
        id: `inst-${i}`,
        host: `10.7.${i >> 8}.${i & 255}`,
        port: 9000,
        metadata: { n: String(i), shard: 'a' },
        weight: i % 100,
      })
        .then((r) => {
          if (r.status === 201) acked.add(i);
          // Kill mid-stream: some writes acknowledged, some in flight, some never sent.
          if (acked.size === 250 && !killed) {
            killed = true;
            first.child.kill('SIGKILL');
          }
        })
        .catch(() => {
          /* connection cut by the kill: unacknowledged */
        }),
    );
    await Promise.all(inFlight);
    assert.equal(await first.kill('SIGKILL'), null);
    assert.ok(acked.size >= 250, `acknowledged ${acked.size}`);

    const second = await spawnServer({}, dataDir);
    try {
      const all = await api(second.url, 'GET', `${svc}?status=all&isolated=all`);
      const found = new Map<string, any>(all.body.instances.map((i: { id: string }) => [i.id, i]));
      for (const i of acked) assert.ok(found.has(`inst-${i}`), `acknowledged inst-${i} is missing after SIGKILL`);
      for (const [id, inst] of found) {
        const i = Number(id.slice('inst-'.length));
        assert.deepEqual(inst.metadata, { n: String(i), shard: 'a' }, `${id} is partial`);
        assert.equal(inst.weight, i % 100);
      }
      const events = await api(second.url, 'GET', '/v1/events?service=ledger&type=instance.registered&limit=1000');
      assert.equal(
        events.body.events.length,
        found.size,
        'every stored instance has its registration event, and no event lacks its instance',
      );
    } finally {
      await second.stop();
    }
  });

  it('SIGTERM flushes and exits 0; heartbeat times survive the restart', async () => {
    const dataDir = tempDir();
    const first = await spawnServer({ 'health.flushInterval': '1h' }, dataDir);
    const r = await api(first.url, 'POST', svc, { host: '10.8.0.1', port: 1 });
    await new Promise((res) => setTimeout(res, 50));
    await api(first.url, 'PUT', `/v1/instances/${r.body.instance.id}/heartbeat`, undefined, {
      authorization: `Bearer ${r.body.heartbeatToken}`,
    });
    const beat = (await api(first.url, 'GET', `/v1/instances/${r.body.instance.id}`)).body.lastHeartbeat;
    assert.equal(await first.kill('SIGTERM'), 0, first.output());
    assert.match(first.output(), /"msg":"stopped"/);
    const second = await spawnServer({}, dataDir);
    try {
      const got = await api(second.url, 'GET', `/v1/instances/${r.body.instance.id}`);
      assert.equal(got.body.lastHeartbeat, beat, 'the in-memory heartbeat was flushed at shutdown');
    } finally {
      await second.stop();
    }
  });
});
