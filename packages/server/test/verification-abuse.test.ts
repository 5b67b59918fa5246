import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { verificationProof } from '@muster/client';
import { loadConfig } from '../src/config/config.js';
import { Muster } from '../src/muster.js';
import { api, bearer, TEST_DEFAULTS, tempDir, waitFor, type Flags } from './harness.js';

/**
 * Verified registration as an attacker uses it: to reach this host's own ports, to read what
 * other endpoints answer, and to keep everybody else's checks waiting behind silent endpoints.
 */

const SECRET = 'abuse-test-secret-0123456789';

async function listen(server: http.Server | net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** A server with auth on (clients open: anonymous registrations, as the attacks were made) whose log lines are kept. */
async function startLogged(flags: Flags) {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  const dataDir = tempDir();
  const all = { ...TEST_DEFAULTS, 'auth.enabled': true, 'auth.clients': 'open', ...flags };
  const config = loadConfig({
    flags: {
      httpPort: '0',
      grpcPort: '0',
      dataDir,
      ...Object.fromEntries(Object.entries(all).map(([k, v]) => [k, String(v)])),
    },
  });
  const muster = await new Muster(config, { logger: pino({ level: 'info' }, sink) }).start();
  const admin = fs.readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim();
  const service = async (name: string) => {
    const r = await api(
      muster.url,
      'POST',
      '/v1/namespaces/default/services',
      { name, verification: { secret: SECRET } },
      bearer(admin),
    );
    assert.equal(r.status, 201, JSON.stringify(r.body));
  };
  return { muster, url: muster.url, lines, admin, service };
}

const settled = async (url: string, id: string) => {
  await waitFor(
    async () => (await api(url, 'GET', `/v1/instances/${id}`)).body.verification.state !== 'pending',
    10_000,
    `the check of ${id}`,
  );
  return (await api(url, 'GET', `/v1/instances/${id}`)).body;
};

describe('verification is no port scanner and no reader of other endpoints', () => {
  it('by default this host is never checked: loopback and unspecified hosts are refused, a name resolving there fails unreached', async () => {
    const s = await startLogged({});
    const local = http.createServer((req, res) => {
      const q = new URL(req.url ?? '/', 'http://x').searchParams;
      res.end(verificationProof(SECRET, q.get('challenge') ?? '', q.get('host') ?? '', Number(q.get('port'))));
    });
    const port = await listen(local);
    let reached = 0;
    local.on('request', () => reached++);
    try {
      await s.service('scan');
      for (const host of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1', '0.0.0.0', '::']) {
        const r = await api(s.url, 'POST', '/v1/namespaces/default/services/scan/instances', { host, port });
        assert.equal(r.status, 400, `${host}: ${JSON.stringify(r.body)}`);
        assert.deepEqual([r.body.error.code, r.body.error.field], ['INVALID_ARGUMENT', 'host']);
      }
      const named = await api(s.url, 'POST', '/v1/namespaces/default/services/scan/instances', {
        host: 'localhost',
        port,
      });
      assert.equal(named.status, 201);
      const inst = await settled(s.url, named.body.instance.id);
      assert.equal(inst.verification.state, 'failed');
      assert.match(inst.verification.reason, /^unreachable/);
      assert.equal(reached, 0, 'nothing on this host was asked');
      assert.equal(s.muster.verifier.requestsSent, 0);
      assert.ok(
        s.lines.some((l) => l.includes(named.body.instance.id) && l.includes('a loopback address')),
        'the log says why',
      );
    } finally {
      local.close();
      await s.muster.stop();
    }
  });

  it("a registrant learns only unreachable or wrong proof: never a header, a status or an error the endpoint caused; the operator's log has them", async () => {
    const s = await startLogged({ 'verification.allowLoopback': true });
    const leaks = [
      'SECRETSESSION123',
      'intranet',
      'realm',
      'ECONNRESET',
      'ECONNREFUSED',
      'connection refused',
      'status 401',
      'HPE_',
      'redirect',
    ];
    const closed = net.createServer();
    const closedPort = await listen(closed);
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const servers: Array<http.Server | net.Server> = [];
    const endpoint = async (handler: http.RequestListener) => {
      const server = http.createServer(handler);
      servers.push(server);
      return listen(server);
    };
    const garbage = net.createServer((sock) => sock.end('NOT HTTP AT ALL\r\n\r\n'));
    servers.push(garbage);
    const targets: Array<[what: string, port: number, seen: RegExp, logged: string]> = [
      [
        'a redirect carrying a session',
        await endpoint((_req, res) =>
          res.writeHead(302, { location: 'http://intranet.example/admin?session=SECRETSESSION123' }).end(),
        ),
        /^wrong proof/,
        'SECRETSESSION123',
      ],
      [
        'a 401',
        await endpoint((_req, res) => res.writeHead(401, { 'www-authenticate': 'Basic realm="intranet"' }).end()),
        /^wrong proof/,
        'status 401',
      ],
      ['a reset connection', await endpoint((req) => req.socket.destroy()), /^unreachable/, 'ECONNRESET'],
      ['a non-HTTP answer', await listen(garbage), /^wrong proof/, 'HPE_'],
      ['a closed port', closedPort, /^unreachable/, 'connection refused'],
    ];
    try {
      await s.service('probe');
      for (const [what, port, seen, logged] of targets) {
        const reg = await api(s.url, 'POST', '/v1/namespaces/default/services/probe/instances', {
          host: '127.0.0.1',
          port,
        });
        assert.equal(reg.status, 201, what);
        const inst = await settled(s.url, reg.body.instance.id);
        assert.equal(inst.verification.state, 'failed', what);
        assert.match(inst.verification.reason, seen, what);
        const again = await api(
          s.url,
          'POST',
          '/v1/namespaces/default/services/probe/instances',
          { host: '127.0.0.1', port },
          bearer(reg.body.heartbeatToken),
        );
        const evs = await api(s.url, 'GET', `/v1/events?instance=${reg.body.instance.id}`, undefined, bearer(s.admin));
        for (const text of [JSON.stringify(inst), JSON.stringify(again.body), JSON.stringify(evs.body)]) {
          for (const leak of leaks)
            assert.ok(!text.includes(leak), `${what}: the registrant can read "${leak}": ${text}`);
        }
        assert.ok(
          s.lines.some((l) => l.includes(reg.body.instance.id) && l.includes(logged)),
          `${what}: the log has "${logged}"`,
        );
      }
    } finally {
      for (const server of servers) server.close();
      await s.muster.stop();
    }
  });
});

describe('one caller cannot stall verification for everybody', () => {
  let s: Awaited<ReturnType<typeof startLogged>>;
  let attacker = '',
    honest = '',
    attackerId = '';
  const silent = net.createServer(() => {});
  let silentPort = 0;
  const held = new Set<net.Socket>();
  before(async () => {
    s = await startLogged({ 'verification.allowLoopback': true, 'verification.maxPendingPerCaller': 200 });
    const token = async (name: string) =>
      (await api(s.url, 'POST', '/v1/tokens', { name, rules: ['write:default/*'] }, bearer(s.admin))).body;
    ({
      secret: attacker,
      token: { id: attackerId },
    } = await token('attacker'));
    honest = (await token('honest')).secret;
    // Accepts every connection and never answers: each check waits for its whole timeout.
    silent.on('connection', (sock) => {
      held.add(sock);
      sock.on('close', () => held.delete(sock));
    });
    silentPort = await listen(silent);
    await s.service('flooded');
    await s.service('orders');
  });
  after(async () => {
    await s.muster.stop();
    for (const sock of held) sock.destroy();
    silent.close();
  });

  /** `n` registrations of silent endpoints by the attacker, 20 at a time; answers their statuses. */
  const flood = async (from: number, n: number) => {
    const statuses: number[] = [];
    for (let at = from; at < from + n; at += 20) {
      statuses.push(
        ...(await Promise.all(
          Array.from({ length: Math.min(20, from + n - at) }, async (_, i) => {
            const r = await api(
              s.url,
              'POST',
              '/v1/namespaces/default/services/flooded/instances',
              { id: `junk-${at + i}`, host: '127.0.0.1', port: silentPort, healthCheck: { ttl: 60 } },
              bearer(attacker),
            );
            if (r.status === 429) assert.equal(r.body.error.code, 'RESOURCE_EXHAUSTED');
            return r.status;
          }),
        )),
      );
    }
    return statuses;
  };

  it("while one caller floods silent endpoints, another caller's provider is verified at once", async () => {
    assert.deepEqual(new Set(await flood(0, 150)), new Set([201]));
    const provider = http.createServer((req, res) => {
      const q = new URL(req.url ?? '/', 'http://x').searchParams;
      res.end(verificationProof(SECRET, q.get('challenge') ?? '', q.get('host') ?? '', Number(q.get('port'))));
    });
    const port = await listen(provider);
    try {
      const reg = await api(
        s.url,
        'POST',
        '/v1/namespaces/default/services/orders/instances',
        { host: '127.0.0.1', port, healthCheck: { ttl: 60 } },
        bearer(honest),
      );
      assert.equal(reg.status, 201, JSON.stringify(reg.body));
      // In one first-come queue of 16 slots it would wait behind 150 checks of 2 s: about 19 s.
      await waitFor(
        async () =>
          (await api(s.url, 'GET', `/v1/instances/${reg.body.instance.id}`)).body.verification.state === 'verified',
        5000,
        'the honest provider to be verified',
      );
      assert.ok(
        held.size > 0,
        "the attacker's checks are still waiting on the silent endpoint: its flood is its own queue",
      );
    } finally {
      provider.close();
    }
  });

  it("a caller has at most verification.maxPendingPerCaller checks waiting; past it, its registrations answer 429, others' do not", async () => {
    const statuses = await flood(150, 150);
    // Checks of the first flood end (time out) meanwhile, so how many more fit depends on the machine's pace.
    assert.ok(statuses.includes(429), `none refused: ${statuses.join(' ')}`);
    assert.ok(s.muster.verification.pendingOf(`token:${attackerId}`) <= 200);
    const other = await api(
      s.url,
      'POST',
      '/v1/namespaces/default/services/orders/instances',
      { host: '127.0.0.1', port: silentPort, healthCheck: { ttl: 60 } },
      bearer(honest),
    );
    assert.equal(other.status, 201, JSON.stringify(other.body));
  });
});
