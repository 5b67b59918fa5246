import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { performance } from 'node:perf_hooks';
import { MusterError, type ErrorCode } from '@muster/api';
import type { Muster } from '../src/muster.js';
import type { Grant } from '../src/pipeline/grant.js';
import type { Inbound } from '../src/pipeline/inbound.js';
import type { Operation } from '../src/pipeline/operation.js';
import { startAuthServer } from './auth-server.js';
import { api, bearer, waitFor } from './harness.js';

/**
 * "tiny", a protocol of its own as a compat adapter would have one: `GET /tiny/see/NS/SVC?have=R&hold=MS`
 * (a read, a long-poll with have and hold), `POST /tiny/join/NS/SVC?host=H&port=P` (a registration),
 * `POST /tiny/make/NS` (management: creates a namespace); credentials in `x-tiny-auth`. It declares
 * what each operation is and hands requests to the pipeline: it never calls the guard, the limits
 * or the watch hub, and still gets auth, the write limits, the audit trail and long-polls.
 */
interface TinyRequest {
  verb: string;
  namespace: string;
  service: string;
  query: URLSearchParams;
}

const OPERATIONS: Record<string, Operation<TinyRequest>> = {
  see: {
    kind: 'read',
    on: (r) => [r.namespace, r.service],
    parks: (r) => ({
      namespace: r.namespace,
      service: r.service,
      revision: r.query.has('have') ? Number(r.query.get('have')) : undefined,
      waitMs: Number(r.query.get('hold') ?? 0),
    }),
  },
  join: { kind: 'register', on: (r) => [r.namespace, r.service] },
  make: { kind: 'manage', writes: true, rights: (r) => [{ level: 'admin', on: [r.namespace, '*'] }] },
};

/** The adapter's one table from error code to its status. */
const STATUS: Record<ErrorCode, number> = {
  INVALID_ARGUMENT: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  FAILED_PRECONDITION: 409,
  RESOURCE_EXHAUSTED: 429,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
  INTERNAL: 500,
};

function startTiny(m: Muster): Promise<http.Server> {
  const { pipeline, naming } = m;
  const handle = async (r: TinyRequest, grant: Grant): Promise<unknown> => {
    switch (r.verb) {
      case 'see': {
        const entry = naming.resolveService(r.namespace, r.service);
        return { revision: entry.rec.revision, instances: entry.instances.size };
      }
      case 'join': {
        const input = { host: r.query.get('host'), port: Number(r.query.get('port')) };
        const res = await naming.register(
          r.namespace,
          r.service,
          input,
          { ...grant.credentials(), ownerOnly: grant.ownerOnly, caller: grant.client },
          grant.context(),
        );
        return { id: res.instance.id };
      }
      default:
        return naming.createNamespace({ name: r.namespace }, grant.context());
    }
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://tiny');
    const [, , verb = '', namespace = '', service = ''] = url.pathname.split('/');
    const op = OPERATIONS[verb];
    const inbound: Inbound = {
      authorization: req.headers['x-tiny-auth'],
      address: (req.socket.remoteAddress ?? '').replace(/^::ffff:/, ''),
      receivedAt: performance.now(),
      gone: () => res.destroyed,
      onGone: (fn) => {
        res.once('close', fn);
        return () => res.off('close', fn);
      },
    };
    const answer = (status: number, body: unknown) =>
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (!op) return answer(404, { error: 'no such verb' });
    const r: TinyRequest = { verb, namespace, service, query: url.searchParams };
    pipeline
      .run(op, inbound, r, handle, () => ({ action: `tiny ${verb}`, namespace, ...(service ? { service } : {}) }))
      .then(
        (body) => answer(200, body),
        (err: unknown) => {
          const e = err instanceof MusterError ? err : new MusterError('INTERNAL', String(err));
          answer(STATUS[e.code], { code: e.code, message: e.message });
        },
      );
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function tiny(
  server: http.Server,
  method: string,
  path: string,
  token?: string,
): Promise<{ status: number; body: any }> {
  const { port } = server.address() as AddressInfo;
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: token === undefined ? {} : { 'x-tiny-auth': `Bearer ${token}` },
  });
  return { status: res.status, body: await res.json() };
}

const WRONG_TOKEN = `mst_000000000bad_${'z'.repeat(43)}`;

