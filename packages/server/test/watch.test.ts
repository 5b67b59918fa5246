import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { api, startServer, waitFor, type RunningServer } from './harness.js';
import { metric } from './grpc-client.js';

const svc = '/v1/namespaces/default/services/feed/instances';

/** Reads SSE events from a fetch stream. */
async function* sse(url: string, signal: AbortSignal): AsyncGenerator<{ event: string; data: string; id?: string }> {
  const res = await fetch(url, { signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const ev: { event: string; data: string; id?: string } = { event: 'message', data: '' };
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) ev.event = line.slice(7);
        else if (line.startsWith('data: ')) ev.data += line.slice(6);
        else if (line.startsWith('id: ')) ev.id = line.slice(4);
      }
      if (block.startsWith(':')) continue;
      yield ev;
    }
  }
}

describe('long-poll and watch wake-up after a change from another client', () => {
  let s: RunningServer;
  before(async () => {
    s = await startServer();
    await api(s.url, 'POST', svc, { host: '10.6.0.1', port: 1 });
  });
  after(() => s.stop());

  it('answers 304 at once for an unchanged revision and after wait when nothing changes', async () => {
    const cur = await api(s.url, 'GET', svc);
    const etag = cur.headers.get('etag')!;
    assert.equal((await api(s.url, 'GET', svc, undefined, { 'if-none-match': etag })).status, 304);
    assert.equal((await api(s.url, 'GET', `${svc}?revision=${cur.body.revision}`)).status, 304);
    const t0 = Date.now();
    const r = await api(s.url, 'GET', `${svc}?revision=${cur.body.revision}&wait=300ms`);
    assert.equal(r.status, 304);
    assert.ok(Date.now() - t0 >= 280, 'waited');
    const stale = await api(s.url, 'GET', `${svc}?revision=${cur.body.revision - 1}&wait=30s`);
    assert.equal(stale.status, 200, 'an older revision is answered at once');
  });

  // How soon they wake is measured by bench/ (long-poll and watch wake); here: that they park, and wake with the change.
  it('wakes a parked long-poll with the committed change', async () => {
    for (const viaEtag of [false, true]) {
      const cur = await api(s.url, 'GET', svc);
      const poll = viaEtag
        ? api(s.url, 'GET', `${svc}?wait=20s`, undefined, { 'if-none-match': cur.headers.get('etag')! })
        : api(s.url, 'GET', `${svc}?revision=${cur.body.revision}&wait=20s`);
      await waitFor(
        async () => (await metric(s.url, 'muster_watchers', 'kind="long_poll"')) === 1,
        5000,
        'the long-poll to park',
      );
      const reg = await api(s.url, 'POST', svc, { host: `10.6.1.${viaEtag ? 2 : 1}`, port: 1 });
      const woke = await poll;
      assert.equal(woke.status, 200);
      assert.equal(woke.body.revision, reg.body.instance.revision);
      assert.ok(woke.body.instances.some((i: { id: string }) => i.id === reg.body.instance.id));
      await waitFor(
        async () => (await metric(s.url, 'muster_watchers', 'kind="long_poll"')) === 0,
        5000,
        'the long-poll to let go of its slot',
      );
    }
  });

  it('streams a snapshot on connect and one per change', async () => {
    const ac = new AbortController();
    const events = sse(`${s.url}/v1/watch?namespace=default&service=feed`, ac.signal);
    try {
      const first = (await events.next()).value!;
      assert.equal(first.event, 'snapshot');
      const snap = JSON.parse(first.data);
      assert.equal(String(snap.revision), first.id);
      const reg = await api(s.url, 'POST', svc, { host: '10.6.2.1', port: 1 });
      const next = (await events.next()).value!;
      const snap2 = JSON.parse(next.data);
      assert.equal(snap2.revision, reg.body.instance.revision);
      assert.ok(snap2.instances.some((i: { id: string }) => i.id === reg.body.instance.id));
      const del = await api(s.url, 'DELETE', `/v1/instances/${reg.body.instance.id}`, undefined, {
        authorization: `Bearer ${reg.body.heartbeatToken}`,
      });
      assert.equal(del.status, 204);
      const third = JSON.parse((await events.next()).value!.data);
      assert.ok(!third.instances.some((i: { id: string }) => i.id === reg.body.instance.id));
    } finally {
      ac.abort();
    }
  });

  it('refuses to watch an unknown service with a 404 before streaming', async () => {
    const r = await api(s.url, 'GET', '/v1/watch?namespace=default&service=ghost');
    assert.equal(r.status, 404);
    assert.equal(r.body.error.code, 'NOT_FOUND');
  });

  it('with allowMissing=true watches an unknown service as empty, streams it once it exists, and turns it empty when it is deleted', async () => {
    const ac = new AbortController();
    try {
      const events = sse(`${s.url}/v1/watch?namespace=default&service=later&allowMissing=true`, ac.signal);
      const empty = (await events.next()).value!;
      assert.deepEqual(
        [empty.event, empty.id, JSON.parse(empty.data)],
        ['snapshot', '0', { namespace: 'default', service: 'later', revision: 0, instances: [] }],
      );
      const reg = await api(s.url, 'POST', '/v1/namespaces/default/services/later/instances', {
        host: '10.6.4.1',
        port: 1,
      });
      const created = JSON.parse((await events.next()).value!.data);
      assert.deepEqual(
        created.instances.map((i: { id: string }) => i.id),
        [reg.body.instance.id],
      );
      assert.equal((await api(s.url, 'DELETE', '/v1/namespaces/default/services/later?force=true')).status, 204);
      const gone = (await events.next()).value!;
      assert.deepEqual([gone.event, JSON.parse(gone.data).instances], ['snapshot', []]);
    } finally {
      ac.abort();
    }
    const noNamespace = await api(s.url, 'GET', '/v1/watch?namespace=nowhere&service=later&allowMissing=true');
    assert.equal(noNamespace.status, 404, 'a namespace that does not exist is still 404');
  });

  it('ends watch streams and long-polls promptly on shutdown', async () => {
    const other = await startServer();
    await api(other.url, 'POST', svc, { host: '10.6.3.1', port: 1 });
    const cur = await api(other.url, 'GET', svc);
    const poll = api(other.url, 'GET', `${svc}?revision=${cur.body.revision}&wait=30s`);
    const ac = new AbortController();
    const events = sse(`${other.url}/v1/watch?namespace=default&service=feed`, ac.signal);
    assert.equal((await events.next()).value!.event, 'snapshot');
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    await other.stop();
    assert.ok(Date.now() - t0 < 2000, 'shutdown did not wait for the 30 s long-poll');
    assert.equal((await poll).status, 304);
    const closing = (await events.next()).value!;
    assert.equal(closing.event, 'close');
    assert.equal(JSON.parse(closing.data).reason, 'shutdown');
    ac.abort();
  });
});
