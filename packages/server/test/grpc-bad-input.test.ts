import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { LIMITS } from '@muster/api';
import { api, startServer, type RunningServer } from './harness.js';
import { call, rawClient, registryClient, rejectsWith, StreamReader, type RegistryClient } from './grpc-client.js';

const S = grpc.status;

interface Case {
  name: string;
  method: 'Register' | 'Deregister' | 'Heartbeat' | 'Discover';
  req: object;
  code: grpc.status;
  field?: string;
}

const ok = { service: 'orders', host: '10.0.0.1', port: 8080 };
const reg = (over: object) => ({ ...ok, ...over });
const manyKeys = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']));

/** Every wrong value answers the right status, with the field in the trailer and the message. */
function cases(ctx: { id: string; otherToken: string }): Case[] {
  const bad = (name: string, req: object, field: string): Case => ({
    name,
    method: 'Register',
    req,
    code: S.INVALID_ARGUMENT,
    field,
  });
  const disc = (name: string, req: object, code: grpc.status, field?: string): Case => ({
    name,
    method: 'Discover',
    req: { service: 'orders', ...req },
    code,
    ...(field ? { field } : {}),
  });
  return [
    bad('port 0 (proto3: not given)', reg({ port: 0 }), 'port'),
    bad('port 70000', reg({ port: 70000 }), 'port'),
    bad('port -1 (a uint32 of 4294967295)', reg({ port: -1 }), 'port'),
    bad('no host', { service: 'orders', port: 1 }, 'host'),
    bad('host with a space', reg({ host: 'my host' }), 'host'),
    bad('weight 20000', reg({ weight: 20000 }), 'weight'),
    bad('priority 2000000', reg({ priority: 2_000_000 }), 'priority'),
    bad('ttl 0', reg({ healthCheck: { ttl: 0 } }), 'healthCheck.ttl'),
    bad('ttl 61', reg({ healthCheck: { ttl: 61 } }), 'healthCheck.ttl'),
    bad('health check type tcp', reg({ healthCheck: { type: 'tcp' } }), 'healthCheck.type'),
    bad('65 metadata keys', reg({ metadata: manyKeys }), 'metadata'),
    bad(
      'a metadata key __proto__ (found by fuzz-grpc: it was dropped, the call answered OK)',
      reg({ metadata: JSON.parse('{"__proto__":"x"}') }),
      'metadata.__proto__',
    ),
    bad('a metadata value of 4097 characters', reg({ metadata: { k: 'x'.repeat(4097) } }), 'metadata.k'),
    bad('a location of 200 characters', reg({ location: { region: 'r'.repeat(200) } }), 'location.region'),
    bad('service name with a space', reg({ service: 'my svc' }), 'service'),
    bad('no service', { host: 'a', port: 1 }, 'service'),
    bad('service name of 129 characters', reg({ service: 's'.repeat(129) }), 'service'),
    bad('namespace with a slash', reg({ namespace: 'a/b' }), 'namespace'),
    bad('namespace ..', reg({ namespace: '..' }), 'namespace'),
    bad('instance id with a slash', reg({ id: 'a/b' }), 'id'),
    bad('instance id empty (optional, so given)', reg({ id: '' }), 'id'),
    bad('protocol of 200 characters', reg({ protocol: 'p'.repeat(200) }), 'protocol'),
    {
      name: 'unknown namespace',
      method: 'Register',
      req: reg({ namespace: 'nope' }),
      code: S.NOT_FOUND,
      field: 'namespace',
    },
    {
      name: 'a live instance re-registered without its token',
      method: 'Register',
      req: reg({ host: '10.9.0.1', port: 1 }),
      code: S.ALREADY_EXISTS,
      field: 'id',
    },
    {
      name: 'heartbeat without an id',
      method: 'Heartbeat',
      req: { heartbeatToken: 'x' },
      code: S.INVALID_ARGUMENT,
      field: 'id',
    },
    {
      name: 'heartbeat of an id that cannot exist',
      method: 'Heartbeat',
      req: { id: 'a/b', heartbeatToken: 'x' },
      code: S.INVALID_ARGUMENT,
      field: 'id',
    },
    {
      name: 'heartbeat without a token',
      method: 'Heartbeat',
      req: { id: ctx.id },
      code: S.UNAUTHENTICATED,
      field: 'heartbeatToken',
    },
    {
      name: "heartbeat with someone else's token",
      method: 'Heartbeat',
      req: { id: ctx.id, heartbeatToken: ctx.otherToken },
      code: S.PERMISSION_DENIED,
      field: 'heartbeatToken',
    },
    {
      name: "deregister with someone else's token",
      method: 'Deregister',
      req: { id: ctx.id, heartbeatToken: ctx.otherToken },
      code: S.PERMISSION_DENIED,
      field: 'heartbeatToken',
    },
    {
      name: 'deregister an unknown instance',
      method: 'Deregister',
      req: { id: 'nope', heartbeatToken: 'x' },
      code: S.NOT_FOUND,
      field: 'id',
    },
    disc('status "bogus"', { filter: { status: 'bogus' } }, S.INVALID_ARGUMENT, 'filter.status'),
    disc('isolated "maybe"', { filter: { isolated: 'maybe' } }, S.INVALID_ARGUMENT, 'filter.isolated'),
    disc('65 metadata filters', { filter: { metadata: manyKeys } }, S.INVALID_ARGUMENT, 'filter.metadata'),
    disc('wait_ms 120000', { revision: 1, waitMs: 120_000 }, S.INVALID_ARGUMENT, 'waitMs'),
    disc('unknown service', { service: 'nope' }, S.NOT_FOUND, 'service'),
    disc('unknown namespace', { namespace: 'nope' }, S.NOT_FOUND, 'namespace'),
    disc('service name in unicode', { service: '服务' }, S.INVALID_ARGUMENT, 'service'),
  ];
}

