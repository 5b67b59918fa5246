import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { api, startServer, type RunningServer } from './harness.js';
import { registryClient, type RegistryClient } from './grpc-client.js';

/**
 * The authorization matrix: every route and gRPC method, called by each kind of caller (none, a
 * token that does not exist, a revoked one, a read-only one, one for another namespace, one for
 * another service of the same namespace, the right one). Each answers 401 or 403 as it should,
 * the right token succeeds, and a refused call leaves the registry exactly as it was.
 */

type Who = 'none' | 'wrong' | 'revoked' | 'readOnly' | 'otherNamespace' | 'otherService' | 'right';
const CALLERS: Who[] = ['none', 'wrong', 'revoked', 'readOnly', 'otherNamespace', 'otherService', 'right'];

/** A status as HTTP says it; gRPC codes are mapped to the same numbers. */
type Outcome = number;
const GRPC_AS_HTTP: Partial<Record<grpc.status, number>> = {
  [grpc.status.OK]: 200,
  [grpc.status.UNAUTHENTICATED]: 401,
  [grpc.status.PERMISSION_DENIED]: 403,
  [grpc.status.NOT_FOUND]: 404,
  [grpc.status.INVALID_ARGUMENT]: 400,
  [grpc.status.ALREADY_EXISTS]: 409,
};

interface Case {
  name: string;
  /** Which token is "right" for this route: the least one that should succeed. */
  right: 'admin' | 'write' | 'read';
  /** Expected outcome per caller; callers not listed: 401 for none/wrong/revoked, 403 for the others, 2xx for right. */
  expect?: Partial<Record<Who, Outcome>>;
  /** Makes what the call needs (with the admin token), before the state is snapshot. */
  prepare?: () => Promise<Record<string, string>>;
  run: (token: string | undefined, ctx: Record<string, string>) => Promise<Outcome>;
}

let server: RunningServer;
let grpcClient: RegistryClient;
const tokens = {} as Record<Exclude<Who, 'none'> | 'admin' | 'write' | 'read', string>;
let serial = 0;
const uniq = (p: string) => `${p}-${++serial}`;

const auth = (t: string | undefined): Record<string, string> =>
  t === undefined ? {} : { authorization: `Bearer ${t}` };
async function http(
  method: string,
  url: string,
  token: string | undefined,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  return api(server.url, method, url, body, auth(token));
}
const status = async (p: Promise<{ status: number }>) => (await p).status;

function meta(token: string | undefined): grpc.Metadata {
  const m = new grpc.Metadata();
  if (token !== undefined) m.set('authorization', `Bearer ${token}`);
  return m;
}
function grpcUnary(method: string, req: object, token: string | undefined): Promise<Outcome> {
  return new Promise((resolve) => {
    grpcClient[method](req, meta(token), { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null) =>
      resolve(err ? (GRPC_AS_HTTP[err.code] ?? 1000 + err.code) : 200),
    );
  });
}
function grpcWatch(req: object, token: string | undefined): Promise<Outcome> {
  return new Promise((resolve) => {
    const call = grpcClient['Watch'](req, meta(token));
    call.on('data', () => {
      resolve(200);
      call.cancel();
    });
    call.on('error', (err: grpc.ServiceError) =>
      resolve(err.code === grpc.status.CANCELLED ? 200 : (GRPC_AS_HTTP[err.code] ?? 1000 + err.code)),
    );
  });
}
/** One heartbeat through HeartbeatStream with no instance token: the item's result (or the stream's refusal). */
function grpcStreamBeat(id: string, token: string | undefined): Promise<Outcome> {
  return new Promise((resolve) => {
    const call = grpcClient['HeartbeatStream'](meta(token));
    call.on('data', (msg: { results: Array<{ ok: boolean; error?: { code: string } }> }) => {
      const r = msg.results[0]!;
      resolve(
        r.ok
          ? 200
          : (({ UNAUTHENTICATED: 401, PERMISSION_DENIED: 403 } as Record<string, number>)[r.error!.code] ?? 999),
      );
      call.end();
    });
    call.on('error', (err: grpc.ServiceError) => resolve(GRPC_AS_HTTP[err.code] ?? 1000 + err.code));
    call.write({ heartbeats: [{ id }] });
  });
}
/** An SSE watch: the status of its answer, then it is closed. */
async function sse(url: string, token: string | undefined): Promise<Outcome> {
  const ctl = new AbortController();
  const res = await fetch(server.url + url, { headers: auth(token), signal: ctl.signal });
  ctl.abort();
  return res.status;
}

