import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { runMuster as muster } from './harness.js';
import { startAuthServer } from './auth-server.js';
import { api, bearer, tempDir, type Flags } from './harness.js';

/** `muster backup` of a running server's SQLite store, and `muster restore` with the server stopped. */
describe('backup and restore of the SQLite store', () => {
  const stops: Array<() => Promise<void>> = [];
  after(async () => {
    for (const stop of stops) await stop();
  });

  const start = async (dataDir = tempDir(), flags: Flags = {}) => {
    const s = await startAuthServer(flags, dataDir);
    stops.push(() => s.stop());
    return s;
  };
  const register = (url: string, k: number) =>
    api(url, 'POST', '/v1/namespaces/default/services/orders/instances', {
      host: '10.0.0.1',
      port: 1000 + k,
      healthCheck: { ttl: 60 },
    });
  const count = async (url: string) =>
    (await api(url, 'GET', '/v1/namespaces/default/services/orders/instances?status=all')).body.instances
      .length as number;

  it('copies a server that keeps taking writes, and restores the copy once the server is stopped', async () => {
    const s = await start();
    for (let k = 0; k < 50; k++) assert.equal((await register(s.url, k)).status, 201);
    const file = path.join(tempDir(), 'copy.db');
    // Registrations go on while the copy is taken: it must still be one consistent state.
    let writing = true;
    let k = 50;
    const writer = (async () => {
      while (writing) assert.equal((await register(s.url, k++)).status, 201);
    })();
    const b = await muster(['--server', s.url, 'backup', file], { MUSTER_TOKEN: s.admin });
    writing = false;
    await writer;
    assert.equal(b.code, 0, b.stderr);
    const copied = Number(/(\d+) instance\(s\)/.exec(b.stdout)?.[1]);
    assert.ok(copied >= 50 && copied <= k, b.stdout);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600, 'a backup holds token hashes: owner only');
    assert.deepEqual(
      fs.readdirSync(s.dataDir).filter((f) => f.startsWith('.backup-')),
      [],
      'no temporary copy left in the data dir',
    );

    const inUse = await muster(['restore', file, '--data-dir', s.dataDir]);
    assert.equal(inUse.code, 1);
    assert.match(inUse.stderr, /in use: stop the server/);

    await s.stop();
    const r = await muster(['restore', file, '--data-dir', s.dataDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /previous database is kept as .*muster\.db\.before-restore-/);
    const again = await start(s.dataDir);
    assert.equal(await count(again.url), copied, 'the restored server holds exactly what the backup held');
  });

  it('refuses to restore a file that is not a Muster database, and leaves the data dir alone', async () => {
    const dataDir = tempDir();
    const junk = path.join(dataDir, 'junk.db');
    fs.writeFileSync(junk, 'not a database at all '.repeat(100));
    const r = await muster(['restore', junk, '--data-dir', dataDir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /INVALID_ARGUMENT: .*junk\.db is not a usable Muster backup/);
    assert.deepEqual(fs.readdirSync(dataDir), ['junk.db']);
  });

  it('needs an admin token, and says what to use for a store that is not SQLite', async () => {
    const s = await start();
    const file = path.join(tempDir(), 'x.db');
    const anonymous = await muster(['--server', s.url, 'backup', file]);
    assert.equal(anonymous.code, 1);
    assert.match(anonymous.stderr, /UNAUTHENTICATED/);
    const reader = await api(s.url, 'POST', '/v1/tokens', { name: 'reader', rules: ['read:*/*'] }, bearer(s.admin));
    assert.equal((await api(s.url, 'GET', '/v1/backup', undefined, bearer(reader.body.secret))).status, 403);
    assert.equal(fs.existsSync(file), false);

    const mem = await start(tempDir(), { 'store.type': 'memory' });
    const r = await api(mem.url, 'GET', '/v1/backup', undefined, bearer(mem.admin));
    assert.equal(r.status, 409);
    assert.match(r.body.error.message, /no online backup/);
  });
});
