import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import Database from 'better-sqlite3';
import { storeContract } from '../store-contract.js';
import type { Store } from '../store.js';
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

it('sqlite: refuses a database whose schema is newer than this build', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'muster-sqlite-')), 'muster.db');
  await (await openAt(file)).close();
  const db = new Database(file);
  db.prepare('INSERT INTO schema_migration (version, name, applied_at) VALUES (999, ?, 0)').run('from the future');
  db.close();
  await assert.rejects(openAt(file), /schema version 999/);
});
