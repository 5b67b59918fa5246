import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { MusterError, verificationProof } from '@muster/api';
import { attachVerificationResponder, verificationResponder } from './verification-responder.js';

const SECRET = 'responder-secret-0123456789';
const CHALLENGE = 'A'.repeat(43);

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

const ask = (port: number, path: string, method = 'GET') =>
  fetch(`http://127.0.0.1:${port}${path}`, { method }).then(async (r) => ({ status: r.status, body: await r.text() }));

const query = (o: Record<string, string | number>) =>
  new URLSearchParams(Object.entries(o).map(([k, v]) => [k, String(v)])).toString();

describe('SDK verification responder', () => {
  it('answers the proof for its own endpoint and service only, and leaves every other request to the application', async () => {
    let app = 0;
    const server = http.createServer((_req, res) => {
      app++;
      res.writeHead(404).end();
    });
    const port = await listen(server);
    const detach = attachVerificationResponder(
      server,
      verificationResponder(SECRET, { host: 'svc.local', port: 8080, service: 'orders', namespace: 'prod' }),
    );
    // A listener added after the responder does not see verify requests either.
    let late = 0;
    server.on('request', () => late++);
    try {
      const own = { challenge: CHALLENGE, host: 'svc.local', port: 8080, namespace: 'prod', service: 'orders' };
      const ok = await ask(port, `/.well-known/muster/verify?${query(own)}`);
      assert.equal(ok.status, 200);
      assert.equal(ok.body, verificationProof(SECRET, CHALLENGE, 'svc.local', 8080));
      assert.equal(app + late, 0);

      // On the verify path but not for this endpoint or service, or not a proper challenge: 421, never a proof.
      for (const q of [
        { ...own, port: 9090 },
        { ...own, host: 'rogue.local' },
        { ...own, service: 'payments' },
        { ...own, challenge: 'short' },
      ]) {
        const r = await ask(port, `/.well-known/muster/verify?${query(q)}`);
        assert.equal(r.status, 421, JSON.stringify(q));
      }
      assert.equal((await ask(port, `/.well-known/muster/verify?${query(own)}`, 'POST')).status, 421);
      assert.equal(app + late, 0);

      assert.equal((await ask(port, `/other?${query(own)}`)).status, 404);
      assert.equal(app, 1);
      detach();
      assert.equal(
        (await ask(port, `/.well-known/muster/verify?${query(own)}`)).status,
        404,
        'detached: the application answers',
      );
    } finally {
      server.close();
    }
  });

  it('works as a part of a request listener: true when it answered, false otherwise', async () => {
    const respond = verificationResponder(SECRET, { host: '10.0.0.1', port: 80, path: '/_verify' });
    const server = http.createServer((req, res) => {
      if (respond(req, res)) return;
      res.end('app');
    });
    const port = await listen(server);
    try {
      const r = await ask(
        port,
        `/_verify?${query({ challenge: CHALLENGE, host: '10.0.0.1', port: 80, namespace: 'any', service: 'any' })}`,
      );
      assert.equal(r.body, verificationProof(SECRET, CHALLENGE, '10.0.0.1', 80));
      assert.equal(
        (await ask(port, `/.well-known/muster/verify?${query({ challenge: CHALLENGE, host: '10.0.0.1', port: 80 })}`))
          .body,
        'app',
      );
    } finally {
      server.close();
    }
  });

  it('refuses a secret or path the registry would refuse', () => {
    const invalid = (field: string) => (err: unknown) =>
      err instanceof MusterError && err.code === 'INVALID_ARGUMENT' && err.field === field;
    assert.throws(() => verificationResponder('short', { host: 'h', port: 1 }), invalid('verification.secret'));
    assert.throws(
      () => verificationResponder(SECRET, { host: 'h', port: 1, path: 'no-slash' }),
      invalid('verification.path'),
    );
  });
});
