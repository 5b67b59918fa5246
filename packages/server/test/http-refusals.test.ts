import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { api, bearer, spawnServer, startServer, type ChildServer } from './harness.js';

/**
 * Requests the server refuses early, the way an attacker sends them: bodies that are costly to
 * parse, too large, or sent without credentials, and headers too large. Each is refused cheaply,
 * in the API's error shape, and counts against its address.
 */

type Server = Awaited<ReturnType<typeof startServer>>;
const adminOf = (s: Server) => fs.readFileSync(path.join(s.dataDir, 'admin.token'), 'utf8').trim();
/** 1 MB of '[': what cost the event loop a tenth of a second or more per request to parse. */
const NESTED = '['.repeat(1_000_000);
const REGISTER = '/v1/namespaces/default/services/orders/instances';

describe('deeply nested JSON and bodies sent without credentials', () => {
  let s: Server;
  before(async () => {
    s = await startServer({ 'auth.enabled': true });
  });
  after(() => s.stop());

  it('a body nested deeper than 32 levels is refused before it is parsed, valid JSON or not', async () => {
    const deepButValid = `{"host":"10.0.0.1","port":80,"metadata":{"a":${'['.repeat(40)}${']'.repeat(40)}}}`;
    for (const body of [NESTED, deepButValid]) {
      const r = await api(s.url, 'POST', REGISTER, body);
      assert.equal(r.status, 400);
      assert.deepEqual(r.body, {
        error: {
          code: 'INVALID_ARGUMENT',
          message: 'request body nests arrays and objects deeper than 32 levels',
          field: 'body',
        },
      });
    }
    // Brackets inside strings are text, not nesting.
    const inString = await api(s.url, 'POST', REGISTER, {
      host: '10.0.0.2',
      port: 80,
      metadata: { a: '['.repeat(100) },
    });
    assert.equal(inString.status, 201, JSON.stringify(inString.body));
  });

  it('a management route refuses a caller without an access token before reading the body', async () => {
    for (const route of ['/v1/tokens', '/v1/namespaces', '/v1/namespaces/default/services']) {
      for (const headers of [{}, bearer('mst_000000000000_not-a-real-token-at-all-000000000000000000000')]) {
        const r = await api(s.url, 'POST', route, NESTED, headers);
        assert.equal(r.status, 401, `${route}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.code, 'UNAUTHENTICATED');
      }
    }
    // With the admin token the body is read, and judged.
    const admin = await api(s.url, 'POST', '/v1/tokens', NESTED, bearer(adminOf(s)));
    assert.equal(admin.status, 400);
    assert.equal(admin.body.error.field, 'body');
  });

  it('with auth.clients required, a registration without any credential is refused before its body is read', async () => {
    const required = await startServer({ 'auth.enabled': true, 'auth.clients': 'required' });
    try {
      const r = await api(required.url, 'POST', REGISTER, NESTED);
      assert.equal(r.status, 401);
      assert.equal(r.body.error.code, 'UNAUTHENTICATED');
    } finally {
      await required.stop();
    }
  });
});

describe('refused requests count against the write limit of their address', () => {
  it('past limits.writesPerAddress refusals, the next write of that address answers 429 before its body is read', async () => {
    const s = await startServer({ 'auth.enabled': true, 'limits.writesPerAddress': 5 });
    try {
      for (let i = 0; i < 5; i++) assert.equal((await api(s.url, 'POST', '/v1/tokens', NESTED)).status, 401);
      const r = await api(s.url, 'POST', REGISTER, { host: '10.0.0.1', port: 80 });
      assert.equal(r.status, 429, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'RESOURCE_EXHAUSTED');
      assert.ok(Number(r.headers.get('retry-after')) >= 1);
      // Reads are not writes: discovery still answers.
      assert.equal((await api(s.url, 'GET', `${REGISTER}?status=all`)).status, 404);
    } finally {
      await s.stop();
    }
  });
});

describe('answers every client can read', () => {
  // In a process of its own, as in production: sharing the test's event loop, the server would
  // read a body in step with the client writing it, which hides the race a real client loses.
  let s: ChildServer;
  before(async () => {
    s = await spawnServer();
  });
  after(() => s.stop());

  it("a body over http.bodyLimit answers 413 to Node's fetch, not a broken pipe", async () => {
    // Sent with a content-length the server refuses at once; the client is still sending then.
    for (const size of [3_000_000, 12_000_000]) {
      for (let i = 0; i < 10; i++) {
        const r = await fetch(s.url + REGISTER, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: 'x'.repeat(size),
        });
        assert.equal(r.status, 413, `${size} bytes`);
        assert.deepEqual(await r.json(), {
          error: { code: 'RESOURCE_EXHAUSTED', message: 'request body is larger than 1048576 bytes', field: 'body' },
        });
      }
    }
    // The server is fine afterwards.
    assert.equal((await api(s.url, 'POST', REGISTER, { host: '10.0.0.1', port: 80 })).status, 201);
  });

  it("a 70 KB header answers 431 in the API's error shape", async () => {
    const r = await fetch(s.url + REGISTER, { headers: { 'x-large': 'a'.repeat(70_000) } });
    assert.equal(r.status, 431);
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await r.json(), {
      error: { code: 'RESOURCE_EXHAUSTED', message: 'request headers are larger than 16384 bytes', field: 'headers' },
    });
    assert.equal((await api(s.url, 'GET', '/healthz')).status, 200);
  });
});

describe('metrics.auth', () => {
  it('auto: open on a loopback host, a token needed behind a proxy; required: an access token with read on everything', async () => {
    const servers: Server[] = [];
    const start = async (flags: Record<string, string | boolean>) => {
      const server = await startServer({ 'auth.enabled': true, ...flags });
      servers.push(server);
      return server;
    };
    try {
      const open = await start({});
      const proxied = await start({ 'http.trustProxy': '127.0.0.1' });
      const required = await start({ 'metrics.auth': 'required' });
      assert.equal((await fetch(`${open.url}/metrics`)).status, 200);
      assert.equal((await api(proxied.url, 'GET', '/metrics')).status, 401);
      const anonymous = await api(required.url, 'GET', '/metrics');
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.body.error.code, 'UNAUTHENTICATED');
      const admin = adminOf(required);
      const narrow = (
        await api(required.url, 'POST', '/v1/tokens', { name: 'narrow', rules: ['read:prod/*'] }, bearer(admin))
      ).body.secret;
      const scraper = (
        await api(required.url, 'POST', '/v1/tokens', { name: 'prometheus', rules: ['read:*/*'] }, bearer(admin))
      ).body.secret;
      assert.equal((await api(required.url, 'GET', '/metrics', undefined, bearer(narrow))).status, 403);
      const ok = await fetch(`${required.url}/metrics`, { headers: bearer(scraper) });
      assert.equal(ok.status, 200);
      assert.match(await ok.text(), /^# HELP /m);
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
    }
  });
});
