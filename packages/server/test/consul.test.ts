import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Consul from 'consul';
import { api, startServer, waitFor, type RunningServer } from './harness.js';
import type { Muster } from '../src/muster.js';

/** A TTL check as the client types it (its types ask for a name and a timeout, which TTL checks do not use). */
const ttl = (t: string, status?: string) => ({ name: 'ttl', timeout: '1s', ttl: t, ...(status ? { status } : {}) });

type HealthEntry = {
  Service: { ID: string; Service: string; Tags: string[]; Port: number };
  Checks: { Status: string }[];
};

/** The `consul` npm client, unmodified, against Muster's Consul API. */
describe('Consul API with the consul client', () => {
  let server: RunningServer & { muster: Muster };
  let consul: Consul;
  let base: string;

  before(async () => {
    server = await startServer({ 'consul.port': 0, 'health.sweepInterval': '100ms' });
    const [host, port] = server.muster.consulAddress.split(':');
    consul = new Consul({ host: host!, port: Number(port) });
    base = `http://${server.muster.consulAddress}`;
  });
  after(() => server.stop());

  const passing = async (service: string) =>
    ((await consul.health.service({ service, passing: true })) as HealthEntry[]).map((e) => e.Service.ID);

  it('registers with a TTL check, critical until passed, then lists it as passing', async () => {
    await consul.agent.service.register({
      name: 'orders',
      id: 'orders-1',
      port: 9001,
      tags: ['v1', 'blue'],
      check: ttl('10s'),
    });
    assert.deepEqual(await passing('orders'), []);
    await consul.agent.check.pass('service:orders-1');
    assert.deepEqual(await passing('orders'), ['orders-1']);
    const [entry] = (await consul.health.service({ service: 'orders', tag: 'blue' })) as HealthEntry[];
    assert.deepEqual(entry!.Service.Tags, ['v1', 'blue']);
    assert.deepEqual(await consul.health.service({ service: 'orders', tag: 'green' }), []);
    const services = (await consul.agent.service.list()) as Record<string, { Service: string; Port: number }>;
    assert.equal(services['orders-1']!.Port, 9001);
    assert.deepEqual(await consul.catalog.service.list(), { orders: ['blue', 'v1'] });
    // The instance is Muster's own too, in the default namespace, with its tags in metadata.
    const native = await api(server.url, 'GET', '/v1/instances/orders-1');
    assert.equal(native.body.service, 'orders');
    assert.equal(native.body.metadata['consul.tags'], '["v1","blue"]');
  });

  it('re-registers in place, and fails a check at once', async () => {
    await consul.agent.service.register({ name: 'orders', id: 'orders-1', port: 9002, check: ttl('10s', 'passing') });
    assert.deepEqual(await passing('orders'), ['orders-1']);
    const [entry] = (await consul.health.service('orders')) as HealthEntry[];
    assert.equal(entry!.Service.Port, 9002);
    await consul.agent.check.fail('service:orders-1');
    assert.deepEqual(await passing('orders'), []);
    await consul.agent.check.pass('service:orders-1');
    assert.deepEqual(await passing('orders'), ['orders-1']);
  });

  it('leaves the passing list when its TTL lapses', async () => {
    await consul.agent.service.register({ name: 'short', id: 'short-1', port: 9003, check: ttl('3s', 'passing') });
    assert.deepEqual(await passing('short'), ['short-1']);
    // TTL 3s is Muster's ttl 1s: unhealthy 3 s after the last check-in.
    await waitFor(async () => (await passing('short')).length === 0, 6000, 'the TTL to lapse');
    const checks = (await consul.agent.check.list()) as Record<string, { Status: string }>;
    assert.equal(checks['service:short-1']!.Status, 'critical');
  });

  it('maintenance mode takes the instance out of the passing list', async () => {
    await consul.agent.service.register({ name: 'maint', id: 'maint-1', port: 9004, check: ttl('30s', 'passing') });
    await consul.agent.service.maintenance({ id: 'maint-1', enable: true, reason: 'deploy' });
    assert.deepEqual(await passing('maint'), []);
    assert.equal((await api(server.url, 'GET', '/v1/instances/maint-1')).body.isolate, true);
    await consul.agent.service.maintenance({ id: 'maint-1', enable: false });
    assert.deepEqual(await passing('maint'), ['maint-1']);
  });

  it('consul.watch sees a registration made through Muster HTTP API within a second', async () => {
    await consul.agent.service.register({ name: 'watched', id: 'watched-1', port: 9005, check: ttl('30s', 'passing') });
    const seen: string[][] = [];
    const errors: unknown[] = [];
    const watch = consul.watch({
      method: consul.health.service,
      options: { service: 'watched', passing: true, wait: '20s' } as never,
    });
    watch.on('change', (data: HealthEntry[]) => seen.push(data.map((e) => e.Service.ID).sort()));
    watch.on('error', (err: unknown) => errors.push(err));
    try {
      await waitFor(() => seen.length === 1, 2000, 'the first answer');
      const t0 = Date.now();
      const r = await api(server.url, 'POST', '/v1/namespaces/default/services/watched/instances', {
        id: 'watched-2',
        host: '127.0.0.1',
        port: 9006,
        healthCheck: { type: 'heartbeat', ttl: 30 },
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      await waitFor(() => seen.length === 2, 1000, 'the watch to see the registration');
      assert.ok(Date.now() - t0 < 1000);
      assert.deepEqual(seen, [['watched-1'], ['watched-1', 'watched-2']]);
      assert.deepEqual(errors, []);
    } finally {
      watch.end();
    }
  });

  it('answers X-Consul-Index on every read, never 0, and a blocking query parks until a change', async () => {
    for (const path of [
      '/v1/health/service/orders',
      '/v1/catalog/services',
      '/v1/agent/services',
      '/v1/health/service/nothing',
    ]) {
      const r = await fetch(base + path);
      assert.equal(r.status, 200, path);
      assert.ok(Number(r.headers.get('x-consul-index')) > 0, path);
    }
    assert.deepEqual(await (await fetch(`${base}/v1/health/service/nothing`)).json(), []);
    const first = await fetch(`${base}/v1/health/service/orders`);
    const index = first.headers.get('x-consul-index')!;
    const t0 = Date.now();
    const parked = await fetch(`${base}/v1/health/service/orders?index=${index}&wait=500ms`);
    assert.ok(Date.now() - t0 >= 450, 'parked for the wait');
    assert.equal(parked.headers.get('x-consul-index'), index);
    const changing = fetch(`${base}/v1/health/service/orders?index=${index}&wait=10s`);
    await consul.agent.service.register({ name: 'orders', id: 'orders-2', port: 9007, check: ttl('10s') });
    const changed = await changing;
    assert.ok(Number(changed.headers.get('x-consul-index')) > Number(index));
    assert.equal(((await changed.json()) as unknown[]).length, 2);
  });

  it('a blocking query on the catalog waits for any service to change', async () => {
    const first = await fetch(`${base}/v1/catalog/services`);
    const index = first.headers.get('x-consul-index')!;
    const t0 = Date.now();
    const parked = await fetch(`${base}/v1/catalog/services?index=${index}&wait=300ms`);
    assert.ok(Date.now() - t0 >= 250, 'parked for the wait');
    assert.equal(parked.headers.get('x-consul-index'), index);
    const changing = fetch(`${base}/v1/catalog/services?index=${index}&wait=10s`);
    await consul.agent.service.register({
      name: 'billing',
      id: 'billing-1',
      port: 9008,
      tags: ['x'],
      check: ttl('10s'),
    });
    const changed = await changing;
    assert.ok(Number(changed.headers.get('x-consul-index')) > Number(index));
    assert.deepEqual(((await changed.json()) as Record<string, string[]>)['billing'], ['x']);
  });

  it('deregisters', async () => {
    await consul.agent.service.deregister('orders-2');
    await consul.agent.service.deregister('orders-1');
    assert.deepEqual(await consul.health.service('orders'), []);
    assert.equal((await api(server.url, 'GET', '/v1/instances/orders-1')).status, 404);
  });

  it('answers the status reads and the agent self', async () => {
    assert.equal(await consul.status.leader(), server.muster.consulAddress);
    const self = (await consul.agent.self()) as { Config: { Datacenter: string } };
    assert.equal(self.Config.Datacenter, 'dc1');
  });
});

describe('Consul API off by default', () => {
  it('binds no Consul port unless consul.port is set', async () => {
    const server = await startServer();
    try {
      assert.throws(() => server.muster.consulAddress, /not served/);
    } finally {
      await server.stop();
    }
  });
});
