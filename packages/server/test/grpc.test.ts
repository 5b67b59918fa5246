import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import net from 'node:net';
import pino from 'pino';
import { api, bearer, sleep, startServer, tempDir, waitFor, type RunningServer } from './harness.js';
import { loadConfig } from '../src/config/config.js';
import { Muster } from '../src/muster.js';
import { call, metric, registryClient, rejectsWith, StreamReader, type RegistryClient } from './grpc-client.js';

const S = grpc.status;
const HTTP_SVC = (svc: string) => `/v1/namespaces/default/services/${svc}/instances`;

/** Subscriptions and shutdown hooks the hub holds: what a cancelled stream must give back. */
const hubWaiters = (m: Muster) => (m.hub as unknown as { waiters: Map<string, Set<unknown>> }).waiters.size;
const hubClosers = (m: Muster) => (m.hub as unknown as { closers: Set<unknown> }).closers.size;

describe('gRPC API: muster.v1.Registry', () => {
  let s: RunningServer & { muster: Muster };
  let c: RegistryClient;
  before(async () => {
    s = await startServer();
    c = registryClient(s.grpcAddress);
  });
  after(async () => {
    c.close();
    await s.stop();
  });

  it('Register creates an instance with its health check, location and timestamps; re-registration needs the token', async () => {
    const req = {
      service: 'orders',
      host: '10.1.0.1',
      port: 8080,
      location: { region: 'eu', zone: 'eu-1' },
      healthCheck: { ttl: 7 },
      metadata: { env: 'prod' },
    };
    const first = await call(c, 'Register', req);
    assert.equal(first.created, true);
    assert.ok(first.heartbeatToken.length > 20);
    const i = first.instance;
    assert.equal(i.namespace, 'default', 'an empty namespace is "default"');
    assert.equal(i.service, 'orders');
    assert.deepEqual(i.healthCheck, { type: 'heartbeat', ttl: 7 });
    assert.deepEqual(i.location, { region: 'eu', zone: 'eu-1' });
    assert.deepEqual(i.metadata, { env: 'prod' });
    assert.equal(i.weight, 100);
    for (const t of ['lastHeartbeat', 'createdAt', 'updatedAt'] as const)
      assert.ok(!Number.isNaN(Date.parse(i[t])), `${t}: ${i[t]}`);
    assert.ok(i.revision > 0);

    const again = await call(c, 'Register', { ...req, version: '2', heartbeatToken: first.heartbeatToken });
    assert.equal(again.created, false);
    assert.equal(again.instance.version, '2');
    assert.equal(again.heartbeatToken, first.heartbeatToken, 'the owner keeps its token');
    await rejectsWith(call(c, 'Register', req), S.ALREADY_EXISTS, 'id', 'a live instance without its token');
    await rejectsWith(
      call(c, 'Register', { ...req, heartbeatToken: 'not-mine' }),
      S.PERMISSION_DENIED,
      'heartbeatToken',
      'a wrong token',
    );
    // Empty sub-messages are absent ones: the defaults apply, as in JSON.
    const bare = await call(c, 'Register', {
      service: 'orders',
      host: '10.1.0.2',
      port: 1,
      healthCheck: {},
      location: {},
    });
    assert.deepEqual(bare.instance.healthCheck, { type: 'heartbeat', ttl: 5 });
  });

  it('Heartbeat: ok; NOT_FOUND, PERMISSION_DENIED and UNAUTHENTICATED with the field named; Deregister', async () => {
    const r = await call(c, 'Register', { service: 'beats', host: '10.2.0.1', port: 1 });
    const id: string = r.instance.id;
    assert.deepEqual(await call(c, 'Heartbeat', { id, heartbeatToken: r.heartbeatToken }), {});
    await rejectsWith(
      call(c, 'Heartbeat', { id: 'no-such-instance', heartbeatToken: 'x' }),
      S.NOT_FOUND,
      'id',
      'unknown id',
    );
    await rejectsWith(
      call(c, 'Heartbeat', { id, heartbeatToken: 'wrong' }),
      S.PERMISSION_DENIED,
      'heartbeatToken',
      'wrong token',
    );
    await rejectsWith(call(c, 'Heartbeat', { id }), S.UNAUTHENTICATED, 'heartbeatToken', 'no token');
    await rejectsWith(
      call(c, 'Deregister', { id, heartbeatToken: 'wrong' }),
      S.PERMISSION_DENIED,
      'heartbeatToken',
      'deregister, wrong token',
    );
    const gone = await call(c, 'Deregister', { id, heartbeatToken: r.heartbeatToken });
    assert.ok(gone.revision > r.revision, `the revision it committed: ${JSON.stringify(gone)}`);
    await rejectsWith(
      call(c, 'Heartbeat', { id, heartbeatToken: r.heartbeatToken }),
      S.NOT_FOUND,
      'id',
      'after deregistration',
    );
    await rejectsWith(
      call(c, 'Deregister', { id, heartbeatToken: r.heartbeatToken }),
      S.NOT_FOUND,
      'id',
      'deregistered twice',
    );
  });

  it('HeartbeatStream answers each batch with one result per heartbeat, in order', async () => {
    const a = await call(c, 'Register', { service: 'stream', host: '10.3.0.1', port: 1 });
    const b = await call(c, 'Register', { service: 'stream', host: '10.3.0.2', port: 1 });
    const hb = (r: typeof a, token = r.heartbeatToken) => ({ id: r.instance.id, heartbeatToken: token });
    const stream = c['HeartbeatStream']() as grpc.ClientDuplexStream<object, any>;
    const reader = new StreamReader(stream);
    stream.write({ heartbeats: [hb(a), hb(b)] });
    stream.write({ heartbeats: [hb(a, b.heartbeatToken), { id: 'unknown-one', heartbeatToken: 'x' }, hb(b)] });
    stream.write({ heartbeats: [{ id: a.instance.id }] });
    stream.write({});
    const answers = [await reader.next(), await reader.next(), await reader.next(), await reader.next()];
    assert.deepEqual(answers[0].results, [
      { id: a.instance.id, ok: true },
      { id: b.instance.id, ok: true },
    ]);
    const [wrong, unknown, ok] = answers[1].results;
    assert.deepEqual(
      [wrong.id, wrong.ok, wrong.error.code, wrong.error.field],
      [a.instance.id, false, 'PERMISSION_DENIED', 'heartbeatToken'],
    );
    assert.deepEqual(
      [unknown.id, unknown.ok, unknown.error.code, unknown.error.field],
      ['unknown-one', false, 'NOT_FOUND', 'id'],
    );
    assert.deepEqual(ok, { id: b.instance.id, ok: true });
    assert.equal(answers[2].results[0].error.code, 'UNAUTHENTICATED');
    assert.equal(answers[3].results, undefined, 'an empty batch has an empty answer');
    stream.end();
    assert.equal(await reader.end(), undefined, 'half-closing ends the stream with OK');

    // A client that cancels leaves nothing behind.
    const baseline = hubClosers(s.muster);
    const gone = c['HeartbeatStream']() as grpc.ClientDuplexStream<object, any>;
    const goneReader = new StreamReader(gone);
    gone.write({ heartbeats: [hb(a)] });
    await goneReader.next();
    assert.equal(hubClosers(s.muster), baseline + 1);
    gone.cancel();
    assert.equal((await goneReader.end())?.code, S.CANCELLED);
    await waitFor(() => hubClosers(s.muster) === baseline, 2000, 'the stream to let go of the hub');
  });

  it('Discover answers the instances, then unchanged for the current revision, and long-polls with waitMs', async () => {
    const r = await call(c, 'Register', { service: 'disco', host: '10.4.0.1', port: 1, metadata: { env: 'prod' } });
    const full = await call(c, 'Discover', { service: 'disco' });
    assert.equal(full.revision, r.instance.revision);
    assert.deepEqual(
      full.instances.map((i: any) => i.id),
      [r.instance.id],
    );
    assert.equal(full.instances[0].namespace, undefined, 'discovery answers leave out what the answer names');
    assert.equal(full.unchanged, undefined);

    const same = await call(c, 'Discover', { service: 'disco', revision: full.revision });
    assert.deepEqual(same, { namespace: 'default', service: 'disco', revision: full.revision, unchanged: true });
    const filtered = await call(c, 'Discover', {
      service: 'disco',
      filter: { metadata: { env: 'dev' }, status: 'all' },
    });
    assert.deepEqual(filtered.instances, undefined, 'the filter applies');

    const t0 = Date.now();
    const idle = await call(c, 'Discover', { service: 'disco', revision: full.revision, waitMs: 300 });
    assert.equal(idle.unchanged, true);
    assert.ok(Date.now() - t0 >= 280, 'waited');

    // How soon it wakes is measured by bench/ (gRPC long-poll wake); here: that it parks, and wakes with the change.
    const poll = call(c, 'Discover', { service: 'disco', revision: full.revision, waitMs: 20_000 });
    await waitFor(
      async () => (await metric(s.url, 'muster_watchers', 'kind="long_poll"')) === 1,
      5000,
      'the long-poll to park',
    );
    assert.equal(s.muster.hub.listeners('default', 'disco'), 1);
    const reg = await call(c, 'Register', { service: 'disco', host: '10.4.0.2', port: 1 });
    const woke = await poll;
    assert.equal(woke.revision, reg.instance.revision);
    assert.equal(woke.instances.length, 2);
    assert.equal(await metric(s.url, 'muster_watchers', 'kind="long_poll"'), 0);
  });

  it('Watch sends a snapshot, then one per change; cancelling unsubscribes', async () => {
    await call(c, 'Register', { service: 'watched', host: '10.5.0.1', port: 1 });
    const baseline = hubWaiters(s.muster);
    const closers = hubClosers(s.muster);
    const w = c['Watch']({ service: 'watched' }) as grpc.ClientReadableStream<any>;
    const reader = new StreamReader(w);
    const first = await reader.next();
    assert.equal(first.instances.length, 1);
    assert.equal(await metric(s.url, 'muster_watchers', 'kind="grpc"'), 1);
    const reg = await call(c, 'Register', { service: 'watched', host: '10.5.0.2', port: 1 });
    const change = await reader.next();
    assert.equal(change.revision, reg.instance.revision);
    assert.equal(change.instances.length, 2);

    // A watcher that holds the current revision gets no first snapshot, only the next change.
    const resumed = new StreamReader(
      c['Watch']({ service: 'watched', revision: change.revision }) as grpc.ClientReadableStream<any>,
    );
    await waitFor(() => s.muster.hub.listeners('default', 'watched') === 2, 5000, 'the second stream to subscribe');
    // Subscribed: the stream decided in that same tick whether to send a first snapshot, and the
    // next message it sends below must be the next change's, not the current revision.
    assert.equal(resumed.pending, 0, 'no snapshot for a current revision');
    const reg3 = await call(c, 'Register', { service: 'watched', host: '10.5.0.3', port: 1 });
    assert.equal((await resumed.next()).revision, reg3.instance.revision);
    assert.equal((await reader.next()).revision, reg3.instance.revision);

    w.cancel();
    (resumed.stream as grpc.ClientReadableStream<any>).cancel();
    assert.equal((await reader.end())?.code, S.CANCELLED);
    await waitFor(
      async () =>
        hubWaiters(s.muster) === baseline &&
        hubClosers(s.muster) === closers &&
        (await metric(s.url, 'muster_watchers', 'kind="grpc"')) === 0,
      2000,
      'watch unsubscribed',
    );
  });

  it('Watch of a service that does not exist fails with NOT_FOUND', async () => {
    const reader = new StreamReader(c['Watch']({ service: 'nowhere' }) as grpc.ClientReadableStream<any>);
    const err = await reader.end();
    assert.equal(err?.code, S.NOT_FOUND);
    assert.equal(err?.metadata.get('muster-error-field')[0], 'service');
  });

  it('an instance registered over gRPC is visible and usable over HTTP, and the other way round', async () => {
    const g = await call(c, 'Register', { service: 'both', host: '10.6.0.1', port: 1 });
    const viaHttp = await api(s.url, 'GET', HTTP_SVC('both'));
    assert.deepEqual(
      viaHttp.body.instances.map((i: { id: string }) => i.id),
      [g.instance.id],
    );
    assert.equal(
      (await api(s.url, 'PUT', `/v1/instances/${g.instance.id}/heartbeat`, undefined, bearer(g.heartbeatToken))).status,
      204,
    );

    const h = await api(s.url, 'POST', HTTP_SVC('both'), { host: '10.6.0.2', port: 1 });
    assert.equal(h.status, 201);
    const viaGrpc = await call(c, 'Discover', { service: 'both' });
    assert.deepEqual(
      viaGrpc.instances.map((i: { id: string }) => i.id).sort(),
      [g.instance.id, h.body.instance.id].sort(),
    );
    assert.equal(viaGrpc.revision, h.body.instance.revision);
    await call(c, 'Heartbeat', { id: h.body.instance.id, heartbeatToken: h.body.heartbeatToken });
    // The same JSON shape: an instance of a gRPC answer is the HTTP one (absent fields are proto3 defaults).
    const httpOne = (await api(s.url, 'GET', HTTP_SVC('both'))).body.instances.find(
      (i: { id: string }) => i.id === h.body.instance.id,
    );
    const grpcOne = viaGrpc.instances.find((i: { id: string }) => i.id === h.body.instance.id);
    for (const k of ['host', 'port', 'weight', 'healthy', 'healthCheck', 'revision'] as const)
      assert.deepEqual(grpcOne[k], httpOne[k], k);
  });

  it('grpc.health.v1 answers SERVING; reflection lists muster.v1.Registry', async () => {
    const healthDef = await protoLoader.load(healthProtoPath, { keepCase: true, enums: String });
    const Health = (grpc.loadPackageDefinition(healthDef) as any).grpc.health.v1.Health;
    const h = new Health(s.grpcAddress, grpc.credentials.createInsecure());
    try {
      for (const service of ['', 'muster.v1.Registry']) {
        const res = await new Promise<any>((resolve, reject) =>
          h.Check({ service }, (e: Error | null, r: any) => (e ? reject(e) : resolve(r))),
        );
        assert.equal(res.status, 'SERVING', `health of "${service}"`);
      }
    } finally {
      h.close();
    }

    const refl = grpc.makeGenericClientConstructor(
      {
        ServerReflectionInfo: {
          path: '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
          requestStream: true,
          responseStream: true,
          // ServerReflectionRequest { string list_services = 7; }
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => b,
        },
      },
      'Reflection',
    );
    const r = new refl(s.grpcAddress, grpc.credentials.createInsecure()) as grpc.Client & Record<string, any>;
    try {
      const stream = r['ServerReflectionInfo']() as grpc.ClientDuplexStream<Buffer, Buffer>;
      const reader = new StreamReader<Buffer>(stream);
      stream.write(Buffer.from([0x3a, 0x01, 0x2a])); // field 7 (list_services), "*"
      const answer = (await reader.next()).toString('latin1');
      stream.end();
      assert.ok(answer.includes('muster.v1.Registry'), 'the list names the Registry');
      assert.ok(answer.includes('grpc.health.v1.Health'), 'and the health service');
    } finally {
      r.close();
    }
  });

  it('counts calls per method and status code', async () => {
    await rejectsWith(call(c, 'Discover', { service: 'nope-metrics' }), S.NOT_FOUND, 'service');
    assert.ok(((await metric(s.url, 'muster_grpc_requests_total', 'method="Discover",code="NOT_FOUND"')) ?? 0) >= 1);
    assert.ok(((await metric(s.url, 'muster_grpc_requests_total', 'method="Register",code="OK"')) ?? 0) >= 1);
  });
});

