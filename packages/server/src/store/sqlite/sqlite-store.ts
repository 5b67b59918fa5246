import Database from 'better-sqlite3';
import type { EventType, Metadata, RegistryEvent } from '@muster/api';
import type { InstanceRecord, TokenRecord } from '../../model/records.js';
import { iso, sameMetadata } from '../../model/records.js';
import type { ChangeLog, ChangeLogFilter, NewEvent, RecordKeys, Records, Snapshot, Store, StoreTx } from '../store.js';
import { eventWhere } from '../event-filter.js';
import { instanceFromRow, type InstanceRowFields } from '../instance-row.js';
import { namespaceFromRow as nsFromRow, serviceFromRow as svcFromRow, type NamespaceRowFields, type ServiceRowFields } from '../service-row.js';
import { TOKEN_SELECT, TOKEN_UPSERT_VALUES, tokenArgs, tokenFromRow, type TokenRow } from '../token-row.js';
import { touchPrivateFile } from '../../config/data-dir.js';
import { SQLITE_MIGRATIONS } from './migrations.js';

export interface SqliteStoreOptions {
  /** Path of the database file; it and its directory are created private (0600, 0700) if missing. */
  file: string;
  /** FULL survives power loss; NORMAL survives a process crash only (WAL). */
  synchronous: 'full' | 'normal';
}

type InstanceRow = InstanceRowFields;

type NsRow = NamespaceRowFields;
type SvcRow = ServiceRowFields;
interface EventRow { id: number; type: string; namespace: string; service: string | null; instance_id: string | null; at: number; detail: string }

/**
 * The embedded store: one SQLite file in WAL mode. A write connection runs the batcher's
 * transactions; a second, read-only connection serves event queries, so a reader never sees a
 * batch that has not committed.
 */
