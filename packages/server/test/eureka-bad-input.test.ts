import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { api, startServer, type RunningServer } from './harness.js';

/** Bad input on the Eureka API: each is a 4xx, never a 5xx, and writes nothing. */

const ok = { app: 'GOOD', instanceId: 'good-1', hostName: 'good.local', ipAddr: '127.0.0.1', port: 8080 };
const withInstance = (patch: Record<string, unknown>) => JSON.stringify({ instance: { ...ok, ...patch } });
const json = { 'content-type': 'application/json' };
const xml = { 'content-type': 'application/xml' };

const CASES: Array<{
  what: string;
  method: string;
  path: string;
  body?: string;
  headers?: Record<string, string>;
  status: number;
}> = [
  {
    what: 'malformed JSON',
    method: 'POST',
    path: '/eureka/apps/GOOD',
    body: '{"instance": {',
    headers: json,
    status: 400,
  },
  { what: 'an array body', method: 'POST', path: '/eureka/apps/GOOD', body: '[]', headers: json, status: 400 },
  { what: 'an empty body', method: 'POST', path: '/eureka/apps/GOOD', body: '', headers: json, status: 400 },
  {
    what: 'instance not an object',
    method: 'POST',
    path: '/eureka/apps/GOOD',
    body: '{"instance": "x"}',
    headers: json,
    status: 400,
  },
  {
    what: 'port as text',
    method: 'POST',
    path: '/eureka/apps/GOOD',
    body: withInstance({ port: 'http' }),
    headers: json,
    status: 400,
  },
  {
    what: 'port out of range',
    method: 'POST',
    path: '/eureka/apps/GOOD',
    body: withInstance({ port: { $: 70000, '@enabled': 'true' } }),
    headers: json,
    status: 400,
  },
  {
    what: 'port.@enabled not a boolean',
    method: 'POST',
    path: '/eureka/apps/GOOD',
    body: withInstance({ port: { $: 80, '@enabled': 'maybe' } }),
    headers: json,
    status: 400,
  },
  {
    what: 'no port enabled',
    method: 'POST',
    path: '/eureka/apps/GOOD',
    body: withInstance({ port: { $: 80, '@enabled': 'false' } }),
    headers: json,
    status: 400,
  },
  {
    what: 'hostName a number',
    method: 'POST',
    path: '/eureka/apps/GOOD',
    body: withInstance({ hostName: 12, ipAddr: undefined }),
    headers: json,
    status: 400,
  },
  {
    what: 'no address',
    method: 'POST',
    path: '/eureka/apps/GOOD',
    body: withInstance({ hostName: undefined, ipAddr: undefined }),
    headers: json,
    status: 400,
  },
  {
    what: 'no app',
    method: 'POST',
    path: '/eureka/apps/GOOD',
    body: withInstance({ app: undefined }),
    headers: json,
    status: 400,
  },
  {
    what: 'an unknown status',
    method: 'POST',
    path: '/eureka/apps/GOOD',
    body: withInstance({ status: 'HAPPY' }),
    headers: json,
    status: 400,
  },
  {
    what: 'metadata of numbers',
    method: 'POST',
    path: '/eureka/apps/GOOD',
    body: withInstance({ metadata: { a: 1 } }),
    headers: json,
    status: 400,
  },
  {
    what: 'a negative lease',
    method: 'POST',
    path: '/eureka/apps/GOOD',
    body: withInstance({ leaseInfo: { durationInSecs: -1 } }),
    headers: json,
    status: 400,
  },
  {
    what: 'an invalid host',
    method: 'POST',
    path: '/eureka/apps/GOOD',
    body: withInstance({ ipAddr: 'no such host!' }),
    headers: json,
    status: 400,
  },
  {
    what: 'an app name Muster cannot hold',
    method: 'POST',
    path: '/eureka/apps/B%40D',
    body: withInstance({}),
    headers: json,
    status: 400,
  },
  {
    what: 'JSON nested too deep',
    method: 'POST',
    path: '/eureka/apps/GOOD',
    body: '{"instance":' + '['.repeat(100) + ']'.repeat(100) + '}',
    headers: json,
    status: 400,
  },
  {
    what: 'malformed XML',
    method: 'POST',
    path: '/eureka/apps/GOOD',
    body: '<instance><app>GOOD</instance>',
    headers: xml,
    status: 400,
  },
  {
    what: 'XML with entities (a DOCTYPE)',
    method: 'POST',
    path: '/eureka/apps/GOOD',
    body: '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><instance><app>&lol2;</app></instance>',
    headers: xml,
    status: 400,
  },
  {
    what: 'XML with a port that is no number',
    method: 'POST',
    path: '/eureka/apps/GOOD',
    body: '<instance><app>GOOD</app><ipAddr>127.0.0.1</ipAddr><port enabled="true">eighty</port></instance>',
    headers: xml,
    status: 400,
  },
  {
    what: 'a huge body',
    method: 'POST',
    path: '/eureka/apps/GOOD',
    body: withInstance({ metadata: { big: 'x'.repeat(100_000) } }),
    headers: json,
    status: 413,
  },
  {
    what: 'a plain-text body',
    method: 'POST',
    path: '/eureka/apps/GOOD',
    body: 'instance',
    headers: { 'content-type': 'text/plain' },
    status: 400,
  },
  {
    what: 'a body of a type not taken',
    method: 'POST',
    path: '/eureka/apps/GOOD',
    body: 'instance',
    headers: { 'content-type': 'application/octet-stream' },
    status: 415,
  },
  { what: 'renew of an unknown app', method: 'PUT', path: '/eureka/apps/NOPE/x', status: 404 },
  {
    what: 'renew of an unknown instance',
    method: 'PUT',
    path: '/eureka/v2/apps/NOPE/x?status=UP&lastDirtyTimestamp=1',
    status: 404,
  },
  { what: 'cancel of an unknown instance', method: 'DELETE', path: '/eureka/apps/NOPE/x', status: 404 },
  { what: 'an unknown app', method: 'GET', path: '/eureka/apps/NOPE', status: 404 },
  { what: 'an unknown instance', method: 'GET', path: '/eureka/apps/NOPE/x', status: 404 },
  {
    what: 'a status override of an unknown instance',
    method: 'PUT',
    path: '/eureka/apps/NOPE/x/status?value=OUT_OF_SERVICE',
    status: 404,
  },
  {
    what: 'a metadata update of an unknown instance',
    method: 'PUT',
    path: '/eureka/apps/NOPE/x/metadata?a=b',
    status: 404,
  },
];

