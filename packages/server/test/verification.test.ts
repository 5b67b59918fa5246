import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pino from 'pino';
import { MusterClient, MusterError, verificationProof } from '@muster/client';
import type { RegistryEvent } from '@muster/api';
import { loadConfig } from '../src/config/config.js';
import { Muster } from '../src/muster.js';
import { call, registryClient } from './grpc-client.js';
import { api, bearer, sleep, startServer, tempDir, TEST_DEFAULTS, waitFor, type Flags } from './harness.js';
import { MYSQL, REDIS, clusterServicesProblem } from './cluster-services.js';

/**
 * Verified registration end to end: a real server on loopback, and small real providers on free
 * loopback ports that answer the registry's challenge rightly, wrongly, slowly, with a redirect
 * or with far too much.
 */

const SECRET = 'orders-provider-secret-0123456789';
const PATH = '/.well-known/muster/verify';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, q: URLSearchParams) => void;

interface Provider {
  port: number;
  /** Requests it received on any path. */
  requests: number;
  server: http.Server;
  close(): Promise<void>;
}

async function provider(handler: Handler): Promise<Provider> {
  const p = { port: 0, requests: 0 } as Provider;
  const server = http.createServer((req, res) => {
    p.requests++;
    const url = new URL(req.url ?? '/', 'http://x');
    handler(req, res, url.searchParams);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  p.port = (server.address() as AddressInfo).port;
  p.server = server;
  p.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return p;
}

/** Answers the proof for whatever endpoint the registry names (a genuine provider under `secret`). */
const answersWith =
  (secret: string): Handler =>
  (_req, res, q) => {
    res.end(verificationProof(secret, q.get('challenge') ?? '', q.get('host') ?? '', Number(q.get('port'))));
  };

/** A server whose log lines are kept, to show the secret never reaches them. */
async function startLogged(flags: Flags, dataDir = tempDir()) {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  const config = loadConfig({
    flags: {
      httpPort: '0',
      grpcPort: '0',
      dataDir,
      ...Object.fromEntries(Object.entries({ ...TEST_DEFAULTS, ...flags }).map(([k, v]) => [k, String(v)])),
    },
  });
  const muster = await new Muster(config, { logger: pino({ level: 'debug' }, sink) }).start();
  return { muster, url: muster.url, lines, dataDir, stop: () => muster.stop() };
}

async function instanceOf(url: string, id: string) {
  return (await api(url, 'GET', `/v1/instances/${id}`)).body;
}

async function settled(url: string, id: string) {
  await waitFor(
    async () => (await instanceOf(url, id)).verification?.state !== 'pending',
    5000,
    `the check of ${id} to finish`,
  );
  return instanceOf(url, id);
}

async function discovered(url: string, service: string, query = 'status=all&isolated=all'): Promise<string[]> {
  return (
    (await api(url, 'GET', `/v1/namespaces/default/services/${service}/instances?${query}`)).body.instances as Array<{
      id: string;
    }>
  ).map((i) => i.id);
}

async function events(url: string, id: string): Promise<RegistryEvent[]> {
  return (await api(url, 'GET', `/v1/events?instance=${id}&order=asc&limit=100`)).body.events;
}

describe('verified registration', () => {
  let s: Awaited<ReturnType<typeof startLogged>>;
  const providers: Provider[] = [];
  const serve = async (h: Handler) => {
    const p = await provider(h);
    providers.push(p);
    return p;
  };
  let seq = 0;
  /** A service of its own per test, with verification on. */
  const verifiedService = async (path?: string) => {
    const name = `vs${++seq}`;
    const r = await api(s.url, 'POST', '/v1/namespaces/default/services', {
      name,
      verification: { secret: SECRET, ...(path ? { path } : {}) },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return name;
  };
  const register = async (service: string, port: number, extra: object = {}, host = '127.0.0.1') => {
    const r = await api(s.url, 'POST', `/v1/namespaces/default/services/${service}/instances`, {
      host,
      port,
      healthCheck: { ttl: 60 },
      ...extra,
    });
    assert.ok(r.status === 201 || r.status === 200, JSON.stringify(r.body));
    return r.body as {
      created: boolean;
      instance: { id: string; verification: { state: string } };
      heartbeatToken: string;
    };
  };

  before(async () => {
    s = await startLogged({
      'health.sweepInterval': '100ms',
      'log.level': 'debug',
      'verification.allowLoopback': true,
    });
  });
  after(async () => {
    await s.stop();
    await Promise.all(providers.map((p) => p.close()));
  });

  it('keeps the secret write-only: answers enabled and the path, never the secret, in reads, events or logs', async () => {
    const name = await verifiedService('/muster/check');
    const got = (await api(s.url, 'GET', `/v1/namespaces/default/services/${name}`)).body;
    assert.deepEqual(got.verification, {
      enabled: true,
      path: '/muster/check',
      pendingInstanceCount: 0,
      failedInstanceCount: 0,
    });
    const plain = (await api(s.url, 'POST', '/v1/namespaces/default/services', { name: `${name}-plain` })).body;
    assert.deepEqual(plain.verification, { enabled: false });
    const list = await api(s.url, 'GET', '/v1/namespaces/default/services?limit=1000');
    const evs = await api(s.url, 'GET', '/v1/events?limit=1000');
    for (const text of [JSON.stringify(got), JSON.stringify(list.body), JSON.stringify(evs.body), s.lines.join('')])
      assert.ok(!text.includes(SECRET));
  });

  it('refuses a secret or path out of limits, naming the field, on create and on PATCH', async () => {
    const bad = [
      [{ secret: 'short' }, 'verification.secret'],
      [{ secret: 'has spaces in it, 0123456789' }, 'verification.secret'],
      [{ secret: SECRET, path: 'no-slash' }, 'verification.path'],
      [{ secret: SECRET, path: '/x?y=1' }, 'verification.path'],
      [{ secret: SECRET, extra: 1 }, 'verification.extra'],
      [{ path: '/x' }, 'verification.secret'],
    ] as const;
    for (const [verification, field] of bad) {
      const r = await api(s.url, 'POST', '/v1/namespaces/default/services', { name: 'bad-verify', verification });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error.field, field, JSON.stringify(r.body));
      const p = await api(s.url, 'PATCH', '/v1/namespaces/default/services/vs1', { verification });
      assert.equal(p.status, 400);
      assert.equal(p.body.error.field, field);
    }
    const nullOnCreate = await api(s.url, 'POST', '/v1/namespaces/default/services', {
      name: 'bad-verify',
      verification: null,
    });
    assert.equal(nullOnCreate.status, 400);
    assert.equal(nullOnCreate.body.error.field, 'verification');
  });

  it('a provider that answers the right proof becomes visible: pending, then verified, with an event', async () => {
    const name = await verifiedService();
    const p = await serve(answersWith(SECRET));
    const reg = await register(name, p.port);
    assert.equal(reg.created, true);
    assert.equal(reg.instance.verification.state, 'pending');
    const inst = await settled(s.url, reg.instance.id);
    assert.equal(inst.verification.state, 'verified', JSON.stringify(inst));
    assert.equal(p.requests, 1);
    assert.deepEqual(await discovered(s.url, name, ''), [reg.instance.id]);
    const types = (await events(s.url, reg.instance.id)).map((e) => e.type);
    assert.deepEqual(types, ['instance.registered', 'instance.verified']);
    // The owner re-registering the same endpoint keeps it verified: no new check.
    const again = await api(
      s.url,
      'POST',
      `/v1/namespaces/default/services/${name}/instances`,
      { host: '127.0.0.1', port: p.port, healthCheck: { ttl: 60 } },
      bearer(reg.heartbeatToken),
    );
    assert.equal(again.body.instance.verification.state, 'verified');
    await sleep(200);
    assert.equal(p.requests, 1);
  });

  // The registrant sees only whether an answer came; the operator's log says exactly what came.
  const UNREACHABLE = /^unreachable: no answer from the instance's host and port/;
  const WRONG_PROOF = /^wrong proof: the verify path did not answer the proof of the challenge/;
  const failures: Array<
    [what: string, handler: (other: Provider) => Handler, seen: RegExp, kind: string, logged: RegExp]
  > = [
    ['a wrong HMAC', () => answersWith('some-other-secret-0123456789'), WRONG_PROOF, 'wrong_answer', /wrong answer/],
    ['a provider that never answers', () => () => {}, UNREACHABLE, 'timeout', /timeout: no answer within 2000 ms/],
    [
      'a redirect to a port that would answer rightly',
      (other) => (req, res) => {
        res.writeHead(302, { location: `http://127.0.0.1:${other.port}${req.url}` }).end();
      },
      WRONG_PROOF,
      'redirect',
      /redirect refused: the verify path answered 302 to http:\/\/127\.0\.0\.1:\d+/,
    ],
    [
      'a 1 MB answer',
      () => (_req, res) => res.end(Buffer.alloc(1024 * 1024, 'a')),
      WRONG_PROOF,
      'too_large',
      /answer too large: over 4096 bytes/,
    ],
    [
      'a 1 MB answer without a length',
      () => (_req, res) => {
        const chunk = Buffer.alloc(64 * 1024, 'a');
        for (let i = 0; i < 16; i++) res.write(chunk);
        res.end();
      },
      WRONG_PROOF,
      'too_large',
      /answer too large: over 4096 bytes/,
    ],
    ['a 404', () => (_req, res) => res.writeHead(404).end(), WRONG_PROOF, 'status', /status 404/],
  ];
  for (const [what, handler, seen, kind, logged] of failures) {
    it(`${what} keeps the instance invisible: a coarse reason in its status and event, the details in the log`, async () => {
      const name = await verifiedService();
      const other = await serve(answersWith(SECRET));
      const p = await serve(handler(other));
      const started = Date.now();
      const reg = await register(name, p.port);
      const inst = await settled(s.url, reg.instance.id);
      assert.equal(inst.verification.state, 'failed');
      assert.match(inst.verification.reason, seen);
      assert.ok(inst.verification.at, 'the time of the failure');
      if (kind === 'timeout') assert.ok(Date.now() - started < 4000, 'the check ends at its 2 s timeout');
      assert.equal(other.requests, 0, 'the redirect was not followed');
      for (const q of ['', 'status=all&isolated=all', 'status=unhealthy', 'metadata.x=y'])
        assert.deepEqual(await discovered(s.url, name, q), [], `invisible with ${q || 'the default filter'}`);
      const evs = await events(s.url, reg.instance.id);
      const failed = evs.find((e) => e.type === 'instance.verification_failed');
      assert.ok(failed, JSON.stringify(evs));
      assert.match(String(failed.detail['reason']), seen);
      assert.equal(failed.detail['kind'], seen === UNREACHABLE ? 'unreachable' : 'wrong_proof');
      const svc = (await api(s.url, 'GET', `/v1/namespaces/default/services/${name}`)).body;
      assert.equal(svc.verification.failedInstanceCount, 1);
      const warning = s.lines.find(
        (l) => l.includes('"level":40') && l.includes(reg.instance.id) && l.includes('failed verification'),
      );
      assert.ok(warning, 'a warning in the log');
      assert.match(warning, logged);
      assert.equal(JSON.parse(warning).kind, kind);
    });
  }

  it('heartbeats of a failed instance are accepted, it stays invisible, and a re-registration checks it again', async () => {
    const name = await verifiedService();
    let secret = 'not-the-secret-0123456789';
    const p = await serve((req, res, q) => answersWith(secret)(req, res, q));
    const reg = await register(name, p.port);
    assert.equal((await settled(s.url, reg.instance.id)).verification.state, 'failed');
    const beat = await api(
      s.url,
      'PUT',
      `/v1/instances/${reg.instance.id}/heartbeat`,
      undefined,
      bearer(reg.heartbeatToken),
    );
    assert.equal(beat.status, 204);
    assert.deepEqual(await discovered(s.url, name), []);
    secret = SECRET; // the provider is fixed and registers again
    const again = await api(
      s.url,
      'POST',
      `/v1/namespaces/default/services/${name}/instances`,
      { host: '127.0.0.1', port: p.port, healthCheck: { ttl: 60 } },
      bearer(reg.heartbeatToken),
    );
    assert.equal(again.status, 200);
    assert.equal(again.body.instance.verification.state, 'pending');
    assert.equal((await settled(s.url, reg.instance.id)).verification.state, 'verified');
    assert.deepEqual(await discovered(s.url, name), [reg.instance.id]);
  });

  it('a long-poll and a gRPC Discover see the instance only once it is verified', async () => {
    const name = await verifiedService();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const p = await serve((req, res, q) => void gate.then(() => answersWith(SECRET)(req, res, q)));
    const first = await api(s.url, 'GET', `/v1/namespaces/default/services/${name}/instances`);
    const reg = await register(name, p.port);
    // The registration moved the revision, and still nobody may see it.
    const poll = await api(
      s.url,
      'GET',
      `/v1/namespaces/default/services/${name}/instances?revision=${first.body.revision}&wait=5s`,
    );
    assert.equal(poll.status, 200);
    assert.deepEqual(poll.body.instances, []);
    const grpc = registryClient(s.muster.grpcAddress);
    try {
      assert.deepEqual(
        (await call(grpc, 'Discover', { service: name, filter: { status: 'all', isolated: 'all' } })).instances ?? [],
        [],
      );
      const waiting = api(
        s.url,
        'GET',
        `/v1/namespaces/default/services/${name}/instances?revision=${poll.body.revision}&wait=10s`,
      );
      release();
      const woke = await waiting;
      assert.deepEqual(
        woke.body.instances.map((i: { id: string }) => i.id),
        [reg.instance.id],
      );
      const answer = await call(grpc, 'Discover', { service: name });
      assert.deepEqual(
        answer.instances.map((i: { id: string }) => i.id),
        [reg.instance.id],
      );
      // Register over gRPC answers the state too.
      const viaGrpc = await call(grpc, 'Register', {
        service: name,
        host: '127.0.0.1',
        port: p.port,
        healthCheck: { ttl: 60 },
        heartbeatToken: reg.heartbeatToken,
      });
      assert.equal(viaGrpc.instance.verification.state, 'verified');
    } finally {
      grpc.close();
    }
  });

  it('refuses a registration at 169.254.169.254 (or an IPv6 form of it) before any connection, and allows it where nothing is checked', async () => {
    const name = await verifiedService();
    const sent = s.muster.verifier.requestsSent;
    for (const host of [
      '169.254.169.254',
      '::ffff:169.254.169.254',
      '::ffff:a9fe:a9fe',
      '169.254.10.1',
      'fe80::1',
      '64:ff9b::a9fe:a9fe',
      'fd00:ec2::254',
    ]) {
      const r = await api(s.url, 'POST', `/v1/namespaces/default/services/${name}/instances`, { host, port: 80 });
      assert.equal(r.status, 400, `${host}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'INVALID_ARGUMENT');
      assert.equal(r.body.error.field, 'host');
      assert.match(r.body.error.message, /cannot be verified/);
    }
    assert.equal(s.muster.verifier.requestsSent, sent, 'no request was sent');
    const svc = (await api(s.url, 'GET', `/v1/namespaces/default/services/${name}`)).body;
    assert.equal(svc.instanceCount, 0);
    assert.equal(
      (await api(s.url, 'GET', `/v1/events?service=${name}&type=instance.registered`)).body.events.length,
      0,
    );
    const metrics = await fetch(`${s.url}/metrics`).then((r) => r.text());
    assert.match(metrics, /muster_verification_checks_total\{outcome="address_refused"\} 7/);
    // A service without verification never connects anywhere: no behaviour change there.
    const plain = await api(s.url, 'POST', '/v1/namespaces/default/services/unverified/instances', {
      host: '169.254.169.254',
      port: 80,
    });
    assert.equal(plain.status, 201);
    assert.deepEqual(plain.body.instance.verification, { state: 'verified' });
    assert.deepEqual(await discovered(s.url, 'unverified', ''), [plain.body.instance.id]);
  });

  it('turning verification on makes every instance prove itself; off makes them all visible', async () => {
    const name = `toggle${++seq}`;
    const good = await serve(answersWith(SECRET));
    const bad = await serve(() => {});
    const g = await register(name, good.port);
    const b = await register(name, bad.port);
    assert.equal(g.instance.verification.state, 'verified');
    assert.equal((await discovered(s.url, name, '')).length, 2);
    const on = await api(s.url, 'PATCH', `/v1/namespaces/default/services/${name}`, {
      verification: { secret: SECRET },
    });
    assert.equal(on.status, 200);
    assert.equal(on.body.verification.enabled, true);
    assert.equal(on.body.verification.path, PATH);
    assert.equal(on.body.verification.pendingInstanceCount, 2);
    assert.deepEqual(await discovered(s.url, name, ''), [], 'nobody is visible before a check passed');
    assert.equal((await settled(s.url, g.instance.id)).verification.state, 'verified');
    assert.equal((await settled(s.url, b.instance.id)).verification.state, 'failed');
    assert.deepEqual(await discovered(s.url, name, ''), [g.instance.id]);
    const off = await api(s.url, 'PATCH', `/v1/namespaces/default/services/${name}`, { verification: null });
    assert.deepEqual(off.body.verification, { enabled: false });
    assert.deepEqual((await discovered(s.url, name, '')).sort(), [g.instance.id, b.instance.id].sort());
    assert.deepEqual((await instanceOf(s.url, b.instance.id)).verification, { state: 'verified' });
    const updated = (await api(s.url, 'GET', `/v1/events?service=${name}&type=service.updated&order=asc`)).body
      .events as RegistryEvent[];
    assert.deepEqual(
      updated.map((e) => e.detail['verification']),
      [{ enabled: true, path: PATH }, { disabled: true }],
    );
  });

  it('counts checks by outcome in /metrics', async () => {
    const metrics = await fetch(`${s.url}/metrics`).then((r) => r.text());
    for (const outcome of ['verified', 'wrong_answer', 'timeout', 'redirect', 'too_large', 'status']) {
      assert.match(metrics, new RegExp(`muster_verification_checks_total\\{outcome="${outcome}"\\} [1-9]`), outcome);
    }
  });

  it('a rogue instance that relays the challenge to a genuine provider fails: the proof is bound to the endpoint', async () => {
    const name = await verifiedService();
    const client = new MusterClient({ transport: 'http', servers: [s.url] });
    const genuine = await serve((_req, res) => res.writeHead(404).end());
    try {
      const reg = await client.register({
        service: name,
        host: '127.0.0.1',
        port: genuine.port,
        healthCheck: { ttl: 60 },
        verification: { secret: SECRET, server: genuine.server },
      });
      assert.equal((await settled(s.url, reg.id!)).verification.state, 'verified');
      // The rogue does not know the secret; it forwards whatever it is asked to the genuine provider.
      const rogue = await serve((req, res) => {
        http.get({ host: '127.0.0.1', port: genuine.port, path: req.url! }, (up) => {
          res.writeHead(up.statusCode ?? 502);
          up.pipe(res);
        });
      });
      const forged = await register(name, rogue.port);
      const inst = await settled(s.url, forged.instance.id);
      assert.equal(inst.verification.state, 'failed');
      // The SDK's responder answers only for its own endpoint: the forwarded request is not its.
      assert.match(inst.verification.reason, /^wrong proof/);
      assert.ok(
        s.lines.some((l) => l.includes(forged.instance.id) && l.includes('status 421')),
        'the log says the provider answered 421',
      );
      assert.deepEqual(await discovered(s.url, name, ''), [reg.id]);
    } finally {
      await client.close();
    }
  });
});

describe('verified registration with the SDK', () => {
  for (const transport of ['grpc', 'http'] as const) {
    it(`over ${transport}: a provider using the SDK responder becomes visible, and the application never sees the challenge`, async () => {
      const s = await startServer({ 'verification.timeout': '1s', 'verification.allowLoopback': true });
      const client = new MusterClient({ transport, servers: [transport === 'grpc' ? s.muster.grpcAddress : s.url] });
      let appRequests = 0;
      const server = http.createServer((_req, res) => {
        appRequests++;
        res.end('app\n');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as AddressInfo).port;
      try {
        await api(s.url, 'POST', '/v1/namespaces/default/services', {
          name: 'sdk-verified',
          verification: { secret: SECRET, path: '/_muster' },
        });
        const reg = await client.register({
          service: 'sdk-verified',
          host: '127.0.0.1',
          port,
          healthCheck: { ttl: 60 },
          verification: { secret: SECRET, server, path: '/_muster' },
        });
        assert.equal(reg.instance?.verification.state, 'pending');
        assert.equal((await settled(s.url, reg.id!)).verification.state, 'verified');
        assert.equal(appRequests, 0, 'the verify request did not reach the application');
        const view = await client.discover('sdk-verified');
        assert.deepEqual(
          view.instances.map((i) => i.id),
          [reg.id],
        );
        await fetch(`http://127.0.0.1:${port}/other`);
        assert.equal(appRequests, 1, 'other requests still reach the application');
      } finally {
        await client.close();
        server.closeAllConnections();
        server.close();
        await s.stop();
      }
    });
  }

  it('refuses to register with a responder on a server that does not listen yet', async () => {
    const client = new MusterClient({ transport: 'http', servers: ['http://127.0.0.1:9'] });
    try {
      await assert.rejects(
        client.register({
          service: 'x',
          host: '127.0.0.1',
          port: 1,
          verification: { secret: SECRET, server: http.createServer() },
        }),
        (err: unknown) =>
          err instanceof MusterError && err.code === 'FAILED_PRECONDITION' && err.field === 'verification.server',
      );
    } finally {
      await client.close();
    }
  });
});

describe('verified registration across restarts', () => {
  it('a pending instance found at start is checked again', async () => {
    const dataDir = tempDir();
    let answering = false;
    const p = await provider((req, res, q) => {
      if (answering) answersWith(SECRET)(req, res, q);
    });
    const first = await startServer({ 'verification.timeout': '10s', 'verification.allowLoopback': true }, dataDir);
    let id: string;
    try {
      await api(first.url, 'POST', '/v1/namespaces/default/services', {
        name: 'restart',
        verification: { secret: SECRET },
      });
      id = (
        await api(first.url, 'POST', '/v1/namespaces/default/services/restart/instances', {
          host: '127.0.0.1',
          port: p.port,
          healthCheck: { ttl: 60 },
        })
      ).body.instance.id;
      await waitFor(() => p.requests === 1, 3000, 'the check to reach the provider');
    } finally {
      await first.stop(); // abandons the check under way: the instance stays pending
    }
    answering = true;
    const second = await startServer({ 'verification.timeout': '1s', 'verification.allowLoopback': true }, dataDir);
    try {
      assert.equal((await settled(second.url, id)).verification.state, 'verified');
      assert.equal(p.requests, 2);
      assert.deepEqual(await discovered(second.url, 'restart', ''), [id]);
    } finally {
      await second.stop();
      await p.close();
    }
  });

  it('a failed instance that stays alive is checked again after the retry delay', async () => {
    const clock = { offset: 0, now: () => Date.now() + clock.offset };
    const config = loadConfig({
      flags: {
        httpPort: '0',
        grpcPort: '0',
        dataDir: tempDir(),
        'log.level': 'silent',
        'verification.timeout': '1s',
        'verification.allowLoopback': 'true',
        'auth.enabled': 'false',
      },
    });
    const muster = await new Muster(config, { clock, logger: pino({ level: 'silent' }) }).start();
    let secret = 'not-the-secret-0123456789';
    const p = await provider((req, res, q) => answersWith(secret)(req, res, q));
    try {
      await api(muster.url, 'POST', '/v1/namespaces/default/services', {
        name: 'retry',
        verification: { secret: SECRET },
      });
      const id = (
        await api(muster.url, 'POST', '/v1/namespaces/default/services/retry/instances', {
          host: '127.0.0.1',
          port: p.port,
          healthCheck: { ttl: 60 },
        })
      ).body.instance.id;
      assert.equal((await settled(muster.url, id)).verification.state, 'failed');
      muster.verification.sweep();
      await sleep(100);
      assert.equal(p.requests, 1, 'not checked again before the delay');
      secret = SECRET;
      clock.offset += 31_000;
      muster.verification.sweep();
      await waitFor(
        async () => (await instanceOf(muster.url, id)).verification.state === 'verified',
        5000,
        'the retried check to pass',
      );
      assert.equal(p.requests, 2);
    } finally {
      await muster.stop();
      await p.close();
    }
  });
});

const clusterWhy = await clusterServicesProblem();
if (clusterWhy && process.env['CI'] === 'true')
  throw new Error(`cluster tests need MariaDB and Redis on CI: ${clusterWhy}`);

describe('verified registration in cluster mode', { skip: clusterWhy }, () => {
  const run = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const database = `muster_verify_${run}`;
  after(async () => {
    const conn = await mysql.createConnection({ uri: MYSQL });
    await conn.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await conn.end();
    const r = new Redis(REDIS);
    const keys = await r.keys(`muster-verify-${run}:*`);
    if (keys.length > 0) await r.del(...keys);
    r.disconnect();
  });

  it('an instance left pending by a node that went away is checked by the lease holder', async () => {
    const flags = (id: string, timeout: string) => ({
      'store.type': 'mysql',
      'store.url': `${MYSQL}/${database}`,
      'cluster.redis': REDIS,
      'cluster.prefix': `muster-verify-${run}`,
      'cluster.nodeId': id,
      'cluster.leaseTtl': '1s',
      'cluster.pollInterval': '200ms',
      'health.sweepInterval': '100ms',
      'verification.timeout': timeout,
      'verification.allowLoopback': true,
    });
    let answering = false;
    const p = await provider((req, res, q) => {
      if (answering) answersWith(SECRET)(req, res, q);
    });
    // Node A's check outlasts node A; node B takes what is pending for more than 5 × its 500 ms.
    const a = await startServer(flags('node-a', '10s'));
    const b = await startServer(flags('node-b', '500ms'));
    try {
      await api(a.url, 'POST', '/v1/namespaces/default/services', {
        name: 'orphaned',
        verification: { secret: SECRET },
      });
      const id = (
        await api(a.url, 'POST', '/v1/namespaces/default/services/orphaned/instances', {
          host: '127.0.0.1',
          port: p.port,
          healthCheck: { ttl: 60 },
        })
      ).body.instance.id;
      await waitFor(() => p.requests === 1, 3000, "node A's check to reach the provider");
      await a.stop(); // gone mid-check: the instance stays pending in the shared store
      answering = true;
      await waitFor(
        async () => (await instanceOf(b.url, id)).verification?.state === 'verified',
        10_000,
        'node B to check the orphaned instance',
      );
      assert.deepEqual(await discovered(b.url, 'orphaned', ''), [id]);
      const evs = await events(b.url, id);
      assert.deepEqual(
        evs.map((e) => e.type),
        ['instance.registered', 'instance.verified'],
      );
    } finally {
      await a.stop();
      await b.stop();
      await p.close();
    }
  });
});
