import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { verificationProof } from '@muster/api';
import { Verifier, type ResolvedAddress } from './verifier.js';

const SECRET = 'unit-test-secret-0123456789';
/** The providers of these tests listen on loopback: the registry must be allowed to check there. */
const LOCAL = { allowLinkLocal: false, allowLoopback: true, allowPrivate: true };
const target = (host: string, port: number) => ({
  namespace: 'ns',
  service: 'svc',
  host,
  port,
  path: '/verify',
  secret: SECRET,
});

describe('verifier', () => {
  let server: http.Server;
  let port: number;
  const seen: Array<{ host: string | undefined; url: string }> = [];
  before(async () => {
    server = http.createServer((req, res) => {
      seen.push({ host: req.headers.host, url: req.url ?? '' });
      const q = new URL(req.url ?? '/', 'http://x').searchParams;
      res.end(verificationProof(SECRET, q.get('challenge')!, q.get('host')!, Number(q.get('port'))));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('resolves a name once, judges every address, and connects only to the addresses it judged', async () => {
    let lookups = 0;
    const resolve = async (): Promise<ResolvedAddress[]> => {
      lookups++;
      // A rebinding resolver would answer something else the second time; it is never asked again.
      return lookups === 1 ? [{ address: '127.0.0.1', family: 4 }] : [{ address: '169.254.169.254', family: 4 }];
    };
    const v = new Verifier({ timeoutMs: 2000, ...LOCAL, resolve });
    const outcome = await v.check(target('provider.example', port));
    assert.deepEqual(outcome, { ok: true });
    assert.equal(lookups, 1);
    assert.equal(v.requestsSent, 1);
    const last = seen[seen.length - 1]!;
    assert.equal(last.host, `provider.example:${port}`, 'the Host header names the registered host');
    const q = new URL(last.url, 'http://x').searchParams;
    assert.match(q.get('challenge')!, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
    assert.equal(q.get('host'), 'provider.example');
    assert.equal(q.get('service'), 'svc');
  });

  it('a name that resolves to a refused address (any one of several) fails the check without a request', async () => {
    const v = new Verifier({
      timeoutMs: 2000,
      ...LOCAL,
      resolve: async () => [
        { address: '127.0.0.1', family: 4 },
        { address: '::ffff:169.254.169.254', family: 6 },
      ],
    });
    const outcome = await v.check(target('sneaky.example', port));
    assert.equal(outcome.ok, false);
    assert.equal(!outcome.ok && outcome.kind, 'address_refused');
    assert.match(
      !outcome.ok ? outcome.reason : '',
      /^address refused: sneaky\.example resolves to ::ffff:169\.254\.169\.254: .*metadata/,
    );
    assert.equal(v.requestsSent, 0);
  });

  it('a literal refused address fails without a request; allowLinkLocal opens link-local but not metadata', async () => {
    const strict = new Verifier({ timeoutMs: 500, ...LOCAL });
    const o1 = await strict.check(target('169.254.3.3', 80));
    assert.equal(!o1.ok && o1.kind, 'address_refused');
    const lenient = new Verifier({ timeoutMs: 500, ...LOCAL, allowLinkLocal: true });
    const o2 = await lenient.check(target('169.254.169.254', 80));
    assert.equal(!o2.ok && o2.kind, 'address_refused');
    assert.equal(strict.requestsSent + lenient.requestsSent, 0);
  });

  it('a name that does not resolve, a closed port and a resolver slower than the timeout are failures with their reason', async () => {
    const v = new Verifier({
      timeoutMs: 300,
      ...LOCAL,
      resolve: async () => Promise.reject(Object.assign(new Error('nope'), { code: 'ENOTFOUND' })),
    });
    const dns = await v.check(target('missing.example', port));
    assert.deepEqual(dns, { ok: false, kind: 'dns', reason: 'DNS lookup of missing.example failed: ENOTFOUND' });
    const closed = await new Verifier({ timeoutMs: 1000, ...LOCAL }).check(target('127.0.0.1', 1));
    assert.deepEqual(closed, { ok: false, kind: 'connection', reason: 'connection refused' });
    const slow = new Verifier({ timeoutMs: 200, ...LOCAL, resolve: () => new Promise(() => {}) });
    const started = Date.now();
    const t = await slow.check(target('slow.example', port));
    assert.equal(!t.ok && t.kind, 'timeout');
    assert.ok(Date.now() - started < 1000);
  });

  it('an abort (the server stopping) rejects instead of reporting a failure', async () => {
    const v = new Verifier({ timeoutMs: 5000, ...LOCAL, resolve: () => new Promise(() => {}) });
    const ac = new AbortController();
    const p = v.check(target('hang.example', port), ac.signal);
    ac.abort();
    await assert.rejects(p);
  });
});
