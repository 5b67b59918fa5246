import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startAuthServer } from './auth-server.js';
import { api, bearer, startServer } from './harness.js';

/** What the server adds for the web console: the console itself, the caller's rights, request rates. */
describe("the console's routes", () => {
  let s: Awaited<ReturnType<typeof startAuthServer>>;
  let admin: string;
  before(async () => {
    s = await startAuthServer();
    admin = s.admin;
  });
  after(() => s.stop());

  it('sends a browser from / to /console/, serves the page on every console path, and 404s a missing asset', async () => {
    const root = await fetch(`${s.url}/`, { redirect: 'manual' });
    assert.equal(root.status, 302);
    assert.equal(root.headers.get('location'), '/console/');
    for (const p of ['/console', '/console/', '/console/services/default/orders']) {
      const r = await fetch(s.url + p);
      assert.equal(r.status, 200, p);
      assert.match(await r.text(), /<div id="root">/);
      assert.match(r.headers.get('content-security-policy') ?? '', /default-src 'self'/);
      assert.equal(r.headers.get('x-frame-options'), 'DENY');
    }
    const page = await (await fetch(`${s.url}/console/`)).text();
    const script = /src="(\/console\/assets\/[^"]+\.js)"/.exec(page)?.[1];
    assert.ok(script, page);
    assert.doesNotMatch(page, /https?:\/\//, 'nothing loaded from elsewhere');
    const js = await fetch(s.url + script);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('cache-control') ?? '', /immutable/);
    const missing = await api(s.url, 'GET', '/console/assets/nope.js');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'NOT_FOUND');
  });

  it('tells a caller its own auth, token and rights, and refuses a wrong token', async () => {
    const anonymous = await api(s.url, 'GET', '/v1/tokens/self');
    assert.deepEqual(anonymous.body, { auth: { enabled: true, clients: 'open' }, token: null, rights: [] });
    const scoped = await api(
      s.url,
      'POST',
      '/v1/tokens',
      { name: 'orders-writer', rules: ['write:prod/orders-*', 'read:prod/*'] },
      bearer(admin),
    );
    const asScoped = (q: string) => api(s.url, 'GET', `/v1/tokens/self${q}`, undefined, bearer(scoped.body.secret));
    assert.deepEqual((await asScoped('')).body.rights, []);
    assert.deepEqual((await asScoped('?namespace=prod&service=orders-eu')).body.rights, ['read', 'write']);
    assert.deepEqual((await asScoped('?namespace=prod&service=billing')).body.rights, ['read']);
    assert.deepEqual((await asScoped('?namespace=prod')).body.rights, ['read']);
    assert.deepEqual((await asScoped('?namespace=dev&service=orders-eu')).body.rights, []);
    assert.deepEqual((await asScoped('')).body.token, {
      id: scoped.body.token.id,
      name: 'orders-writer',
      rules: ['write:prod/orders-*', 'read:prod/*'],
    });
    assert.deepEqual((await api(s.url, 'GET', '/v1/tokens/self', undefined, bearer(admin))).body.rights, [
      'read',
      'write',
      'admin',
    ]);
    const wrong = await api(s.url, 'GET', '/v1/tokens/self', undefined, bearer(`mst_0123456789ab_${'x'.repeat(43)}`));
    assert.equal(wrong.status, 401);
    assert.equal((await api(s.url, 'GET', '/v1/tokens/self?namespace=a/b')).status, 400);
  });

  it('answers every right with auth off', async () => {
    const open = await startServer();
    try {
      assert.deepEqual((await api(open.url, 'GET', '/v1/tokens/self')).body, {
        auth: { enabled: false, clients: 'open' },
        token: null,
        rights: ['read', 'write', 'admin'],
      });
    } finally {
      await open.stop();
    }
  });

  it("answers request rates per second from the server's own counters, to token holders", async () => {
    assert.equal((await api(s.url, 'GET', '/v1/stats')).status, 401);
    const rates = s.muster.rates;
    await rates.sample();
    for (let k = 0; k < 10; k++)
      await api(s.url, 'POST', '/v1/namespaces/default/services/rated/instances', { host: '10.0.0.1', port: 100 + k });
    for (let k = 0; k < 5; k++) await api(s.url, 'GET', '/v1/namespaces/default/services/rated/instances');
    await rates.sample();
    const r = await api(s.url, 'GET', '/v1/stats', undefined, bearer(admin));
    assert.equal(r.status, 200);
    assert.equal(r.body.intervalMs, 5000);
    const last = r.body.samples.at(-1);
    assert.ok(last.registrations > 0 && last.discoveries > 0, JSON.stringify(last));
    assert.equal(last.heartbeats, 0);
    assert.ok(Date.parse(last.at) <= Date.now());
  });
});
