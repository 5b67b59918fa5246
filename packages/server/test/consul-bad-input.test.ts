import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { api, startServer, type RunningServer } from './harness.js';
import type { Muster } from '../src/muster.js';

interface Case {
  what: string;
  method: string;
  path: string;
  body?: string;
  contentType?: string;
  status: number;
  /** A piece of the plain-text answer. */
  says: string;
}

const reg = (o: Record<string, unknown>) => JSON.stringify({ Name: 'bad', ID: 'bad-1', Port: 9000, ...o });

const CASES: Case[] = [
  {
    what: 'malformed JSON',
    method: 'PUT',
    path: '/v1/agent/service/register',
    body: '{"Name": ',
    status: 400,
    says: 'JSON',
  },
  {
    what: 'an array body',
    method: 'PUT',
    path: '/v1/agent/service/register',
    body: '[]',
    status: 400,
    says: 'JSON object',
  },
  {
    what: 'no Name',
    method: 'PUT',
    path: '/v1/agent/service/register',
    body: '{"Port": 1}',
    status: 400,
    says: 'Name',
  },
  {
    what: 'Name a number',
    method: 'PUT',
    path: '/v1/agent/service/register',
    body: reg({ Name: 5 }),
    status: 400,
    says: 'Name',
  },
  {
    what: 'a Name Muster cannot keep',
    method: 'PUT',
    path: '/v1/agent/service/register',
    body: reg({ Name: 'a/b' }),
    status: 400,
    says: 'Name',
  },
  {
    what: 'Port a string',
    method: 'PUT',
    path: '/v1/agent/service/register',
    body: reg({ Port: '80' }),
    status: 400,
    says: 'Port',
  },
  {
    what: 'Port out of range',
    method: 'PUT',
    path: '/v1/agent/service/register',
    body: reg({ Port: 70000 }),
    status: 400,
    says: 'Port',
  },
  {
    what: 'Tags not strings',
    method: 'PUT',
    path: '/v1/agent/service/register',
    body: reg({ Tags: [1] }),
    status: 400,
    says: 'Tags',
  },
  {
    what: 'Meta not strings',
    method: 'PUT',
    path: '/v1/agent/service/register',
    body: reg({ Meta: { a: 1 } }),
    status: 400,
    says: 'Meta.a',
  },
  {
    what: "Meta under the adapter's prefix",
    method: 'PUT',
    path: '/v1/agent/service/register',
    body: reg({ Meta: { 'consul.id': 'x' } }),
    status: 400,
    says: 'consul.',
  },
  {
    what: 'an HTTP check',
    method: 'PUT',
    path: '/v1/agent/service/register',
    body: reg({ Check: { HTTP: 'http://127.0.0.1:9000/health', Interval: '10s' } }),
    status: 400,
    says: 'active check',
  },
  {
    what: 'a TCP check',
    method: 'PUT',
    path: '/v1/agent/service/register',
    body: reg({ Checks: [{ TCP: '127.0.0.1:9000', Interval: '10s' }] }),
    status: 400,
    says: 'active check',
  },
  {
    what: 'a TTL that is no duration',
    method: 'PUT',
    path: '/v1/agent/service/register',
    body: reg({ Check: { TTL: '10 seconds' } }),
    status: 400,
    says: 'Check.TTL',
  },
  {
    what: 'a TTL of a number',
    method: 'PUT',
    path: '/v1/agent/service/register',
    body: reg({ Check: { TTL: 10 } }),
    status: 400,
    says: 'Check.TTL',
  },
  {
    what: 'a bad DeregisterCriticalServiceAfter',
    method: 'PUT',
    path: '/v1/agent/service/register',
    body: reg({ Check: { TTL: '10s', DeregisterCriticalServiceAfter: '1y' } }),
    status: 400,
    says: 'DeregisterCriticalServiceAfter',
  },
  {
    what: 'a bad initial Status',
    method: 'PUT',
    path: '/v1/agent/service/register',
    body: reg({ Check: { TTL: '10s', Status: 'fine' } }),
    status: 400,
    says: 'Status',
  },
  {
    what: 'a huge body',
    method: 'PUT',
    path: '/v1/agent/service/register',
    body: reg({ Meta: { big: 'x'.repeat(200_000) } }),
    status: 413,
    says: '',
  },
  {
    what: 'deep nesting',
    method: 'PUT',
    path: '/v1/agent/service/register',
    body: '['.repeat(100) + ']'.repeat(100),
    status: 400,
    says: '',
  },
  {
    what: 'deregister of an unknown ID',
    method: 'PUT',
    path: '/v1/agent/service/deregister/nobody',
    status: 404,
    says: 'Unknown service ID',
  },
  {
    what: 'pass of an unknown check',
    method: 'PUT',
    path: '/v1/agent/check/pass/service:nobody',
    status: 404,
    says: 'Unknown check ID',
  },
  {
    what: 'fail of an unknown check',
    method: 'PUT',
    path: '/v1/agent/check/fail/nothing',
    status: 404,
    says: 'Unknown check ID',
  },
  {
    what: 'an update with a bad Status',
    method: 'PUT',
    path: '/v1/agent/check/update/service:nobody',
    body: '{"Status": "ok"}',
    status: 400,
    says: 'Status',
  },
  {
    what: 'maintenance of an unknown ID',
    method: 'PUT',
    path: '/v1/agent/service/maintenance/nobody?enable=true',
    status: 404,
    says: 'Unknown service ID',
  },
  { what: 'a bad wait', method: 'GET', path: '/v1/health/service/web?index=3&wait=forever', status: 400, says: 'wait' },
  {
    what: 'a wait with no unit',
    method: 'GET',
    path: '/v1/catalog/service/web?index=3&wait=10',
    status: 400,
    says: 'wait',
  },
  { what: 'a negative index', method: 'GET', path: '/v1/health/service/web?index=-1', status: 400, says: 'index' },
  { what: 'KV', method: 'GET', path: '/v1/kv/config/app', status: 404, says: 'KV' },
  { what: 'a KV write', method: 'PUT', path: '/v1/kv/config/app', body: 'x', status: 404, says: 'is not served' },
  { what: 'sessions', method: 'PUT', path: '/v1/session/create', status: 404, says: 'is not served' },
];

