import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startAuthServer } from './auth-server.js';
import { api, bearer, type RunningServer } from './harness.js';

/**
 * With auth.clients required, Eureka's requests carry an access token like any client's, and the
 * adapter vouches for nothing: each needs the right its native counterpart needs.
 */
describe('Eureka API with auth.clients required', () => {
  let server: RunningServer & { admin: string };
  let writer: string;
  let reader: string;
  const body = (id: string) => ({
    instance: { app: 'ORDERS', instanceId: id, hostName: 'o', ipAddr: '127.0.0.1', port: 9001 },
  });

  before(async () => {
    server = await startAuthServer({ 'auth.clients': 'required' });
    const make = async (name: string, rules: string[]) => {
      const r = await api(server.url, 'POST', '/v1/tokens', { name, rules }, bearer(server.admin));
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body.secret as string;
    };
    writer = await make('orders-writer', ['write:default/orders']);
    reader = await make('payments-reader', ['read:default/payments']);
  });
  after(() => server.stop());

  it('refuses anonymous registrations, renewals, cancels and reads', async () => {
    assert.equal((await api(server.url, 'POST', '/eureka/apps/ORDERS', body('o-1'))).status, 401);
    assert.equal((await api(server.url, 'POST', '/eureka/apps/ORDERS', body('o-1'), bearer(writer))).status, 204);
    assert.equal((await api(server.url, 'PUT', '/eureka/apps/ORDERS/o-1')).status, 401);
    assert.equal((await api(server.url, 'DELETE', '/eureka/apps/ORDERS/o-1')).status, 401);
    assert.equal((await api(server.url, 'GET', '/eureka/apps')).status, 401);
    assert.equal((await api(server.url, 'GET', '/eureka/apps/ORDERS')).status, 401);
    assert.equal((await api(server.url, 'GET', '/v1/instances/o-1', undefined, bearer(server.admin))).status, 200);
  });

  it('takes a token with the right on the app, and shows a token only the apps it may read', async () => {
    assert.equal((await api(server.url, 'PUT', '/eureka/apps/ORDERS/o-1', undefined, bearer(writer))).status, 200);
    // Registering the same instanceId again updates it.
    assert.equal((await api(server.url, 'POST', '/eureka/apps/ORDERS', body('o-1'), bearer(writer))).status, 204);
    assert.equal((await api(server.url, 'PUT', '/eureka/apps/ORDERS/o-1', undefined, bearer(reader))).status, 403);
    assert.equal((await api(server.url, 'GET', '/eureka/apps/ORDERS', undefined, bearer(reader))).status, 403);
    const full = await api(server.url, 'GET', '/eureka/apps', undefined, bearer(reader));
    assert.equal(full.status, 200);
    assert.deepEqual(full.body.applications.application, []);
    const all = await api(server.url, 'GET', '/eureka/apps', undefined, bearer(server.admin));
    assert.deepEqual(
      all.body.applications.application.map((a: { name: string }) => a.name),
      ['ORDERS'],
    );
    assert.equal((await api(server.url, 'DELETE', '/eureka/apps/ORDERS/o-1', undefined, bearer(writer))).status, 200);
    assert.equal((await api(server.url, 'GET', '/v1/instances/o-1', undefined, bearer(server.admin))).status, 404);
  });
});