/** Everything a client can observe, to prove a refused request changed nothing. */
async function state(url: string): Promise<unknown> {
  const instances = (await api(url, 'GET', '/v1/namespaces/default/services/orders/instances?status=all&isolated=all'))
    .body;
  const events = (await api(url, 'GET', '/v1/events?limit=1000')).body;
  for (const i of instances.instances) delete i.lastHeartbeatAgeMs;
  return { instances, events, services: (await api(url, 'GET', '/v1/namespaces/default/services')).body };
}

describe('gRPC bad input: the right status and field, nothing written, the server unharmed', () => {
  let s: RunningServer;
  let c: RegistryClient;
  let raw: RegistryClient;
  let ctx: { id: string; token: string; otherToken: string };
  before(async () => {
    s = await startServer();
    c = registryClient(s.grpcAddress);
    raw = rawClient(s.grpcAddress);
    const a = await call(c, 'Register', { service: 'orders', host: '10.9.0.1', port: 1 });
    const b = await call(c, 'Register', { service: 'orders', host: '10.9.0.2', port: 1 });
    ctx = { id: a.instance.id, token: a.heartbeatToken, otherToken: b.heartbeatToken };
  });
  after(async () => {
    c.close();
    raw.close();
    await s.stop();
  });

  it('answers every case of the table and leaves the registry unchanged', async () => {
    const table = cases(ctx);
    const before = await state(s.url);
    for (const k of table) await rejectsWith(call(c, k.method, k.req), k.code, k.field, k.name);
    assert.deepEqual(await state(s.url), before);
    assert.ok((await call(c, 'Discover', { service: 'orders' })).instances.length === 2, 'still answers');
  });

  it('a request whose bytes do not decode is INVALID_ARGUMENT, on unary and streaming methods', async () => {
    // A length that runs past the end, a tag without its value, an unfinished varint.
    const garbage = [Buffer.from([0x0a, 0xff]), Buffer.from([0x08]), Buffer.from([0xff, 0xff, 0xff, 0xff])];
    for (const method of ['Register', 'Heartbeat', 'Discover']) {
      for (const bytes of garbage) {
        const e = await rejectsWith(
          call(raw, method, bytes),
          S.INVALID_ARGUMENT,
          undefined,
          `${method} ${bytes.toString('hex')}`,
        );
        assert.match(e.details, /^request message does not decode: /);
      }
    }
    const watch = new StreamReader(raw['Watch'](garbage[0]) as grpc.ClientReadableStream<Buffer>);
    assert.equal((await watch.end())?.code, S.INVALID_ARGUMENT);

    // A good batch, then garbage: the good one is answered, then the stream ends.
    const stream = raw['HeartbeatStream']() as grpc.ClientDuplexStream<Buffer, Buffer>;
    const reader = new StreamReader<Buffer>(stream);
    stream.write(Buffer.from([0x0a, 0x02, 0x0a, 0x00])); // heartbeats: [{id: ''}]
    stream.write(garbage[0]!);
    assert.ok(Buffer.isBuffer(await reader.next()), 'the batch before the garbage is answered');
    const err = await reader.end();
    assert.equal(err?.code, S.INVALID_ARGUMENT);
    assert.match(err!.details, /does not decode/);
    assert.ok((await call(c, 'Discover', { service: 'orders' })).instances.length === 2, 'still answers');
  });

  it('a heartbeat batch over the limit fails its items and the stream goes on', async () => {
    const stream = c['HeartbeatStream']() as grpc.ClientDuplexStream<object, any>;
    const reader = new StreamReader(stream);
    const n = LIMITS.heartbeatBatchMax + 1;
    stream.write({ heartbeats: Array.from({ length: n }, () => ({ id: ctx.id, heartbeatToken: ctx.token })) });
    stream.write({
      heartbeats: [
        { id: ctx.id, heartbeatToken: ctx.token },
        { id: '', heartbeatToken: 'x' },
      ],
    });
    const over = await reader.next();
    assert.equal(over.results.length, n);
    assert.ok(
      over.results.every(
        (r: any) => r.ok !== true && r.error.code === 'INVALID_ARGUMENT' && r.error.field === 'heartbeats',
      ),
      JSON.stringify(over.results[0]),
    );
    const next = await reader.next();
    assert.deepEqual(next.results[0], { id: ctx.id, ok: true });
    assert.deepEqual([next.results[1].error.code, next.results[1].error.field], ['INVALID_ARGUMENT', 'id']);
    stream.end();
    assert.equal(await reader.end(), undefined);
  });
});
