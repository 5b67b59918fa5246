import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { MusterError, MusterHttpClient, type DiscoverResponse, type WatchEnd } from '@muster/client';
import { startServer, waitFor, type RunningServer } from './harness.js';

/** Asserts that `p` rejects with a MusterError of this code (and field, when given). */
async function rejectsWith(p: Promise<unknown>, code: string, field?: string): Promise<MusterError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof MusterError, `expected a MusterError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (field !== undefined) assert.equal(err.field, field);
    return err;
  }
  assert.fail(`expected ${code}, but the call succeeded`);
}

describe('MusterHttpClient against a real server', () => {
  let s: RunningServer;
  let c: MusterHttpClient;
  before(async () => {
    s = await startServer();
    c = new MusterHttpClient({ server: `${s.url}/` });
  });
  after(() => s.stop());

  it('creates, lists, reads and deletes namespaces', async () => {
    const created = await c.createNamespace({ name: 'cl-ns', comment: 'from the client' });
    assert.equal(created.comment, 'from the client');
    assert.deepEqual((await c.listNamespaces()).map((n) => n.name).sort(), ['cl-ns', 'default']);
    assert.equal((await c.getNamespace('cl-ns')).serviceCount, 0);
    await rejectsWith(c.createNamespace({ name: 'cl-ns' }), 'ALREADY_EXISTS', 'name');
    await c.deleteNamespace('cl-ns');
    await rejectsWith(c.getNamespace('cl-ns'), 'NOT_FOUND');
  });

  it('creates, pages, patches and deletes services (force for one with instances)', async () => {
    await c.createNamespace({ name: 'cl-svc' });
    for (const name of ['pay-a', 'pay-b', 'shop']) await c.createService('cl-svc', { name, metadata: { team: 'x' } });
    const page = await c.listServices('cl-svc', { prefix: 'pay-', limit: 1, offset: 1 });
    assert.equal(page.total, 2);
    assert.deepEqual(
      page.services.map((x) => x.name),
      ['pay-b'],
    );
    const patched = await c.patchService('cl-svc', 'shop', { comment: 'the shop' });
    assert.equal(patched.comment, 'the shop');
    assert.equal((await c.getService('cl-svc', 'shop')).metadata['team'], 'x');

    await c.register('cl-svc', 'shop', { host: '10.1.0.1', port: 80 });
    await rejectsWith(c.deleteService('cl-svc', 'shop'), 'FAILED_PRECONDITION', 'service');
    await c.deleteService('cl-svc', 'shop', { force: true });
    await rejectsWith(c.getService('cl-svc', 'shop'), 'NOT_FOUND', 'service');
    await rejectsWith(c.deleteNamespace('cl-svc'), 'FAILED_PRECONDITION');
  });

  it('registers (201 then 200), reads, patches, heartbeats and deregisters an instance', async () => {
    const req = { host: '10.2.0.1', port: 8080, metadata: { env: 'prod' }, healthCheck: { ttl: 10 } };
    const first = await c.register('default', 'cl-inst', req);
    assert.equal(first.created, true);
    assert.equal(first.instance.healthCheck.ttl, 10);
    assert.ok(first.heartbeatToken.length > 10);
    const id = first.instance.id;

    await rejectsWith(c.register('default', 'cl-inst', req), 'ALREADY_EXISTS', 'id');
    const again = await c.register('default', 'cl-inst', { ...req, weight: 7 }, { token: first.heartbeatToken });
    assert.equal(again.created, false);
    assert.equal(again.instance.id, id);
    assert.equal(again.instance.weight, 7);

    assert.equal((await c.getInstance(id)).host, '10.2.0.1');
    const patched = await c.patchInstance(id, { isolate: true, metadata: { env: 'canary' } }, again.heartbeatToken);
    assert.equal(patched.isolate, true);
    assert.deepEqual(patched.metadata, { env: 'canary' });
    await rejectsWith(c.patchInstance(id, { weight: 1 }, 'not-the-token'), 'PERMISSION_DENIED');

    await c.heartbeat(id, again.heartbeatToken);
    await rejectsWith(c.heartbeat(id, 'not-the-token'), 'PERMISSION_DENIED', 'authorization');
    const batch = await c.heartbeats([
      { id, token: again.heartbeatToken },
      { id: 'nobody', token: 'x' },
    ]);
    assert.deepEqual(
      batch.results.map((r) => [r.id, r.ok]),
      [
        [id, true],
        ['nobody', false],
      ],
    );
    const failed = batch.results[1]!;
    assert.equal(!failed.ok && failed.error.code, 'NOT_FOUND');

    await c.deregister(id, again.heartbeatToken);
    await rejectsWith(c.getInstance(id), 'NOT_FOUND', 'id');
    await rejectsWith(c.heartbeat(id, again.heartbeatToken), 'NOT_FOUND');
  });

  it('turns validation failures into INVALID_ARGUMENT with the field', async () => {
    await rejectsWith(c.register('default', 'cl-bad', { host: '10.0.0.1', port: 70000 }), 'INVALID_ARGUMENT', 'port');
    await rejectsWith(
      c.register('default', 'cl-bad', { host: '10.0.0.1', port: 1, healthCheck: { ttl: 0 } }),
      'INVALID_ARGUMENT',
      'healthCheck.ttl',
    );
    await rejectsWith(c.createNamespace({ name: 'bad name!' }), 'INVALID_ARGUMENT', 'name');
  });

  it('discovers with filters, and answers NotModified for the revision the caller holds', async () => {
    const a = await c.register('default', 'cl-disc', { host: '10.3.0.1', port: 1, metadata: { zone: 'a' } });
    await c.register('default', 'cl-disc', { host: '10.3.0.2', port: 1, metadata: { zone: 'b' } });
    await c.patchInstance(a.instance.id, { isolate: true }, a.heartbeatToken);

    const visible = await c.discover('default', 'cl-disc');
    assert.equal(visible.notModified, false);
    if (visible.notModified) return;
    assert.deepEqual(
      visible.instances.map((i) => i.host),
      ['10.3.0.2'],
      'isolated ones are hidden by default',
    );
    const all = await c.discover('default', 'cl-disc', { isolated: 'all', metadata: { zone: 'a' } });
    assert.deepEqual(!all.notModified && all.instances.map((i) => i.host), ['10.3.0.1']);

    assert.deepEqual(await c.discover('default', 'cl-disc', { revision: visible.revision }), {
      notModified: true,
      revision: visible.revision,
    });
    await rejectsWith(c.discover('default', 'cl-nope'), 'NOT_FOUND', 'service');
  });

  it('long-polls: waits for a change and answers it, or NotModified after the wait', async () => {
    const first = await c.discover('default', 'cl-disc');
    assert.ok(!first.notModified);
    const t0 = Date.now();
    assert.equal((await c.discover('default', 'cl-disc', { revision: first.revision, waitMs: 200 })).notModified, true);
    assert.ok(Date.now() - t0 >= 180, 'it waited');

    // The wait (5 s) is longer than the client's timeout (1 s): the client must allow for it.
    const slow = new MusterHttpClient({ server: s.url, timeoutMs: 1000 });
    const polling = slow.discover('default', 'cl-disc', { revision: first.revision, waitMs: 5000 });
    setTimeout(() => void c.register('default', 'cl-disc', { host: '10.3.0.3', port: 1 }), 1300);
    const changed = await polling;
    assert.equal(changed.notModified, false);
    assert.ok(!changed.notModified && changed.revision > first.revision);
    assert.ok(!changed.notModified && changed.instances.some((i) => i.host === '10.3.0.3'));
  });

  it('lists events with filters', async () => {
    const r = await c.register('default', 'cl-events', { host: '10.4.0.1', port: 1 });
    await c.deregister(r.instance.id, r.heartbeatToken);
    const events = await c.events({ service: 'cl-events', order: 'asc' });
    assert.deepEqual(
      events.map((e) => e.type),
      ['service.created', 'instance.registered', 'instance.deregistered'],
    );
    const only = await c.events({
      service: 'cl-events',
      type: ['instance.deregistered'],
      since: new Date(Date.now() - 60_000),
    });
    assert.deepEqual(
      only.map((e) => e.instanceId),
      [r.instance.id],
    );
    assert.deepEqual(await c.events({ service: 'cl-events', after: events[2]!.id }), []);
    await rejectsWith(c.events({ type: 'nonsense' as never }), 'INVALID_ARGUMENT', 'type');
  });

  it('watches: a snapshot at once and after every change, until closed', async () => {
    const r = await c.register('default', 'cl-watch', { host: '10.5.0.1', port: 1 });
    const snapshots: DiscoverResponse[] = [];
    const w = await c.watch('default', 'cl-watch', { status: 'all' }, (snap) => snapshots.push(snap));
    await waitFor(() => snapshots.length === 1, 5000, 'the first snapshot');
    assert.deepEqual(
      snapshots[0]!.instances.map((i) => i.host),
      ['10.5.0.1'],
    );

    await c.register('default', 'cl-watch', { host: '10.5.0.2', port: 1 });
    await waitFor(() => snapshots.some((x) => x.instances.length === 2), 5000, 'a snapshot with the new instance');
    assert.equal(w.revision, snapshots.at(-1)!.revision);

    await c.deregister(r.instance.id, r.heartbeatToken);
    await waitFor(() => snapshots.at(-1)!.instances.length === 1, 5000, 'a snapshot without the deregistered one');
    w.close();
    w.close();
    assert.deepEqual(await w.ended, { reason: 'closed' });
  });

  it('watch: NOT_FOUND before the stream for an unknown service; an error event when it is deleted', async () => {
    await rejectsWith(
      c.watch('default', 'cl-no-such', {}, () => {}),
      'NOT_FOUND',
      'service',
    );
    await c.createService('default', { name: 'cl-doomed' });
    let got = 0;
    const w = await c.watch('default', 'cl-doomed', {}, () => got++);
    await waitFor(() => got === 1, 5000, 'the first snapshot');
    await c.deleteService('default', 'cl-doomed');
    const end = await w.ended;
    assert.equal(end.reason, 'error');
    assert.equal(end.reason === 'error' && end.error.code, 'NOT_FOUND');
  });

  it('watch ends with the signal given', async () => {
    await c.register('default', 'cl-signal', { host: '10.5.1.1', port: 1 });
    const ctl = new AbortController();
    let got = 0;
    const w = await c.watch('default', 'cl-signal', { signal: ctl.signal }, () => got++);
    await waitFor(() => got === 1, 5000, 'the first snapshot');
    ctl.abort();
    assert.deepEqual(await w.ended, { reason: 'closed' });
  });
});

describe('MusterHttpClient failures', () => {
  it('a server that is not there is UNAVAILABLE, with the cause kept', async () => {
    const gone = http.createServer();
    await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
    const port = (gone.address() as AddressInfo).port;
    await new Promise<void>((r) => gone.close(() => r()));
    const err = await rejectsWith(
      new MusterHttpClient({ server: `http://127.0.0.1:${port}` }).listNamespaces(),
      'UNAVAILABLE',
    );
    assert.match(err.message, /ECONNREFUSED/);
    assert.ok(err.cause instanceof Error);
  });

  it("a server that does not answer in time is DEADLINE_EXCEEDED; a caller abort is the caller's reason", async () => {
    const hang = http.createServer(() => {}); // accepts, never answers
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(hang.address() as AddressInfo).port}`;
    try {
      const c = new MusterHttpClient({ server: url, timeoutMs: 200 });
      await rejectsWith(c.listNamespaces(), 'DEADLINE_EXCEEDED');
      await rejectsWith(
        c.watch('default', 'x', {}, () => {}),
        'DEADLINE_EXCEEDED',
      );
      const ctl = new AbortController();
      const p = c.listNamespaces({ signal: ctl.signal, timeoutMs: 5000 });
      ctl.abort(new Error('caller gave up'));
      await assert.rejects(p, /caller gave up/);
    } finally {
      hang.closeAllConnections();
      await new Promise<void>((r) => hang.close(() => r()));
    }
  });

  it('an answer that is not a Muster error still becomes a MusterError by its status', async () => {
    const proxy = http.createServer((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html>bad gateway</html>');
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      const c = new MusterHttpClient({ server: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` });
      const err = await rejectsWith(c.getService('default', 'x'), 'UNAVAILABLE');
      assert.match(err.message, /502/);
    } finally {
      await new Promise<void>((r) => proxy.close(() => r()));
    }
  });

  it('refuses a server that is not an http(s) URL, and defaults to MUSTER_SERVER', () => {
    assert.throws(
      () => new MusterHttpClient({ server: 'localhost:8090' }),
      (e: unknown) => e instanceof MusterError && e.code === 'INVALID_ARGUMENT',
    );
    const saved = process.env['MUSTER_SERVER'];
    try {
      process.env['MUSTER_SERVER'] = 'http://registry.example:9000';
      assert.equal(new MusterHttpClient().server, 'http://registry.example:9000');
      delete process.env['MUSTER_SERVER'];
      assert.equal(new MusterHttpClient().server, 'http://127.0.0.1:8090');
    } finally {
      if (saved === undefined) delete process.env['MUSTER_SERVER'];
      else process.env['MUSTER_SERVER'] = saved;
    }
  });

  it('a watch the server shuts down ends with server-close and its reason', async () => {
    const s = await startServer();
    let stopped = false;
    try {
      const c = new MusterHttpClient({ server: s.url });
      await c.register('default', 'cl-shutdown', { host: '10.9.0.1', port: 1 });
      let got = 0;
      const w = await c.watch('default', 'cl-shutdown', {}, () => got++);
      await waitFor(() => got === 1, 5000, 'the first snapshot');
      await s.stop();
      stopped = true;
      const end: WatchEnd = await w.ended;
      assert.equal(end.reason, 'server-close');
      assert.equal(end.reason === 'server-close' && end.serverReason, 'shutdown');
    } finally {
      if (!stopped) await s.stop();
    }
  });
});