export class SqliteStore implements Store, ChangeLog {
  readonly kind = 'sqlite';
  private db!: Database.Database;
  private reader!: Database.Database;
  private stmts!: ReturnType<SqliteStore['prepare']>;

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
    this.stmts = this.prepare();
  }

  private migrate(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migration (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    const applied = new Set((this.db.prepare('SELECT version FROM schema_migration').all() as Array<{ version: number }>).map((r) => r.version));
    const newest = Math.max(0, ...applied);
    const known = Math.max(...SQLITE_MIGRATIONS.map((m) => m.version));
    if (newest > known) {
      throw new Error(`the database at ${this.opts.file} has schema version ${newest}, newer than this Muster knows (${known}); upgrade Muster`);
    }
    for (const m of SQLITE_MIGRATIONS) {
      if (applied.has(m.version)) continue;
      this.db.transaction(() => {
        this.db.exec(m.sql);
        this.db.prepare('INSERT INTO schema_migration (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
      })();
    }
  }

  private prepare() {
    const db = this.db;
    return {
      getNamespace: db.prepare('SELECT name, comment, created_at, updated_at FROM namespace WHERE name = ?'),
      putNamespace: db.prepare(`INSERT INTO namespace (name, comment, created_at, updated_at) VALUES (@name, @comment, @createdAt, @updatedAt)
        ON CONFLICT(name) DO UPDATE SET comment = excluded.comment, updated_at = excluded.updated_at`),
      deleteNamespace: db.prepare('DELETE FROM namespace WHERE name = ?'),
      countServices: db.prepare('SELECT COUNT(*) AS n FROM service WHERE namespace = ?'),
      getService: db.prepare('SELECT * FROM service WHERE namespace = ? AND name = ?'),
      putService: db.prepare(`INSERT INTO service (namespace, name, comment, metadata, revision, created_at, updated_at, verify_secret, verify_path)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT(namespace, name) DO UPDATE SET comment = excluded.comment, metadata = excluded.metadata,
          revision = excluded.revision, updated_at = excluded.updated_at, verify_secret = excluded.verify_secret, verify_path = excluded.verify_path`),
      deleteService: db.prepare('DELETE FROM service WHERE namespace = ? AND name = ?'),
      getInstance: db.prepare('SELECT i.*, h.ttl FROM instance i LEFT JOIN health_check h ON h.instance_seq = i.seq WHERE i.id = ?'),
      getMetadata: db.prepare('SELECT key, value FROM instance_metadata WHERE instance_seq = ?'),
      // Positional parameters: binding 20 named ones from an object costs more than the insert.
      putInstance: db.prepare(`INSERT INTO instance (id, namespace, service, host, port, protocol, version, weight, priority, region, zone, campus,
          healthy, isolate, last_heartbeat, health_changed_at, revision, created_at, updated_at, token_hash, verify_state, verify_reason, verify_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT(id) DO UPDATE SET namespace = excluded.namespace, service = excluded.service, host = excluded.host, port = excluded.port,
          protocol = excluded.protocol, version = excluded.version, weight = excluded.weight, priority = excluded.priority,
          region = excluded.region, zone = excluded.zone, campus = excluded.campus, healthy = excluded.healthy, isolate = excluded.isolate,
          last_heartbeat = excluded.last_heartbeat, health_changed_at = excluded.health_changed_at, revision = excluded.revision,
          updated_at = excluded.updated_at, token_hash = excluded.token_hash,
          verify_state = excluded.verify_state, verify_reason = excluded.verify_reason, verify_at = excluded.verify_at
        RETURNING seq`),
      deleteMetadata: db.prepare('DELETE FROM instance_metadata WHERE instance_seq = ?'),
      putMetadata: db.prepare('INSERT INTO instance_metadata (instance_seq, key, value) VALUES (?, ?, ?)'),
      putHealthCheck: db.prepare(`INSERT INTO health_check (instance_seq, type, ttl) VALUES (?, 'heartbeat', ?)
        ON CONFLICT(instance_seq) DO UPDATE SET type = excluded.type, ttl = excluded.ttl`),
      deleteInstance: db.prepare('DELETE FROM instance WHERE id = ?'),
      listInstanceIds: db.prepare('SELECT id FROM instance WHERE namespace = ? AND service = ?'),
      updateHeartbeat: db.prepare('UPDATE instance SET last_heartbeat = ? WHERE id = ?'),
      appendEvent: db.prepare('INSERT INTO event (type, namespace, service, instance_id, at, detail) VALUES (?, ?, ?, ?, ?, ?)'),
      pruneByCount: db.prepare('DELETE FROM event WHERE id <= (SELECT id FROM event ORDER BY id DESC LIMIT 1 OFFSET ?)'),
      pruneByAge: db.prepare('DELETE FROM event WHERE at < ?'),
      listTokens: db.prepare(TOKEN_SELECT),
      putToken: db.prepare(`INSERT OR REPLACE INTO access_token ${TOKEN_UPSERT_VALUES}`),
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      savepoint: db.prepare('SAVEPOINT op'),
      release: db.prepare('RELEASE op'),
      rollbackTo: db.prepare('ROLLBACK TO op'),
    };
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
    for (const r of db.prepare('SELECT instance_seq, key, value FROM instance_metadata').iterate() as Iterable<{ instance_seq: number; key: string; value: string }>) {
      let m = metadata.get(r.instance_seq);
      if (!m) metadata.set(r.instance_seq, (m = {}));
      m[r.key] = r.value;
    }
    const instances: InstanceRecord[] = [];
    for (const r of db.prepare('SELECT i.*, h.ttl FROM instance i LEFT JOIN health_check h ON h.instance_seq = i.seq').iterate() as Iterable<InstanceRow>) {
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
    const inst = r.prepare('SELECT i.*, h.ttl FROM instance i LEFT JOIN health_check h ON h.instance_seq = i.seq WHERE i.id = ?');
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
    const db = this.db;
    const s = this.stmts;
    // The batcher uses one savepoint level (one per write), so one fixed name is enough.
    const tx: StoreTx = {
      savepoint: async () => void s.savepoint.run(),
      releaseSavepoint: async () => void s.release.run(),
      rollbackToSavepoint: async () => {
        s.rollbackTo.run();
        s.release.run();
      },

      getNamespace: async (name) => {
        const r = s.getNamespace.get(name) as NsRow | undefined;
        return r && nsFromRow(r);
      },
      putNamespace: async (rec) => void s.putNamespace.run(rec),
      deleteNamespace: async (name) => void s.deleteNamespace.run(name),
      countServices: async (ns) => (s.countServices.get(ns) as { n: number }).n,

      getService: async (ns, name) => {
        const r = s.getService.get(ns, name) as SvcRow | undefined;
        return r && svcFromRow(r);
      },
      putService: async (rec) => void s.putService.run(
        rec.namespace, rec.name, rec.comment, JSON.stringify(rec.metadata), rec.revision, rec.createdAt, rec.updatedAt,
        rec.verification?.secret ?? null, rec.verification?.path ?? null,
      ),
      deleteService: async (ns, name) => void s.deleteService.run(ns, name),

      getInstance: async (id) => {
        const r = s.getInstance.get(id) as InstanceRow | undefined;
        if (!r) return undefined;
        const md: Metadata = {};
        for (const m of s.getMetadata.all(r.seq) as Array<{ key: string; value: string }>) md[m.key] = m.value;
        return instanceFromRow(r, md);
      },
      putInstance: async (rec, prev) => {
        const { seq } = s.putInstance.get(
          rec.id, rec.namespace, rec.service, rec.host, rec.port, rec.protocol, rec.version, rec.weight, rec.priority,
          rec.location.region ?? null, rec.location.zone ?? null, rec.location.campus ?? null, rec.healthy ? 1 : 0, rec.isolate ? 1 : 0,
          rec.lastHeartbeat, rec.healthChangedAt, rec.revision, rec.createdAt, rec.updatedAt, rec.tokenHash,
          rec.verification.state, rec.verification.reason, rec.verification.at,
        ) as { seq: number };
        // prev === null: read in this transaction and absent, so there are no child rows yet;
        // prev === undefined: nothing is known, so every child row is rewritten.
        if (prev == null || !sameMetadata(prev.metadata, rec.metadata)) {
          if (prev !== null) s.deleteMetadata.run(seq);
          for (const [k, v] of Object.entries(rec.metadata)) s.putMetadata.run(seq, k, v);
        }
        if (prev == null || prev.ttl !== rec.ttl) s.putHealthCheck.run(seq, rec.ttl);
      },
      deleteInstance: async (id) => void s.deleteInstance.run(id),
      listInstanceIds: async (ns, svc) => (s.listInstanceIds.all(ns, svc) as Array<{ id: string }>).map((r) => r.id),
      updateHeartbeats: async (beats) => {
        for (const b of beats) s.updateHeartbeat.run(b.lastHeartbeat, b.id);
      },

      listTokens: async () => (s.listTokens.all() as TokenRow[]).map(tokenFromRow),
      putToken: async (rec) => void s.putToken.run(...tokenArgs(rec)),

      appendEvent: async (e: NewEvent) =>
        Number(s.appendEvent.run(e.type, e.namespace, e.service ?? null, e.instanceId ?? null, e.at, JSON.stringify(e.detail)).lastInsertRowid),
      pruneEvents: async (keep, olderThan) => s.pruneByCount.run(keep).changes + s.pruneByAge.run(olderThan).changes,
    };

    s.begin.run();
    try {
      const result = await fn(tx);
      s.commit.run();
      return result;
    } catch (err) {
      if (db.inTransaction) s.rollback.run();
      throw err;
    }
  }
}

function eventFromRow(r: EventRow): RegistryEvent {
  const e: RegistryEvent = { id: r.id, type: r.type as EventType, namespace: r.namespace, at: iso(r.at), detail: JSON.parse(r.detail) as Record<string, unknown> };
  if (r.service !== null) e.service = r.service;
  if (r.instance_id !== null) e.instanceId = r.instance_id;
  return e;
}
