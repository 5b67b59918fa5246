import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { api, bearer, sleep, startServer, tempDir, waitFor } from './harness.js';

const svc = (name: string) => `/v1/namespaces/default/services/${name}/instances`;

/** Keeps sending heartbeats for the instances in `alive` until stopped. */
/** Heartbeats `alive` every 250 ms until the returned stop, which waits for a round under way (the server must outlive it). */
function heartbeater(url: string, alive: Map<string, string>): () => Promise<void> {
  let on = true;
  const loop = (async () => {
    while (on) {
      await Promise.all(
        [...alive].map(([id, token]) => api(url, 'PUT', `/v1/instances/${id}/heartbeat`, undefined, bearer(token))),
      );
      await sleep(250);
    }
  })();
  loop.catch(() => {}); // a failed round is reported by the stop that awaits it
  return async () => {
    on = false;
    await loop;
  };
}

async function healthOf(url: string, name: string): Promise<Map<string, boolean>> {
  const r = await api(url, 'GET', `${svc(name)}?status=all`);
  return new Map(r.body.instances.map((i: { id: string; healthy: boolean }) => [i.id, i.healthy]));
}

describe('health checking', () => {
  it('restart grace: nobody expires in the first 3 x ttl after a restart, then silent ones do', async () => {
    const dataDir = tempDir();
    const flags = { 'health.sweepInterval': '100ms' };
    const first = await startServer(flags, dataDir);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push(
        (await api(first.url, 'POST', svc('grace'), { host: `10.4.0.${i}`, port: 1, healthCheck: { ttl: 1 } })).body
          .instance.id,
      );
    await first.stop();
    await sleep(3500); // longer than 3 x ttl: without grace they would expire at the first sweep

    const started = Date.now();
    const second = await startServer(flags, dataDir);
    try {
      while (Date.now() - started < 2500) {
        const h = await healthOf(second.url, 'grace');
        for (const id of ids) assert.equal(h.get(id), true, `${id} expired ${Date.now() - started} ms after restart`);
        await sleep(100);
      }
      await waitFor(
        async () => [...(await healthOf(second.url, 'grace')).values()].every((v) => !v),
        3000,
        'expiry after the grace window',
      );
      assert.ok(Date.now() - started >= 3000);
    } finally {
      await second.stop();
    }
  });

  it('self-preservation: a mass silence does not expire anyone, while one silent instance in a quiet registry expires on time', async () => {
    const s = await startServer({
      'health.sweepInterval': '100ms',
      'health.protectRatio': 0.5,
      'health.protectMin': 10,
    });
    const alive = new Map<string, string>();
    const stop = heartbeater(s.url, alive);
    try {
      for (let i = 0; i < 20; i++) {
        const r = await api(s.url, 'POST', svc('fleet'), { host: `10.5.0.${i}`, port: 1, healthCheck: { ttl: 1 } });
        alive.set(r.body.instance.id, r.body.heartbeatToken);
      }
      const lone = await api(s.url, 'POST', svc('lonely'), { host: '10.5.1.1', port: 1, healthCheck: { ttl: 1 } });
      const loneId = lone.body.instance.id;
      const t0 = Date.now();
      await waitFor(
        async () => (await api(s.url, 'GET', `/v1/instances/${loneId}`)).body.healthy === false,
        5000,
        'the lone silent instance to expire',
      );
      const took = Date.now() - t0;
      assert.ok(took >= 2500 && took < 4500, `expired after ${took} ms, expected about 3000`);
      assert.ok([...(await healthOf(s.url, 'fleet')).values()].every(Boolean), 'the heartbeating fleet stays healthy');

      // 15 of 20 go silent at once: more than half the healthy fleet, and at least protectMin.
      const silent = [...alive.keys()].slice(0, 15);
      for (const id of silent) alive.delete(id);
      await sleep(5000);
      const h = await healthOf(s.url, 'fleet');
      for (const id of silent) assert.equal(h.get(id), true, 'protected from mass expiry');
      const metrics = await fetch(`${s.url}/metrics`).then((r) => r.text());
      assert.match(metrics, /muster_self_preservation_total [1-9]/);
    } finally {
      await stop();
      await s.stop();
    }
  });
});
