import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Consul from 'consul';
import { startAuthServer } from './auth-server.js';
import { api, bearer, type RunningServer } from './harness.js';
import type { Muster } from '../src/muster.js';

/**
 * With auth on and auth.clients required, Consul's token (x-consul-token, or ?token=) is a
 * Muster access token, and Muster's token rules apply to it unchanged.
 */
describe('Consul API with auth.clients required', () => {
  let server: RunningServer & { admin: string; muster: Muster };
  let base: string;
  let writer: string;
  let reader: string;
  const body = JSON.stringify({ Name: 'orders', ID: 'orders-1', Port: 9001, Check: { TTL: '30s', Status: 'passing' } });

  before(async () => {
    server = await startAuthServer({ 'auth.clients': 'required', 'consul.port': 0 });
    base = `http://${server.muster.consulAddress}`;
    const make = async (name: string, rules: string[]) => {
      const r = await api(server.url, 'POST', '/v1/tokens', { name, rules }, bearer(server.admin));
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body.secret as string;
    };
    writer = await make('orders-writer', ['write:default/orders']);
    reader = await make('payments-reader', ['read:default/payments']);
  });
  after(() => server.stop());

  const put = (path: string, headers: Record<string, string> = {}, b?: string) =>
    fetch(base + path, { method: 'PUT', headers, ...(b !== undefined ? { body: b } : {}) });

  it('refuses anonymous registrations, check-ins and reads', async () => {
    assert.equal((await put('/v1/agent/service/register', {}, body)).status, 401);
    assert.equal((await fetch(`${base}/v1/health/service/orders`)).status, 401);
    assert.equal((await fetch(`${base}/v1/agent/services`)).status, 401);
  });

  it('takes a token with write on the service in x-consul-token or ?token=', async () => {
    assert.equal((await put('/v1/agent/service/register', { 'x-consul-token': writer }, body)).status, 200);
    assert.equal((await put(`/v1/agent/check/pass/service:orders-1?token=${writer}`)).status, 200);
    const consul = new Consul({
      host: '127.0.0.1',
      port: Number(server.muster.consulAddress.split(':')[1]),
      defaults: { token: writer },
    });
    const entries = (await consul.health.service({ service: 'orders', passing: true })) as unknown[];
    assert.equal(entries.length, 1);
  });

  it('refuses a token without the right, and a token that is no Muster token', async () => {
    assert.equal((await put('/v1/agent/service/register', { 'x-consul-token': reader }, body)).status, 403);
    assert.equal((await put('/v1/agent/check/fail/service:orders-1', { 'x-consul-token': reader })).status, 403);
    assert.equal((await put('/v1/agent/service/deregister/orders-1', { 'x-consul-token': reader })).status, 403);
    const read = await fetch(`${base}/v1/health/service/orders`, { headers: { 'x-consul-token': reader } });
    assert.equal(read.status, 403);
    assert.match(read.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal((await fetch(`${base}/v1/health/service/orders?token=mst_nope`)).status, 401);
    // The reader sees only what it may read.
    const services = await fetch(`${base}/v1/catalog/services`, { headers: { 'x-consul-token': reader } });
    assert.deepEqual(await services.json(), {});
    assert.equal((await api(server.url, 'GET', '/v1/instances/orders-1', undefined, bearer(server.admin))).status, 200);
  });

  it('deregisters with the writer token', async () => {
    assert.equal((await put('/v1/agent/service/deregister/orders-1', { 'x-consul-token': writer })).status, 200);
    assert.equal((await api(server.url, 'GET', '/v1/instances/orders-1', undefined, bearer(server.admin))).status, 404);
  });
});