describe('gRPC API: shutdown', () => {
  it('ends open streams with UNAVAILABLE (health watches too), answers a long-poll, and stops promptly', async () => {
    const s = await startServer();
    const c = registryClient(s.grpcAddress);
    const healthDef = await protoLoader.load(healthProtoPath, { keepCase: true, enums: String });
    const Health = (grpc.loadPackageDefinition(healthDef) as any).grpc.health.v1.Health;
    const h = new Health(s.grpcAddress, grpc.credentials.createInsecure());
    try {
      const health = new StreamReader(h.Watch({ service: '' }) as grpc.ClientReadableStream<any>);
      assert.equal((await health.next()).status, 'SERVING');
      const r = await call(c, 'Register', { service: 'closing', host: '10.7.0.1', port: 1 });
      const reader = new StreamReader(c['Watch']({ service: 'closing' }) as grpc.ClientReadableStream<any>);
      await reader.next();
      const hbStream = c['HeartbeatStream']() as grpc.ClientDuplexStream<object, any>;
      const hbReader = new StreamReader(hbStream);
      hbStream.write({ heartbeats: [{ id: r.instance.id, heartbeatToken: r.heartbeatToken }] });
      await hbReader.next();
      const poll = call(c, 'Discover', { service: 'closing', revision: r.instance.revision, waitMs: 30_000 });
      await sleep(50);
      const t0 = Date.now();
      await s.stop();
      assert.ok(Date.now() - t0 < 2000, `stopped in ${Date.now() - t0} ms`);
      const err = await reader.end();
      assert.equal(err?.code, S.UNAVAILABLE);
      assert.match(err!.details, /shutting down/);
      assert.equal((await hbReader.end())?.code, S.UNAVAILABLE);
      assert.equal((await poll).unchanged, true, 'a long-poll is answered at shutdown');
      assert.equal((await health.next()).status, 'NOT_SERVING', 'health watchers learn of the shutdown');
      assert.equal((await health.end())?.code, S.UNAVAILABLE, 'and their stream does not hold the server');
    } finally {
      h.close();
      c.close();
      await s.stop();
    }
  });
});

describe('gRPC API: readiness', () => {
  it('readiness turns true only once the gRPC port accepts connections', async () => {
    const grpcPort = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const m = new Muster(
      loadConfig({
        flags: {
          httpPort: '0',
          grpcPort: String(grpcPort),
          dataDir: tempDir(),
          'log.level': 'silent',
          'auth.enabled': 'false',
        },
      }),
      { logger: pino({ level: 'silent' }) },
    );
    const starting = m.start();
    try {
      // What a probe sees while the server starts: once it says ready, gRPC must answer.
      while (!(await m.readiness()).ready) await sleep(1);
      await new Promise<void>((resolve, reject) => {
        const sock = net.connect(grpcPort, '127.0.0.1', () => (sock.destroy(), resolve()));
        sock.once('error', reject);
      });
    } finally {
      await starting;
      await m.stop();
    }
  });
});
