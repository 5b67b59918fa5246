import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import Database from 'better-sqlite3';
import { storeContract } from '../store-contract.js';
import type { Store } from '../store.js';
import { SQLITE_MIGRATIONS } from './migrations.js';
import { SqliteStore } from './sqlite-store.js';

const files = new WeakMap<Store, string>();

async function openAt(file: string): Promise<SqliteStore> {
  const s = new SqliteStore({ file, synchronous: 'full' });
  await s.open();
  files.set(s, file);
  return s;
}

storeContract('sqlite', {
  create: () => openAt(path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'muster-sqlite-')), 'sub', 'muster.db')),
  async reopen(store) {
    await store.close();
    return openAt(files.get(store)!);
  },
});

it('sqlite: migrates a version 1 or 2 database to 3; existing rows stay visible', async () => {
  for (const have of [[1], [1, 2]]) {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'muster-sqlite-')), 'muster.db');
    const db = new Database(file);
    db.exec(
      'CREATE TABLE schema_migration (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
    );
    for (const v of have) db.exec(SQLITE_MIGRATIONS.find((m) => m.version === v)!.sql);
    for (const v of have) db.prepare('INSERT INTO schema_migration VALUES (?, ?, 0)').run(v, `v${v}`);
    db.exec(`INSERT INTO namespace VALUES ('ns', '', 1, 1);
      INSERT INTO service (namespace, name, comment, metadata, revision, created_at, updated_at) VALUES ('ns', 'svc', '', '{}', 1, 1, 1);
      INSERT INTO instance (id, namespace, service, host, port, protocol, version, weight, priority, healthy, isolate, last_heartbeat,
        health_changed_at, revision, created_at, updated_at, token_hash) VALUES ('old', 'ns', 'svc', '10.0.0.1', 80, '', '', 100, 0, 1, 0, 1, 1, 1, 1, 1, 'ab');`);
    db.close();
    const store = await openAt(file);
    const snap = await store.load();
    await store.close();
    assert.equal(snap.services[0]!.verification, null);
    assert.deepEqual(snap.instances[0]!.verification, { state: 'verified', reason: '', at: 0 });
    const check = new Database(file, { readonly: true });
    assert.deepEqual(
      (check.prepare('SELECT version FROM schema_migration ORDER BY version').all() as Array<{ version: number }>).map(
        (r) => r.version,
      ),
      [1, 2, 3],
    );
    check.close();
  }
});

it('sqlite: refuses a database whose schema is newer than this build', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'muster-sqlite-')), 'muster.db');
  await (await openAt(file)).close();
  const db = new Database(file);
  db.prepare('INSERT INTO schema_migration (version, name, applied_at) VALUES (999, ?, 0)').run('from the future');
  db.close();
  await assert.rejects(openAt(file), /schema version 999/);
});
