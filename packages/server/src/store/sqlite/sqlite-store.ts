import Database from 'better-sqlite3';
import type { EventType, Metadata, RegistryEvent } from '@muster/api';
import type { InstanceRecord, TokenRecord } from '../../model/records.js';
import { iso } from '../../model/records.js';
import type { ChangeLog, ChangeLogFilter, RecordKeys, Records, Snapshot, Store, StoreTx } from '../store.js';
import { eventWhere } from '../event-filter.js';
import { instanceFromRow, type InstanceRowFields } from '../instance-row.js';
import {
  namespaceFromRow as nsFromRow,
  serviceFromRow as svcFromRow,
  type NamespaceRowFields,
  type ServiceRowFields,
} from '../service-row.js';
import { TOKEN_SELECT, tokenFromRow, type TokenRow } from '../token-row.js';
import { touchPrivateFile } from '../../config/data-dir.js';
import { SQLITE_MIGRATIONS } from './migrations.js';
import { SqliteTx } from './sqlite-tx.js';
import { prepareStatements, type SqliteStatements } from './statements.js';

export interface SqliteStoreOptions {
  /** Path of the database file; it and its directory are created private (0600, 0700) if missing. */
  file: string;
  /** FULL survives power loss; NORMAL survives a process crash only (WAL). */
  synchronous: 'full' | 'normal';
}

type InstanceRow = InstanceRowFields;

type NsRow = NamespaceRowFields;
type SvcRow = ServiceRowFields;
interface EventRow {
  id: number;
  type: string;
  namespace: string;
  service: string | null;
  instance_id: string | null;
  at: number;
  detail: string;
}

/**
 * The embedded store: one SQLite file in WAL mode. A write connection runs the batcher's
 * transactions; a second, read-only connection serves event queries, so a reader never sees a
 * batch that has not committed.
 */
export class SqliteStore implements Store, ChangeLog {
  readonly kind = 'sqlite';
  private db!: Database.Database;
  private reader!: Database.Database;
  private stmts!: SqliteStatements;

  constructor(private readonly opts: SqliteStoreOptions) {}

  async open(): Promise<void> {
    touchPrivateFile(this.opts.file);
    this.db = new Database(this.opts.file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${this.opts.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
    this.reader = new Database(this.opts.file, { readonly: true });
    this.reader.pragma('busy_timeout = 5000');
    this.stmts = prepareStatements(this.db);
  }

  private migrate(): void {
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migration (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
    );
    const applied = new Set(
      (this.db.prepare('SELECT version FROM schema_migration').all() as Array<{ version: number }>).map(
        (r) => r.version,
      ),
    );
    const newest = Math.max(0, ...applied);
    const known = Math.max(...SQLITE_MIGRATIONS.map((m) => m.version));
    if (newest > known) {
      throw new Error(
        `the database at ${this.opts.file} has schema version ${newest}, newer than this Muster knows (${known}); upgrade Muster`,
      );
    }
    for (const m of SQLITE_MIGRATIONS) {
      if (applied.has(m.version)) continue;
      this.db.transaction(() => {
        this.db.exec(m.sql);
        this.db
          .prepare('INSERT INTO schema_migration (version, name, applied_at) VALUES (?, ?, ?)')
          .run(m.version, m.name, Date.now());
      })();
    }
  }

  async close(): Promise<void> {
    this.reader?.close();
    this.db?.close();
  }

  async ping(): Promise<void> {
    this.reader.prepare('SELECT 1').get();
  }

  /**
   * SQLite's online backup, on the writing connection: pages that connection changes while the
   * copy runs are copied again, so the file is the database as of the copy's end, and the copy
   * steps between other work instead of holding the event loop.
   */
  async backup(file: string): Promise<void> {
    await this.db.backup(file);
  }

  async load(): Promise<Snapshot> {
    const db = this.db;
    const namespaces = (db.prepare('SELECT * FROM namespace').all() as NsRow[]).map(nsFromRow);
    const services = (db.prepare('SELECT * FROM service').all() as SvcRow[]).map(svcFromRow);
    const metadata = new Map<number, Metadata>();
    for (const r of db.prepare('SELECT instance_seq, key, value FROM instance_metadata').iterate() as Iterable<{
      instance_seq: number;
      key: string;
      value: string;
    }>) {
      let m = metadata.get(r.instance_seq);
      if (!m) metadata.set(r.instance_seq, (m = {}));
      m[r.key] = r.value;
    }
    const instances: InstanceRecord[] = [];
    for (const r of db
      .prepare('SELECT i.*, h.ttl FROM instance i LEFT JOIN health_check h ON h.instance_seq = i.seq')
      .iterate() as Iterable<InstanceRow>) {
      instances.push(instanceFromRow(r, metadata.get(r.seq) ?? {}));
    }
    const seq = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'event'").get() as { seq: number } | undefined;
    const tokens = (db.prepare(TOKEN_SELECT).all() as TokenRow[]).map(tokenFromRow);
    return { namespaces, services, instances, tokens, lastEventId: seq?.seq ?? 0 };
  }

  async readRecords(keys: RecordKeys): Promise<Records> {
    const r = this.reader;
    const out: Records = { namespaces: [], services: [], instances: [] };
    const ns = r.prepare('SELECT * FROM namespace WHERE name = ?');
    for (const name of keys.namespaces) {
      const row = ns.get(name) as NsRow | undefined;
      if (row) out.namespaces.push(nsFromRow(row));
    }
    const svc = r.prepare('SELECT * FROM service WHERE namespace = ? AND name = ?');
    for (const [n, name] of keys.services) {
      const row = svc.get(n, name) as SvcRow | undefined;
      if (row) out.services.push(svcFromRow(row));
    }
    const inst = r.prepare(
      'SELECT i.*, h.ttl FROM instance i LEFT JOIN health_check h ON h.instance_seq = i.seq WHERE i.id = ?',
    );
    const md = r.prepare('SELECT key, value FROM instance_metadata WHERE instance_seq = ?');
    for (const id of keys.instances) {
      const row = inst.get(id) as InstanceRow | undefined;
      if (!row) continue;
      const metadata: Metadata = {};
      for (const m of md.all(row.seq) as Array<{ key: string; value: string }>) metadata[m.key] = m.value;
      out.instances.push(instanceFromRow(row, metadata));
    }
    return out;
  }

  async listTokens(): Promise<TokenRecord[]> {
    return (this.reader.prepare(TOKEN_SELECT).all() as TokenRow[]).map(tokenFromRow);
  }

  async listEvents(f: ChangeLogFilter): Promise<RegistryEvent[]> {
    const { where, args } = eventWhere(f);
    const sql = `SELECT * FROM event ${where} ORDER BY id ${f.newestFirst ? 'DESC' : 'ASC'} LIMIT ?`;
    args.push(f.limit);
    return (this.reader.prepare(sql).all(...args) as EventRow[]).map(eventFromRow);
  }

  async transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    const s = this.stmts;
    s.begin.run();
    try {
      const result = await fn(new SqliteTx(s));
      s.commit.run();
      return result;
    } catch (err) {
      if (this.db.inTransaction) s.rollback.run();
      throw err;
    }
  }
}

function eventFromRow(r: EventRow): RegistryEvent {
  const e: RegistryEvent = {
    id: r.id,
    type: r.type as EventType,
    namespace: r.namespace,
    at: iso(r.at),
    detail: JSON.parse(r.detail) as Record<string, unknown>,
  };
  if (r.service !== null) e.service = r.service;
  if (r.instance_id !== null) e.instanceId = r.instance_id;
  return e;
}
