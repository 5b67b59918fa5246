import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Eureka } from 'eureka-js-client';
import { MusterClient } from '@muster/client';
import { startAuthServer } from './auth-server.js';
import { api, bearer, startServer, waitFor, type RunningServer } from './harness.js';

/** eureka-js-client, unmodified, against Muster: short intervals so nothing waits long. */
function eurekaClient(server: RunningServer, app: string, instanceId: string, port: number) {
  const { hostname, port: httpPort } = new URL(server.url);
  const silent = { debug() {}, info() {}, warn() {}, error() {} };
  return new Eureka({
    instance: {
      app,
      instanceId,
      hostName: 'localhost',
      ipAddr: '127.0.0.1',
      statusPageUrl: `http://localhost:${port}/info`,
      port: { $: port, '@enabled': true },
      vipAddress: `${app}.muster.test`,
      dataCenterInfo: { '@class': 'com.netflix.appinfo.InstanceInfo$MyDataCenterInfo', name: 'MyOwn' },
      leaseInfo: { durationInSecs: 9 } as never,
    },
    eureka: {
      host: hostname,
      port: Number(httpPort),
      servicePath: '/eureka/apps/',
      heartbeatInterval: 150,
      registryFetchInterval: 150,
      maxRetries: 0,
    },
    logger: silent as never,
  });
}

const started = (c: Eureka) => new Promise<void>((ok, fail) => c.start((err) => (err ? fail(err) : ok())));
const stopped = (c: Eureka) => new Promise<void>((ok, fail) => c.stop((err) => (err ? fail(err) : ok())));