/** Bad input over raw HTTP: a 4xx in Consul's plain text, never a 5xx, and nothing written. */
describe('Consul API bad input', () => {
  let server: RunningServer & { muster: Muster };
  let base: string;

  before(async () => {
    server = await startServer({ 'consul.port': 0 });
    base = `http://${server.muster.consulAddress}`;
  });
  after(() => server.stop());

  for (const c of CASES)
    it(`refuses ${c.what}: ${c.status}`, async () => {
      const res = await fetch(base + c.path, {
        method: c.method,
        ...(c.body !== undefined
          ? { body: c.body, headers: { 'content-type': c.contentType ?? 'application/json' } }
          : {}),
      });
      const text = await res.text();
      assert.equal(res.status, c.status, text);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
      assert.ok(text.includes(c.says), text);
    });

  it('wrote nothing', async () => {
    assert.deepEqual(await (await fetch(`${base}/v1/agent/services`)).json(), {});
    const services = await api(server.url, 'GET', '/v1/namespaces/default/services');
    assert.deepEqual(services.body.services, []);
  });

  it('refuses to touch an instance registered through Muster own API', async () => {
    const r = await api(server.url, 'POST', '/v1/namespaces/default/services/native/instances', {
      id: 'native-1',
      host: '127.0.0.1',
      port: 9001,
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const res = await fetch(`${base}/v1/agent/service/deregister/native-1`, { method: 'PUT' });
    assert.equal(res.status, 403);
    const again = await fetch(`${base}/v1/agent/service/register`, {
      method: 'PUT',
      body: JSON.stringify({ Name: 'native', ID: 'native-1', Port: 9002 }),
    });
    assert.equal(again.status, 403);
    assert.equal((await api(server.url, 'GET', '/v1/instances/native-1')).body.port, 9001);
  });
});