describe('a protocol adapter that only declares its operations gets auth, limits, audit and long-poll from the pipeline', () => {
  let s: Awaited<ReturnType<typeof startAuthServer>>;
  let t: http.Server;
  before(async () => {
    // Client APIs need a token here, so that a read can be refused; two writes a second per address.
    s = await startAuthServer({ 'auth.clients': 'required', 'limits.writesPerAddress': 2 });
    t = await startTiny(s.muster);
  });
  after(async () => {
    await new Promise((r) => t.close(r));
    await s.stop();
  });

  const audit = async () =>
    (await api(s.url, 'GET', '/v1/events?type=audit&limit=1000&order=asc', undefined, bearer(s.admin))).body
      .events as Array<{ namespace: string; service?: string; detail: Record<string, unknown> }>;

  it('refuses a caller without a token and one with a wrong token, and audits both', async () => {
    const none = await tiny(t, 'GET', '/tiny/see/default/nothing');
    assert.deepEqual([none.status, none.body.code], [401, 'UNAUTHENTICATED']);
    const wrong = await tiny(t, 'GET', '/tiny/see/default/nothing', WRONG_TOKEN);
    assert.deepEqual([wrong.status, wrong.body.code], [401, 'UNAUTHENTICATED']);
    // Those two refusals used up this second's writes of the address: the next write may wait for the next second.
    const first = await tiny(t, 'POST', '/tiny/make/tinyspace', s.admin);
    assert.ok(first.status === 200 || first.status === 429, JSON.stringify(first.body));
    if (first.status === 429)
      await waitFor(
        async () => (await tiny(t, 'POST', '/tiny/make/tinyspace', s.admin)).status === 200,
        5000,
        'the namespace made',
      );

    await waitFor(
      async () => (await audit()).some((e) => e.detail.action === 'tiny make' && e.detail.outcome === 'ok'),
      10_000,
      'the audit entries',
    );
    const entries = (await audit()).filter((e) => String(e.detail.action).startsWith('tiny '));
    const refused = entries.filter((e) => e.detail.action === 'tiny see');
    assert.equal(refused.length, 2);
    for (const e of refused) {
      assert.deepEqual(
        [e.detail.action, e.detail.code, e.namespace, e.service],
        ['tiny see', 'UNAUTHENTICATED', 'default', 'nothing'],
      );
      assert.equal(e.detail.who, 'anonymous@127.0.0.1');
    }
    const ok = entries.find((e) => e.detail.outcome === 'ok');
    assert.deepEqual([ok?.detail.action, ok?.detail.who, ok?.namespace], ['tiny make', 'token:admin', 'tinyspace']);
  });

  it('holds an address to its writes per second', async () => {
    const joins = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        tiny(t, 'POST', `/tiny/join/default/limited?host=10.9.0.${i + 1}&port=80`, s.admin),
      ),
    );
    const statuses = joins.map((j) => j.status);
    assert.ok(statuses.includes(429), `some joins refused: ${statuses.join(' ')}`);
    assert.ok(statuses.filter((x) => x === 200).length <= 4, `at most two a second: ${statuses.join(' ')}`);
    assert.equal(joins.find((j) => j.status === 429)?.body.code, 'RESOURCE_EXHAUSTED');
    await waitFor(
      async () =>
        (await audit()).some((e) => e.detail.action === 'tiny join' && e.detail.code === 'RESOURCE_EXHAUSTED'),
      10_000,
      'the refusal audited',
    );
  });

  it('parks a long-poll until the service changes, and wakes it with the change', async () => {
    await waitFor(
      async () => (await tiny(t, 'POST', '/tiny/join/default/polled?host=10.9.1.1&port=80', s.admin)).status === 200,
      5000,
      'a first instance',
    );
    const now = await tiny(t, 'GET', '/tiny/see/default/polled', s.admin);
    assert.equal(now.status, 200);
    const poll = tiny(t, 'GET', `/tiny/see/default/polled?have=${now.body.revision}&hold=20000`, s.admin);
    await waitFor(() => s.muster.hub.listeners('default', 'polled') === 1, 5000, 'the long-poll to park');
    // Registered over the native HTTP API: the long-poll of the other protocol hears of it.
    let reg: { status: number; body: any } | undefined;
    await waitFor(
      async () =>
        (reg = await api(
          s.url,
          'POST',
          '/v1/namespaces/default/services/polled/instances',
          { host: '10.9.1.2', port: 80 },
          bearer(s.admin),
        )).status === 201,
      5000,
      'a second instance',
    );
    const woke = await poll;
    assert.equal(woke.status, 200);
    assert.deepEqual(woke.body, { revision: reg!.body.instance.revision, instances: 2 });
    assert.equal(s.muster.hub.listeners('default', 'polled'), 0, 'the long-poll let go of the hub');
  });
});
