import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MusterClient, MusterError, MusterHttpClient } from '@muster/client';
import { api, runMuster, sleep, spawnServer, startServer, tempDir, waitFor, type RunningServer } from './harness.js';
import { loadConfig, ConfigError } from '../src/config/config.js';

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const adminOf = (s: RunningServer) => fs.readFileSync(path.join(s.dataDir, 'admin.token'), 'utf8').trim();

describe('auth on by default: the admin token at first start', () => {
  it('is created once, kept only in <dataDir>/admin.token with mode 0600; the note at first start names the file, never the token', async () => {
    const dataDir = tempDir();
    const shown: string[] = [];
    const first = await startServer({ 'auth.enabled': true }, dataDir, (t) => shown.push(t));
    const token = adminOf(first);
    assert.match(token, /^mst_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    assert.equal(fs.statSync(path.join(dataDir, 'admin.token')).mode & 0o777, 0o600);
    assert.equal(shown.length, 1);
    assert.ok(!shown[0]!.includes(token), 'the note does not show the token');
    assert.ok(shown[0]!.includes(path.join(dataDir, 'admin.token')), 'the note says where the token is');
    // Management needs it; with it, management works.
    assert.equal((await api(first.url, 'GET', '/v1/namespaces')).status, 401);
    assert.equal((await api(first.url, 'GET', '/v1/namespaces', undefined, bearer(token))).status, 200);
    await first.stop();

    const again = await startServer({ 'auth.enabled': true }, dataDir, (t) => shown.push(t));
    assert.equal(shown.length, 1, 'a second start makes no new admin token');
    assert.equal((await api(again.url, 'GET', '/v1/tokens', undefined, bearer(token))).body.tokens.length, 1);
    await again.stop();
  });

  it('auth.enabled false warns at every start; a non-loopback host with auth off refuses to start unless insecure', async () => {
    const s = await spawnServer({ 'auth.enabled': false });
    await s.stop();
    assert.match(s.output(), /auth is off/);
    const flags = { host: '0.0.0.0', 'auth.enabled': 'false' };
    assert.throws(
      () => loadConfig({ flags }),
      (e: unknown) => e instanceof ConfigError && /--insecure/.test(e.message),
    );
    assert.doesNotThrow(() => loadConfig({ flags: { ...flags, insecure: 'true' } }));
    assert.doesNotThrow(() => loadConfig({ flags: { host: '0.0.0.0' } }), 'auth on: any host');
  });
});

describe('hijack: a second client cannot touch an instance it did not register', () => {
  let server: RunningServer;
  let admin: string;
  before(async () => {
    // The defaults on loopback: auth on, client APIs open to anonymous callers.
    server = await startServer({ 'auth.enabled': true });
    admin = adminOf(server);
  });
  after(() => server.stop());

  it('cannot heartbeat, patch, deregister or re-register over it, nor register into a service it has no right to', async () => {
    const owner = await api(server.url, 'POST', '/v1/namespaces/default/services/orders/instances', {
      host: '10.0.0.1',
      port: 80,
    });
    assert.equal(owner.status, 201);
    const id = owner.body.instance.id as string;
    const mine = owner.body.heartbeatToken as string;
    const other = await api(server.url, 'POST', '/v1/namespaces/default/services/orders/instances', {
      host: '10.0.0.2',
      port: 80,
    });
    const theirs = other.body.heartbeatToken as string;
    const created = await api(
      server.url,
      'POST',
      '/v1/tokens',
      { name: 'payments-ci', rules: ['write:default/payments'] },
      bearer(admin),
    );
    const paymentsToken = created.body.secret as string;
    const before = await api(server.url, 'GET', `/v1/instances/${id}`);

    for (const [what, headers, anon, wrong] of [
      ['no token', {}, 401, 401],
      ["another instance's token", bearer(theirs), 403, 403],
      ['a write token of another service', bearer(paymentsToken), 403, 403],
    ] as const) {
      assert.equal(
        (await api(server.url, 'PUT', `/v1/instances/${id}/heartbeat`, undefined, headers)).status,
        anon,
        `heartbeat with ${what}`,
      );
      assert.equal(
        (await api(server.url, 'PATCH', `/v1/instances/${id}`, { weight: 1 }, headers)).status,
        wrong,
        `patch with ${what}`,
      );
      assert.equal(
        (await api(server.url, 'DELETE', `/v1/instances/${id}`, undefined, headers)).status,
        wrong,
        `deregister with ${what}`,
      );
      const again = await api(
        server.url,
        'POST',
        '/v1/namespaces/default/services/orders/instances',
        { host: '10.0.0.1', port: 80, weight: 1 },
        headers,
      );
      assert.ok([403, 409].includes(again.status), `re-register over it with ${what}: ${again.status}`);
    }
    const intoOrders = await api(
      server.url,
      'POST',
      '/v1/namespaces/default/services/orders/instances',
      { host: '10.0.0.9', port: 80 },
      bearer(paymentsToken),
    );
    assert.equal(intoOrders.status, 403, 'a token for payments cannot register into orders');
    const after = await api(server.url, 'GET', `/v1/instances/${id}`);
    assert.deepEqual({ ...after.body, lastHeartbeatAgeMs: 0 }, { ...before.body, lastHeartbeatAgeMs: 0 });
    assert.equal(
      (await api(server.url, 'PUT', `/v1/instances/${id}/heartbeat`, undefined, bearer(mine))).status,
      204,
      'the owner still can',
    );
  });

  it('with auth.clients required, registering needs a token with write on the service', async () => {
    const s = await startServer({ 'auth.enabled': true, 'auth.clients': 'required' });
    try {
      const token = adminOf(s);
      assert.equal(
        (await api(s.url, 'POST', '/v1/namespaces/default/services/orders/instances', { host: '10.0.0.1', port: 80 }))
          .status,
        401,
      );
      assert.equal((await api(s.url, 'GET', '/v1/namespaces/default/services/orders/instances')).status, 401);
      const made = await api(
        s.url,
        'POST',
        '/v1/tokens',
        { name: 'orders', rules: ['write:default/orders'] },
        bearer(token),
      );
      const reg = await api(
        s.url,
        'POST',
        '/v1/namespaces/default/services/orders/instances',
        { host: '10.0.0.1', port: 80 },
        bearer(made.body.secret),
      );
      assert.equal(reg.status, 201);
      // Its own heartbeatToken is enough to keep it alive and to register it again.
      const hb = reg.body.heartbeatToken as string;
      assert.equal(
        (await api(s.url, 'PUT', `/v1/instances/${reg.body.instance.id}/heartbeat`, undefined, bearer(hb))).status,
        204,
      );
      assert.equal(
        (
          await api(
            s.url,
            'POST',
            '/v1/namespaces/default/services/orders/instances',
            { host: '10.0.0.1', port: 80, weight: 5 },
            bearer(hb),
          )
        ).status,
        200,
      );
      assert.equal(
        (
          await api(
            s.url,
            'POST',
            '/v1/namespaces/default/services/orders/instances',
            { host: '10.0.0.2', port: 80 },
            bearer(hb),
          )
        ).status,
        401,
        'but not a new instance',
      );
    } finally {
      await s.stop();
    }
  });
});

describe('tokens: revocation, the SDK and the CLI', () => {
  let server: RunningServer;
  let admin: string;
  before(async () => {
    server = await startServer({ 'auth.enabled': true, 'auth.clients': 'required' });
    admin = adminOf(server);
  });
  after(() => server.stop());

  it('a revoked token is refused from the next request on; tokens are listed without secrets', async () => {
    const client = new MusterHttpClient({ server: server.url, token: admin });
    const made = await client.createToken({ name: 'short-lived', rules: ['read:default/*'] });
    const reader = new MusterHttpClient({ server: server.url, token: made.secret });
    await reader.register('default', 'svc', { host: '10.0.0.3', port: 1 }).then(
      () => assert.fail('read cannot register'),
      (e: MusterError) => assert.equal(e.code, 'PERMISSION_DENIED'),
    );
    assert.ok(Array.isArray(await reader.listNamespaces()));
    await client.revokeToken(made.token.id);
    await assert.rejects(reader.listNamespaces(), (e: MusterError) => e.code === 'UNAUTHENTICATED');
    const listed = JSON.stringify(await client.listTokens({ revoked: true }));
    assert.ok(!listed.includes(made.secret.slice(18)) && !listed.includes('hash'), 'no secret, no hash in the list');
    assert.match(listed, /"revokedAt"/);
  });

  it('a refused token is told apart from none: unknown or revoked, or malformed (or an instance token), over HTTP, gRPC and the CLI', async () => {
    const message = async (token?: string) =>
      (await api(server.url, 'GET', '/v1/namespaces', undefined, token === undefined ? {} : bearer(token))).body.error
        .message as string;
    const made = await new MusterHttpClient({ server: server.url, token: admin }).createToken({
      name: 'revoked-soon',
      rules: ['read:*'],
    });
    await new MusterHttpClient({ server: server.url, token: admin }).revokeToken(made.token.id);
    const reg = await api(
      server.url,
      'POST',
      '/v1/namespaces/default/services/told/instances',
      { host: '10.0.0.4', port: 1 },
      bearer(admin),
    );

    assert.match(await message(), /^this is a management API: send an access token as Authorization: Bearer mst_/);
    for (const unknown of [`mst_000000000bad_${'y'.repeat(43)}`, made.secret]) {
      assert.equal(await message(unknown), 'the access token is unknown or revoked: no active token matches it');
    }
    for (const malformed of ['mst_123', 'not-a-token', reg.body.heartbeatToken as string]) {
      assert.equal(
        await message(malformed),
        'this is a management API, and the token sent is not an access token: it is malformed ' +
          "(an access token reads mst_<12 hex digits>_<43 characters>, 60 in all) or it is an instance's heartbeatToken, which does not open this API",
      );
    }
    const grpcClient = new MusterClient({ transport: 'grpc', servers: [server.grpcAddress], token: 'mst_123' });
    try {
      await assert.rejects(
        grpcClient.discover('told'),
        (e: MusterError) =>
          e.code === 'UNAUTHENTICATED' &&
          /^auth\.clients is required, and the token sent is not an access token: it is malformed/.test(e.message),
      );
    } finally {
      await grpcClient.close();
    }
    const cli = await runMuster(['--server', server.url, 'namespaces', 'ls'], { MUSTER_TOKEN: 'mst_123' });
    assert.equal(cli.code, 1);
    assert.match(
      cli.stderr,
      /^muster: UNAUTHENTICATED: this is a management API, and the token sent is not an access token: it is malformed/,
    );
  });

  it('MusterClient registers and discovers with a token over gRPC and HTTP', async () => {
    const made = await new MusterHttpClient({ server: server.url, token: admin }).createToken({
      name: 'sdk',
      rules: ['write:default/sdk-svc'],
    });
    for (const transport of ['grpc', 'http'] as const) {
      const c = new MusterClient({
        transport,
        servers: [transport === 'grpc' ? server.grpcAddress : server.url],
        token: made.secret,
      });
      try {
        await c.register({ service: 'sdk-svc', host: '10.9.0.1', port: transport === 'grpc' ? 1 : 2 });
        await waitFor(
          async () => (await c.discover('sdk-svc')).instances.length >= 1,
          5000,
          `discovery over ${transport}`,
        );
      } finally {
        await c.close();
      }
    }
    const anonymous = new MusterClient({ transport: 'grpc', servers: [server.grpcAddress] });
    try {
      await assert.rejects(
        anonymous.register({ service: 'sdk-svc', host: '10.9.0.2', port: 3 }),
        (e: MusterError) => e.code === 'UNAUTHENTICATED',
      );
    } finally {
      await anonymous.close();
    }
  });

  it('muster tokens create, list and revoke', async () => {
    const cli = async (args: string[]) => {
      const r = await runMuster(['--server', server.url, ...args], { MUSTER_TOKEN: admin });
      return { code: r.code, out: r.stdout + r.stderr };
    };
    const made = await cli([
      'tokens',
      'create',
      '--name',
      'ci',
      '--allow',
      'write:prod/orders-*',
      '--allow',
      'read:prod/*',
    ]);
    assert.equal(made.code, 0, made.out);
    const secret = /^(mst_\S+)$/m.exec(made.out)?.[1];
    assert.ok(secret, made.out);
    const [list, ls] = await Promise.all([cli(['tokens', 'list']), cli(['tokens', 'ls'])]);
    assert.match(list.out, /ci\s+write:prod\/orders-\*\/?\S* read:prod\/\*/);
    assert.equal(ls.out, list.out, 'ls as everywhere else');
    assert.ok(!list.out.includes(secret!));
    assert.equal((await cli(['tokens', 'revoke', 'ci'])).code, 0);
    assert.equal((await api(server.url, 'GET', '/v1/namespaces', undefined, bearer(secret!))).status, 401);
    const bad = await cli(['tokens', 'create', '--name', 'x', '--allow', 'root:*']);
    assert.equal(bad.code, 1);
    assert.match(bad.out, /INVALID_ARGUMENT: rule "root:\*"/);
  });
});

describe('the audit trail', () => {
  let server: RunningServer;
  let admin: string;
  before(async () => {
    server = await startServer({
      'auth.enabled': true,
      'limits.writesPerAddress': 5,
      'audit.refusedPerSecond': 5,
    });
    admin = adminOf(server);
  });
  after(() => server.stop());

  const audit = async () =>
    (await api(server.url, 'GET', '/v1/events?type=audit&limit=1000&order=asc', undefined, bearer(admin))).body
      .events as Array<{ namespace: string; detail: Record<string, unknown> }>;

  it('records management actions and refused requests with who, what and the outcome; a flood is counted, not written one by one', async () => {
    assert.equal((await api(server.url, 'POST', '/v1/namespaces', { name: 'audited' }, bearer(admin))).status, 201);
    assert.equal((await api(server.url, 'DELETE', '/v1/namespaces/audited')).status, 401);
    for (let i = 0; i < 50; i++)
      await api(server.url, 'GET', '/v1/tokens', undefined, bearer(`mst_000000000bad_${'y'.repeat(43)}`));
    // A flood's count is written once its second is over.
    const counted = (events: Awaited<ReturnType<typeof audit>>) =>
      events.filter((e) => e.detail['action'] === 'GET /v1/tokens').length +
      events
        .filter((e) => typeof e.detail['suppressed'] === 'number')
        .reduce((n, e) => n + (e.detail['suppressed'] as number), 0);
    await waitFor(async () => counted(await audit()) >= 50, 8000, 'the flood to be in the trail');
    const events = await audit();
    const created = events.find((e) => e.detail['action'] === 'POST /v1/namespaces' && e.namespace === 'audited');
    assert.deepEqual(
      { who: created?.detail['who'], outcome: created?.detail['outcome'] },
      { who: 'token:admin', outcome: 'ok' },
    );
    const refused = events.find((e) => e.detail['action'] === 'DELETE /v1/namespaces/:ns');
    assert.equal(refused?.detail['outcome'], 'refused');
    assert.equal(refused?.detail['code'], 'UNAUTHENTICATED');
    assert.match(String(refused?.detail['who']), /^anonymous@127\.0\.0\.1$/);
    const flood = events.filter((e) => e.detail['action'] === 'GET /v1/tokens');
    assert.ok(flood.length <= 5 * 2, `refused entries written one by one: ${flood.length}`);
    assert.equal(counted(events), 50, 'every refused request is in the trail, one by one or counted');
    assert.ok(!JSON.stringify(events).includes('y'.repeat(43)), 'no token in the trail');
  });
});

// Its own server: refused requests count against the address's writes too, so the flood above
// can leave this second's writes used up when the next test starts.
describe('write limits and watch caps', () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer({ 'auth.enabled': true, 'limits.writesPerAddress': 5, 'limits.watchesPerClient': 2 });
  });
  after(() => server.stop());

  it('answers 429 with Retry-After past the write limit of an address', async () => {
    // 100 writes at once against 5 per second: each one-second window the burst spans admits 5.
    const t0 = Date.now();
    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        api(server.url, 'POST', '/v1/namespaces/default/services/limited/instances', { host: '10.5.0.1', port: 1 + i }),
      ),
    );
    const windows = Math.ceil((Date.now() - t0) / 1000) + 1;
    const created = answers.filter((r) => r.status === 201).length;
    const limited = answers.filter((r) => r.status === 429);
    assert.ok(created >= 1 && created <= 5 * windows, `created ${created} in ${windows} windows`);
    assert.equal(created + limited.length, 100, answers.map((r) => r.status).join(','));
    assert.equal(limited[0]!.body.error.code, 'RESOURCE_EXHAUSTED');
    assert.ok(Number(limited[0]!.headers.get('retry-after')) >= 1);
    await sleep(1100);
    assert.equal(
      (
        await api(server.url, 'POST', '/v1/namespaces/default/services/limited/instances', {
          host: '10.5.0.2',
          port: 1,
        })
      ).status,
      201,
      'allowed again after a second',
    );
  });

  it('caps open watches per client address', async () => {
    assert.equal(
      (
        await api(server.url, 'POST', '/v1/namespaces/default/services/watched/instances', {
          host: '10.6.0.1',
          port: 1,
        })
      ).status,
      201,
    );
    const open = [new AbortController(), new AbortController()];
    const streams = await Promise.all(
      open.map((c) => fetch(`${server.url}/v1/watch?namespace=default&service=watched`, { signal: c.signal })),
    );
    assert.deepEqual(
      streams.map((s) => s.status),
      [200, 200],
    );
    const third = await api(server.url, 'GET', '/v1/watch?namespace=default&service=watched');
    assert.equal(third.status, 429);
    assert.equal(third.body.error.code, 'RESOURCE_EXHAUSTED');
    for (const c of open) c.abort();
    await waitFor(
      async () => {
        const c = new AbortController();
        const r = await fetch(`${server.url}/v1/watch?namespace=default&service=watched`, { signal: c.signal });
        c.abort();
        return r.status === 200;
      },
      3000,
      'a slot to free up once a watch ends',
    );
  });
});