describe('Eureka clients against Muster', () => {
  // Auth on, as by default (clients open on loopback): the operator's deregistration takes the admin token.
  let server: RunningServer & { admin: string };
  const clients: Eureka[] = [];
  const musterClients: MusterClient[] = [];
  before(async () => {
    server = await startAuthServer({ 'health.sweepInterval': '100ms' });
  });
  after(async () => {
    for (const c of clients) await stopped(c).catch(() => {});
    await Promise.all(musterClients.map((c) => c.close()));
    await server.stop();
  });

  it('registers, is found by a registry fetch, re-registers after the server forgot it, and deregisters on stop', async () => {
    const c = eurekaClient(server, 'orders', 'orders-1', 7001);
    clients.push(c);
    let registrations = 0;
    // The client is an EventEmitter; its type declarations leave that out.
    (c as unknown as NodeJS.EventEmitter).on('registered', () => registrations++);
    await started(c);
    assert.equal(registrations, 1);

    await waitFor(() => c.getInstancesByAppId('ORDERS').length === 1, 5000, 'the instance in a registry fetch');
    const seen = c.getInstancesByAppId('orders')[0] as unknown as Record<string, any>;
    assert.equal(seen['instanceId'], 'orders-1');
    assert.equal(seen['app'], 'ORDERS');
    assert.equal(seen['status'], 'UP');
    assert.deepEqual(seen['port'], { $: 7001, '@enabled': 'true' });
    assert.equal(seen['vipAddress'], 'orders.muster.test');
    assert.equal(seen['leaseInfo'].durationInSecs, 9);

    // Muster's view: the same instance, a ttl of a third of the lease, its instanceId kept.
    const native = await api(server.url, 'GET', '/v1/instances/orders-1');
    assert.equal(native.status, 200);
    assert.equal(native.body.service, 'orders');
    assert.equal(native.body.healthCheck.ttl, 3);
    assert.equal(native.body.metadata['eureka.instanceId'], 'orders-1');

    // The server forgets it (an operator's deregistration through Muster's API): the next renew
    // gets 404 and the client registers again.
    assert.equal(
      (await api(server.url, 'DELETE', '/v1/instances/orders-1', undefined, bearer(server.admin))).status,
      204,
    );
    await waitFor(() => registrations === 2, 5000, 'the client to register again after a 404 renew');
    assert.equal((await api(server.url, 'GET', '/v1/instances/orders-1')).status, 200);

    await stopped(c);
    clients.splice(clients.indexOf(c), 1);
    assert.equal((await api(server.url, 'GET', '/v1/instances/orders-1')).status, 404);
  });

  it("sees an instance registered through Muster's API, and Muster's SDK sees the Eureka-registered one", async () => {
    const r = await api(server.url, 'POST', '/v1/namespaces/default/services/billing/instances', {
      host: '127.0.0.1',
      port: 7101,
      metadata: { zone: 'a' },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const c = eurekaClient(server, 'payments', 'payments-1', 7201);
    clients.push(c);
    await started(c);
    await waitFor(() => c.getInstancesByAppId('BILLING').length === 1, 5000, 'the native instance in a fetch');
    const billing = c.getInstancesByAppId('BILLING')[0] as unknown as Record<string, any>;
    assert.equal(billing['instanceId'], r.body.instance.id);
    assert.equal(billing['app'], 'BILLING');
    assert.equal(billing['vipAddress'], 'billing');
    assert.deepEqual(billing['port'], { $: 7101, '@enabled': 'true' });
    assert.deepEqual(billing['metadata'], { zone: 'a' });

    const sdk = new MusterClient({ transport: 'http', servers: [server.url], pollIntervalMs: 60_000 });
    musterClients.push(sdk);
    const answer = await sdk.discover('payments');
    assert.deepEqual(
      answer.instances.map((i) => [i.id, i.host, i.port]),
      [['payments-1', '127.0.0.1', 7201]],
    );
    await sdk.ready('payments');
    assert.equal(sdk.pick('payments')?.id, 'payments-1');
  });

  it('is renewable through the Eureka API only, and its lease expires like any heartbeat', async () => {
    const reg = await api(server.url, 'POST', '/v1/namespaces/default/services/native/instances', {
      id: 'native-1',
      host: '127.0.0.1',
      port: 7301,
    });
    assert.equal(reg.status, 201);
    // An instance of Muster's own API is not the Eureka adapter's to renew or cancel.
    assert.equal((await api(server.url, 'PUT', '/eureka/apps/NATIVE/native-1')).status, 403);
    assert.equal((await api(server.url, 'DELETE', '/eureka/v2/apps/NATIVE/native-1')).status, 403);
    assert.equal((await api(server.url, 'GET', '/v1/instances/native-1')).status, 200);
    // Nor may a Eureka registration take its id over.
    const body = {
      instance: { app: 'NATIVE', instanceId: 'native-1', hostName: 'h', ipAddr: '127.0.0.1', port: 7302 },
    };
    assert.equal((await api(server.url, 'POST', '/eureka/apps/NATIVE', body)).status, 409);

    const lease = {
      instance: {
        app: 'SHORT',
        instanceId: 'short-1',
        hostName: 'short.local',
        ipAddr: '127.0.0.1',
        port: { $: 7401, '@enabled': 'true' },
        leaseInfo: { durationInSecs: 3 },
      },
    };
    assert.equal((await api(server.url, 'POST', '/eureka/v2/apps/SHORT', lease)).status, 204);
    assert.equal((await api(server.url, 'PUT', '/eureka/v2/apps/SHORT/short-1')).status, 200);
    const app = await api(server.url, 'GET', '/eureka/v2/apps/SHORT', undefined, { accept: 'application/json' });
    assert.equal(app.body.application.instance[0].hostName, 'short.local');
    await waitFor(
      async () => (await api(server.url, 'GET', '/eureka/apps/SHORT/short-1')).body?.instance?.status === 'DOWN',
      8000,
      'the silent instance to be DOWN',
    );
  });

  it('maps status overrides onto isolation (an operator decision) and takes metadata updates', async () => {
    const body = { instance: { app: 'STATUSES', instanceId: 'st-1', hostName: 'st', ipAddr: '127.0.0.1', port: 7501 } };
    assert.equal((await api(server.url, 'POST', '/eureka/apps/STATUSES', body)).status, 204);
    const path = '/eureka/apps/STATUSES/st-1';
    assert.equal((await api(server.url, 'PUT', `${path}/status?value=OUT_OF_SERVICE`)).status, 401);
    const admin = bearer(server.admin);
    assert.equal((await api(server.url, 'PUT', `${path}/status?value=OUT_OF_SERVICE`, undefined, admin)).status, 200);
    assert.equal((await api(server.url, 'GET', '/v1/instances/st-1')).body.isolate, true);
    const read = await api(server.url, 'GET', path);
    assert.equal(read.body.instance.status, 'OUT_OF_SERVICE');
    assert.equal(read.body.instance.overriddenStatus, 'OUT_OF_SERVICE');
    assert.equal((await api(server.url, 'DELETE', `${path}/status?value=UP`, undefined, admin)).status, 200);
    assert.equal((await api(server.url, 'GET', '/v1/instances/st-1')).body.isolate, false);

    assert.equal((await api(server.url, 'PUT', `${path}/metadata?color=blue`)).status, 200);
    const after = await api(server.url, 'GET', path);
    assert.equal(after.body.instance.metadata.color, 'blue');
    assert.equal(after.body.instance.instanceId, 'st-1');
  });

  it('answers a full fetch with Eureka hash code and arrays, in XML for a client that does not take JSON, and a delta with actionType', async () => {
    const full = await api(server.url, 'GET', '/eureka/apps', undefined, { accept: 'application/json' });
    assert.equal(full.status, 200);
    const apps = full.body.applications;
    assert.ok(Array.isArray(apps.application));
    const statuses = new Map<string, number>();
    for (const a of apps.application) {
      assert.ok(Array.isArray(a.instance));
      assert.equal(a.name, a.name.toUpperCase());
      for (const i of a.instance) {
        statuses.set(i.status, (statuses.get(i.status) ?? 0) + 1);
        assert.equal(typeof i.port.$, 'number');
        assert.equal(i.app, a.name);
        assert.equal(typeof i.vipAddress, 'string');
      }
    }
    const expected = [...statuses.keys()]
      .sort()
      .map((s) => `${s}_${statuses.get(s)}_`)
      .join('');
    assert.equal(apps.apps__hashcode, expected);

    const xml = await fetch(`${server.url}/eureka/apps/STATUSES`, { headers: { accept: 'application/xml' } });
    assert.equal(xml.status, 200);
    assert.match(xml.headers.get('content-type') ?? '', /application\/xml/);
    const text = await xml.text();
    assert.match(text, /<application><name>STATUSES<\/name><instance><instanceId>st-1<\/instanceId>/);
    assert.match(text, /<port enabled="true">7501<\/port>/);

    assert.equal((await api(server.url, 'DELETE', '/eureka/apps/STATUSES/st-1')).status, 200);
    const delta = await api(server.url, 'GET', '/eureka/apps/delta', undefined, { accept: 'application/json' });
    assert.equal(delta.status, 200);
    const byId = new Map<string, string>();
    for (const a of delta.body.applications.application)
      for (const i of a.instance) byId.set(i.instanceId, i.actionType);
    assert.equal(byId.get('st-1'), 'DELETED');
    assert.equal(byId.get('payments-1'), 'ADDED');
    assert.equal(delta.body.applications.apps__hashcode.length > 0, true);
  });

  it('registers from an XML body, with the port as an element with an attribute', async () => {
    const xml =
      '<instance><instanceId>x-1</instanceId><hostName>xml.local</hostName><app>XMLAPP</app>' +
      '<ipAddr>127.0.0.1</ipAddr><status>UP</status><port enabled="true">7601</port>' +
      '<leaseInfo><durationInSecs>30</durationInSecs></leaseInfo><metadata><k>v</k></metadata></instance>';
    const r = await api(server.url, 'POST', '/eureka/v2/apps/XMLAPP', `<?xml version="1.0"?>${xml}`, {
      'content-type': 'application/xml',
    });
    assert.equal(r.status, 204, JSON.stringify(r.body));
    const native = await api(server.url, 'GET', '/v1/instances/x-1');
    assert.equal(native.body.port, 7601);
    assert.equal(native.body.healthCheck.ttl, 10);
    assert.equal(native.body.metadata.k, 'v');
    assert.equal(native.body.metadata['eureka.hostName'], 'xml.local');
  });
});

describe('eureka.enabled false', () => {
  it('serves no Eureka route', async () => {
    const server = await startServer({ 'eureka.enabled': false });
    try {
      for (const prefix of ['/eureka/apps', '/eureka/v2/apps']) {
        const r = await api(server.url, 'GET', prefix, undefined, { accept: 'application/json' });
        assert.equal(r.status, 404);
        assert.equal(r.body.error.code, 'NOT_FOUND');
      }
    } finally {
      await server.stop();
    }
  });
});