/** An instance of prod/orders registered with the write token: its id and heartbeatToken. ttl 60 s: none expires during the run, which would change the snapshot. */
async function instance(): Promise<Record<string, string>> {
  const r = await http('POST', '/v1/namespaces/prod/services/orders/instances', tokens.write, {
    host: '10.1.0.1',
    port: 1000 + ++serial,
    healthCheck: { ttl: 60 },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return { id: r.body.instance.id, hb: r.body.heartbeatToken };
}

/** Everything a refused call could have changed, read with the admin token. */
async function snapshot(): Promise<unknown> {
  const read = async (url: string) => {
    const r = await http('GET', url, tokens.admin);
    assert.equal(r.status, 200, `${url}: ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const strip = (d: { instances: Array<Record<string, unknown>> }) => ({
    ...d,
    instances: d.instances.map(({ lastHeartbeatAgeMs: _age, ...i }) => i),
  });
  const namespaces = await read('/v1/namespaces');
  const out: Record<string, unknown> = { namespaces, tokens: await read('/v1/tokens?revoked=true') };
  for (const ns of namespaces.namespaces as Array<{ name: string }>) {
    const services = await read(`/v1/namespaces/${ns.name}/services?limit=1000`);
    out[`services ${ns.name}`] = services;
    for (const s of services.services as Array<{ name: string }>) {
      out[`instances ${ns.name}/${s.name}`] = strip(
        await read(`/v1/namespaces/${ns.name}/services/${s.name}/instances?status=all&isolated=all`),
      );
    }
  }
  return out;
}

const CASES: Case[] = [
  // ---- namespaces
  {
    name: 'POST /v1/namespaces',
    right: 'admin',
    run: (t) => status(http('POST', '/v1/namespaces', t, { name: uniq('ns') })),
  },
  {
    name: 'GET /v1/namespaces',
    right: 'read',
    expect: { otherNamespace: 200, otherService: 200 },
    run: (t) => status(http('GET', '/v1/namespaces', t)),
  },
  {
    name: 'GET /v1/namespaces/prod',
    right: 'read',
    expect: { otherService: 200 },
    run: (t) => status(http('GET', '/v1/namespaces/prod', t)),
  },
  {
    name: 'DELETE /v1/namespaces/:ns',
    right: 'admin',
    prepare: async () => {
      const name = uniq('gone');
      assert.equal((await http('POST', '/v1/namespaces', tokens.admin, { name })).status, 201);
      return { name };
    },
    run: (t, c) => status(http('DELETE', `/v1/namespaces/${c['name']}`, t)),
  },
  // ---- services
  {
    name: 'POST /v1/namespaces/prod/services',
    right: 'admin',
    run: (t) => status(http('POST', '/v1/namespaces/prod/services', t, { name: uniq('svc') })),
  },
  {
    name: 'GET /v1/namespaces/prod/services',
    right: 'read',
    expect: { otherService: 200 },
    run: (t) => status(http('GET', '/v1/namespaces/prod/services', t)),
  },
  {
    name: 'GET /v1/namespaces/prod/services/orders',
    right: 'read',
    run: (t) => status(http('GET', '/v1/namespaces/prod/services/orders', t)),
  },
  {
    name: 'PATCH /v1/namespaces/prod/services/orders',
    right: 'admin',
    run: (t) => status(http('PATCH', '/v1/namespaces/prod/services/orders', t, { comment: uniq('c') })),
  },
  {
    name: 'DELETE /v1/namespaces/prod/services/:svc',
    right: 'admin',
    prepare: async () => {
      const name = uniq('old');
      assert.equal((await http('POST', '/v1/namespaces/prod/services', tokens.admin, { name })).status, 201);
      return { name };
    },
    run: (t, c) => status(http('DELETE', `/v1/namespaces/prod/services/${c['name']}`, t)),
  },
  // ---- client APIs (auth.clients: required)
  {
    name: 'POST register prod/orders',
    right: 'write',
    run: (t) =>
      status(
        http('POST', '/v1/namespaces/prod/services/orders/instances', t, {
          host: '10.2.0.1',
          port: 2000 + ++serial,
          healthCheck: { ttl: 60 },
        }),
      ),
  },
  {
    name: 'GET discover prod/orders',
    right: 'read',
    run: (t) => status(http('GET', '/v1/namespaces/prod/services/orders/instances', t)),
  },
  { name: 'GET /v1/watch prod/orders', right: 'read', run: (t) => sse('/v1/watch?namespace=prod&service=orders', t) },
  {
    name: 'GET /v1/instances/:id',
    right: 'read',
    prepare: instance,
    run: (t, c) => status(http('GET', `/v1/instances/${c['id']}`, t)),
  },
  {
    name: 'PATCH /v1/instances/:id isolate',
    right: 'write',
    prepare: instance,
    run: (t, c) => status(http('PATCH', `/v1/instances/${c['id']}`, t, { isolate: true })),
  },
  {
    name: 'PATCH /v1/instances/:id weight',
    right: 'write',
    prepare: instance,
    run: (t, c) => status(http('PATCH', `/v1/instances/${c['id']}`, t, { weight: 7 })),
  },
  {
    name: 'DELETE /v1/instances/:id',
    right: 'write',
    prepare: instance,
    run: (t, c) => status(http('DELETE', `/v1/instances/${c['id']}`, t)),
  },
  {
    name: 'PUT /v1/instances/:id/heartbeat',
    right: 'write',
    prepare: instance,
    run: (t, c) => status(http('PUT', `/v1/instances/${c['id']}/heartbeat`, t)),
  },
  // ---- events, cluster, tokens
  {
    name: 'GET /v1/events?namespace=prod',
    right: 'read',
    run: (t) => status(http('GET', '/v1/events?namespace=prod', t)),
  },
  { name: 'GET /v1/events?type=audit', right: 'admin', run: (t) => status(http('GET', '/v1/events?type=audit', t)) },
  { name: 'GET /v1/cluster', right: 'admin', run: (t) => status(http('GET', '/v1/cluster', t)) },
  {
    name: 'POST /v1/tokens',
    right: 'admin',
    run: (t) => status(http('POST', '/v1/tokens', t, { name: uniq('t'), rules: ['read:prod/*'] })),
  },
  { name: 'GET /v1/tokens', right: 'admin', run: (t) => status(http('GET', '/v1/tokens', t)) },
  {
    name: 'DELETE /v1/tokens/:id',
    right: 'admin',
    prepare: async () => ({
      id: (await http('POST', '/v1/tokens', tokens.admin, { name: uniq('victim'), rules: ['read:prod/*'] })).body.token
        .id,
    }),
    run: (t, c) => status(http('DELETE', `/v1/tokens/${c['id']}`, t)),
  },
  // ---- gRPC
  {
    name: 'grpc Register prod/orders',
    right: 'write',
    run: (t) =>
      grpcUnary(
        'Register',
        {
          namespace: 'prod',
          service: 'orders',
          host: '10.3.0.1',
          port: 3000 + ++serial,
          healthCheck: { type: 'heartbeat', ttl: 60 },
        },
        t,
      ),
  },
  {
    name: 'grpc Deregister',
    right: 'write',
    prepare: instance,
    run: (t, c) => grpcUnary('Deregister', { id: c['id'] }, t),
  },
  {
    name: 'grpc Heartbeat',
    right: 'write',
    prepare: instance,
    run: (t, c) => grpcUnary('Heartbeat', { id: c['id'] }, t),
  },
  { name: 'grpc HeartbeatStream', right: 'write', prepare: instance, run: (t, c) => grpcStreamBeat(c['id']!, t) },
  {
    name: 'grpc Discover prod/orders',
    right: 'read',
    run: (t) => grpcUnary('Discover', { namespace: 'prod', service: 'orders' }, t),
  },
  { name: 'grpc Watch prod/orders', right: 'read', run: (t) => grpcWatch({ namespace: 'prod', service: 'orders' }, t) },
];

function expected(c: Case, who: Who): Outcome | 'ok' {
  const given = c.expect?.[who];
  if (given !== undefined) return given;
  if (who === 'none' || who === 'wrong' || who === 'revoked') return 401;
  if (who === 'right') return 'ok';
  if (who === 'readOnly' && c.right === 'read') return 'ok';
  return 403;
}

describe('authorization matrix: every route and gRPC method x every kind of caller', () => {
  before(async () => {
    server = await startServer({ 'auth.enabled': true, 'auth.clients': 'required' });
    grpcClient = registryClient(server.grpcAddress);
    tokens.admin = fs.readFileSync(path.join(server.dataDir, 'admin.token'), 'utf8').trim();
    const make = async (name: string, rules: string[]) => {
      const r = await http('POST', '/v1/tokens', tokens.admin, { name, rules });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body.secret as string;
    };
    for (const ns of ['prod', 'staging'])
      assert.equal((await http('POST', '/v1/namespaces', tokens.admin, { name: ns })).status, 201);
    for (const svc of ['orders', 'payments'])
      assert.equal((await http('POST', '/v1/namespaces/prod/services', tokens.admin, { name: svc })).status, 201);
    tokens.write = await make('orders-writer', ['write:prod/orders']);
    tokens.read = await make('prod-reader', ['read:prod/*']);
    tokens.readOnly = tokens.read;
    tokens.otherNamespace = await make('staging-admin', ['admin:staging/*']);
    tokens.otherService = await make('payments-writer', ['write:prod/payments']);
    tokens.revoked = await make('revoked', ['admin:*/*']);
    assert.equal((await http('DELETE', '/v1/tokens/revoked', tokens.admin)).status, 200);
    // The shape of a token, an id that was never issued.
    tokens.wrong = `mst_abcdefabcdef_${'x'.repeat(43)}`;
  });
  after(async () => {
    grpcClient?.close();
    await server?.stop();
  });

  it(`answers 401, 403 or success for all ${CASES.length * CALLERS.length} cases, and a refused case changes nothing`, async () => {
    assert.ok(CASES.length * CALLERS.length >= 60);
    const failures: string[] = [];
    let refused = 0;
    for (const c of CASES) {
      for (const who of CALLERS) {
        const ctx = (await c.prepare?.()) ?? {};
        const token = who === 'none' ? undefined : who === 'right' ? tokens[c.right] : tokens[who];
        const want = expected(c, who);
        const before = want === 'ok' ? undefined : await snapshot();
        const got = await c.run(token, ctx);
        const ok = want === 'ok' ? got >= 200 && got < 300 : got === want;
        if (!ok) failures.push(`${c.name} as ${who}: expected ${want}, got ${got}`);
        if (before !== undefined) {
          refused++;
          try {
            assert.deepEqual(await snapshot(), before);
          } catch {
            failures.push(`${c.name} as ${who}: refused, yet the registry changed`);
          }
        }
      }
    }
    assert.deepEqual(failures, []);
    assert.ok(refused >= 100, `refused cases: ${refused}`);
  });
});
