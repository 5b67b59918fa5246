import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { MusterError } from '@muster/api';
import { SQLITE_MIGRATIONS } from './migrations.js';

/** The SQLite store's file in a data directory. */
export const DATABASE_FILE = 'muster.db';

export interface BackupSummary {
  schemaVersion: number;
  namespaces: number;
  services: number;
  instances: number;
  bytes: number;
}

/**
 * Checks that a file is a whole, readable Muster SQLite database this build can open (its
 * schema no newer than this build's), and says what it holds. Throws INVALID_ARGUMENT otherwise.
 */
export function inspectDatabase(file: string): BackupSummary {
  const bad = (why: string) =>
    new MusterError('INVALID_ARGUMENT', `${file} is not a usable Muster backup: ${why}`, { field: 'file' });
  if (!fs.existsSync(file)) throw bad('no such file');
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw bad((err as Error).message);
  }
  try {
    const check = db.pragma('quick_check', { simple: true }) as string;
    if (check !== 'ok') throw bad(`SQLite's check failed: ${check}`);
    const tables = new Set(
      (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map(
        (r) => r.name,
      ),
    );
    for (const t of ['schema_migration', 'namespace', 'service', 'instance'])
      if (!tables.has(t)) throw bad(`it has no ${t} table`);
    const version = (db.prepare('SELECT MAX(version) AS v FROM schema_migration').get() as { v: number | null }).v ?? 0;
    const known = Math.max(...SQLITE_MIGRATIONS.map((m) => m.version));
    if (version > known)
      throw bad(
        `its schema version ${version} is newer than this Muster knows (${known}); restore it with a newer Muster`,
      );
    const count = (t: string) => (db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n;
    return {
      schemaVersion: version,
      namespaces: count('namespace'),
      services: count('service'),
      instances: count('instance'),
      bytes: fs.statSync(file).size,
    };
  } catch (err) {
    if (err instanceof MusterError) throw err;
    throw bad((err as Error).message);
  } finally {
    db.close();
  }
}

/**
 * Whether a process has the database open: a server's SQLite connection in WAL mode holds a
 * shared lock for as long as it is open, so an exclusive lock is refused at once.
 */
export function databaseInUse(file: string): boolean {
  if (!fs.existsSync(file)) return false;
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { fileMustExist: true, timeout: 0 });
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
    db.exec('COMMIT');
    return false;
  } catch (err) {
    if ((err as { code?: string }).code === 'SQLITE_BUSY' || (err as { code?: string }).code === 'SQLITE_LOCKED')
      return true;
    throw err;
  } finally {
    db?.close();
  }
}

/**
 * Puts a backup in place of the data directory's database: the server must be stopped. The
 * current database (with its -wal and -shm) is kept beside it as muster.db.before-restore-<time>;
 * the backup is copied next to its place and renamed in, so a failed copy leaves the old one.
 */
export function restoreDatabase(
  backup: string,
  dataDir: string,
  now = new Date(),
): { replaced?: string; summary: BackupSummary } {
  const summary = inspectDatabase(backup);
  const target = path.resolve(dataDir, DATABASE_FILE);
  if (databaseInUse(target)) {
    throw new MusterError(
      'FAILED_PRECONDITION',
      `${target} is in use: stop the server that runs on ${path.resolve(dataDir)} first (restore replaces the whole store)`,
    );
  }
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const staging = `${target}.restoring`;
  fs.copyFileSync(backup, staging);
  const fd = fs.openSync(staging, 'r+');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  let replaced: string | undefined;
  if (fs.existsSync(target)) {
    replaced = `${target}.before-restore-${now.toISOString().replace(/[:.]/g, '-')}`;
    for (const suffix of ['', '-wal', '-shm'])
      if (fs.existsSync(target + suffix)) fs.renameSync(target + suffix, replaced + suffix);
  }
  fs.renameSync(staging, target);
  return { ...(replaced ? { replaced } : {}), summary };
}
