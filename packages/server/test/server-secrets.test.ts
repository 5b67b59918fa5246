import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../src/config/config.js';
import { Muster } from '../src/muster.js';
import { api, bearer, spawnServer, startServer, tempDir, TEST_DEFAULTS } from './harness.js';

/**
 * What the server keeps to itself: no secret in anything it writes to standard output or
 * standard error (where journald, Docker and kubectl take logs from), and a data directory only
 * its own user can read.
 */

describe("the server's output", () => {
  it('never holds a secret: not the admin token, an access token, a heartbeatToken or a verification secret', async () => {
    const s = await spawnServer({ 'auth.enabled': true, 'log.level': 'trace', 'log.requests': 'all' });
    const secrets: string[] = [];
    try {
      const tokenFile = path.join(s.dataDir, 'admin.token');
      const admin = fs.readFileSync(tokenFile, 'utf8').trim();
      secrets.push(admin);
      const made = await api(s.url, 'POST', '/v1/tokens', { name: 'ci', rules: ['write:default/*'] }, bearer(admin));
      assert.equal(made.status, 201);
      secrets.push(made.body.secret);
      const verifySecret = 'output-test-secret-0123456789';
      secrets.push(verifySecret);
      assert.equal(
        (
          await api(
            s.url,
            'POST',
            '/v1/namespaces/default/services',
            { name: 'checked', verification: { secret: verifySecret } },
            bearer(admin),
          )
        ).status,
        201,
      );
      const reg = await api(
        s.url,
        'POST',
        '/v1/namespaces/default/services/orders/instances',
        { host: '10.0.0.5', port: 8080 },
        bearer(made.body.secret),
      );
      assert.equal(reg.status, 201);
      secrets.push(reg.body.heartbeatToken);
      assert.equal(
        (
          await api(
            s.url,
            'PUT',
            `/v1/instances/${reg.body.instance.id}/heartbeat`,
            undefined,
            bearer(reg.body.heartbeatToken),
          )
        ).status,
        204,
      );
      // Refused credentials are logged and audited too: by name or address, never by value.
      assert.equal((await api(s.url, 'GET', '/v1/namespaces', undefined, bearer(`${admin}x`))).status, 401);
      assert.equal(
        (
          await api(
            s.url,
            'PUT',
            `/v1/instances/${reg.body.instance.id}/heartbeat`,
            undefined,
            bearer(`${reg.body.heartbeatToken}x`),
          )
        ).status,
        403,
      );
      await s.stop();
      const out = s.output();
      assert.ok(out.includes('muster is ready') && out.includes('"msg":"stopped"'), 'the whole run was captured');
      assert.ok(out.includes(tokenFile), 'the output says where the admin token is');
      for (const secret of secrets) {
        // An access token reads mst_<id>_<secret>: neither the whole nor the secret part may show.
        const part = secret.startsWith('mst_') ? secret.split('_').slice(2).join('_') : secret;
        assert.ok(!out.includes(part), `a secret is in the server's output: ${secret.slice(0, 8)}…`);
      }
    } finally {
      await s.stop();
    }
  });
});

describe('the data directory', () => {
  let umask: number;
  before(() => {
    // The modes must not depend on the umask of whoever runs the tests: 022 is the common one.
    umask = process.umask(0o022);
  });
  after(() => {
    process.umask(umask);
  });

  const modeOf = (p: string) => (fs.statSync(p).mode & 0o777).toString(8);

  it('is created 0700, and the database (-wal and -shm too) and the admin token 0600', async () => {
    const dataDir = path.join(tempDir(), 'data');
    const s = await startServer({ 'auth.enabled': true }, dataDir);
    try {
      // A write, so the WAL holds something while the server runs.
      assert.equal(
        (await api(s.url, 'POST', '/v1/namespaces/default/services/orders/instances', { host: '10.0.0.5', port: 8080 }))
          .status,
        201,
      );
      assert.equal(modeOf(dataDir), '700');
      for (const f of ['muster.db', 'muster.db-wal', 'muster.db-shm', 'admin.token'])
        assert.equal(modeOf(path.join(dataDir, f)), '600', f);
    } finally {
      await s.stop();
    }
  });

  it('found readable by others, it is warned about at start, each path with its mode', async () => {
    const dataDir = path.join(tempDir(), 'data');
    const first = await startServer({ 'auth.enabled': true }, dataDir);
    await first.stop();
    fs.chmodSync(dataDir, 0o755);
    for (const f of ['muster.db', 'admin.token']) fs.chmodSync(path.join(dataDir, f), 0o644);
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const flags = {
      httpPort: '0',
      grpcPort: '0',
      dataDir,
      ...Object.fromEntries(Object.entries({ ...TEST_DEFAULTS, 'auth.enabled': true }).map(([k, v]) => [k, String(v)])),
    };
    const muster = await new Muster(loadConfig({ flags }), { logger: pino({ level: 'warn' }, sink) }).start();
    await muster.stop();
    const warned = lines
      .map((l) => JSON.parse(l) as { level: number; path?: string; mode?: string; msg: string })
      .filter((l) => l.level === 40 && l.path !== undefined);
    const mode = new Map(warned.map((w) => [w.path, w.mode]));
    assert.equal(mode.get(dataDir), '0755');
    // SQLite made -wal and -shm with the database file's mode, so they are warned about as well.
    for (const f of ['muster.db', 'muster.db-wal', 'muster.db-shm', 'admin.token'])
      assert.equal(mode.get(path.join(dataDir, f)), '0644', f);
    assert.match(warned.find((w) => w.path === path.join(dataDir, 'muster.db'))!.msg, /open to other users.*chmod 600/);
  });
});