describe('Eureka API: bad input', () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  for (const c of CASES) {
    it(`${c.what}: ${c.status}`, async () => {
      const res = await fetch(server.url + c.path, {
        method: c.method,
        ...(c.body !== undefined ? { body: c.body } : {}),
        headers: c.headers ?? {},
      });
      await res.text();
      assert.equal(res.status, c.status);
    });
  }

  it('refuses a wrong status value and a metadata update of its own keys on a real instance', async () => {
    assert.equal(
      (await api(server.url, 'POST', '/eureka/apps/REAL', { instance: { ...ok, app: 'REAL', instanceId: 'real-1' } }))
        .status,
      204,
    );
    assert.equal((await api(server.url, 'PUT', '/eureka/apps/REAL/real-1/status?value=SLEEPY')).status, 400);
    assert.equal((await api(server.url, 'PUT', '/eureka/apps/REAL/real-1/status')).status, 400);
    assert.equal(
      (await api(server.url, 'PUT', '/eureka/apps/REAL/real-1/metadata?eureka.instanceId=other')).status,
      400,
    );
    assert.equal((await api(server.url, 'PUT', '/eureka/apps/REAL/real-1/metadata')).status, 400);
    const after = await api(server.url, 'GET', '/eureka/apps/REAL/real-1');
    assert.equal(after.body.instance.status, 'UP');
    assert.equal(after.body.instance.instanceId, 'real-1');
    assert.equal((await api(server.url, 'DELETE', '/eureka/apps/REAL/real-1')).status, 200);
  });

  it('keeps an instanceId Muster cannot use as an id, renewable by it', async () => {
    const id = 'host/with@odd#chars';
    const path = `/eureka/apps/ODD/${encodeURIComponent(id)}`;
    assert.equal(
      (await api(server.url, 'POST', '/eureka/apps/ODD', { instance: { ...ok, app: 'ODD', instanceId: id } })).status,
      204,
    );
    assert.equal((await api(server.url, 'PUT', path)).status, 200);
    assert.equal((await api(server.url, 'GET', path)).body.instance.instanceId, id);
    assert.equal((await api(server.url, 'DELETE', path)).status, 200);
  });

  it('wrote nothing for any refused request', async () => {
    const apps = await api(server.url, 'GET', '/eureka/apps', undefined, { accept: 'application/json' });
    assert.deepEqual(apps.body.applications.application, []);
    const services = await api(server.url, 'GET', '/v1/namespaces/default/services');
    assert.deepEqual(
      services.body.services.map((s: { name: string }) => s.name).sort(),
      ['odd', 'real'],
      'only the two services the good registrations made',
    );
    const events = await api(server.url, 'GET', '/v1/events?namespace=default&limit=1000');
    const registered = events.body.events.filter((e: { type: string }) => e.type === 'instance.registered');
    assert.equal(registered.length, 2);
  });
});
