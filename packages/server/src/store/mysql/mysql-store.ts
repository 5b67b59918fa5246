import { createConnection, createPool } from 'mysql2/promise';
import type { Connection, Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { EventType, Metadata, RegistryEvent, VerificationState } from '@muster/api';
import { LIMITS } from '@muster/api';
import { Errors, MusterError } from '../../errors.js';
import type { InstanceRecord, NamespaceRecord, ServiceRecord, TokenRecord } from '../../model/records.js';
import { iso, sameMetadata } from '../../model/records.js';
import type { EventFilter, NewEvent, RecordKeys, Records, Snapshot, Store, StoreTx } from '../store.js';
import { eventWhere } from '../event-filter.js';
import { TOKEN_SELECT, TOKEN_UPSERT_VALUES, tokenArgs, tokenFromRow, type TokenRow } from '../token-row.js';
import { MYSQL_MIGRATIONS, migrationSql } from './migrations.js';
import { parseMysqlUrl, type MysqlTarget } from './mysql-url.js';

export interface MysqlStoreOptions {
  /** mysql://user:password@host:port/database; the database is created if missing. */
  url: string;
  /** Connections at most (default 10). */
  poolSize?: number;
  /**
   * The most a write transaction takes from asking for a connection to COMMIT (default 5000 ms):
   * past it the transaction is abandoned and answers UNAVAILABLE. Reads (ping, readRecords,
   * listEvents) have the same bound; load() at start has a longer one.
   */
  writeTimeoutMs?: number;
}

/** load() reads everything once at start: it gets this much longer than a write. */
const LOAD_TIMEOUT_FACTOR = 12;
const LOAD_TIMEOUT_MIN_MS = 60_000;
/** Statements of a migration: DDL on a big table can take a while. */
const MIGRATION_STATEMENT_TIMEOUT_MS = 300_000;
/** Keys per statement in readRecords / updateHeartbeats. */
const CHUNK = 500;
/** Rows deleted per criterion per pruneEvents call: one prune never holds a batch for long. */
const PRUNE_CHUNK = 20_000;
const SAVEPOINT = 'muster_op';

interface NsRow extends RowDataPacket { name: string; comment: string; created_at: number; updated_at: number }
interface SvcRow extends RowDataPacket {
  namespace: string; name: string; comment: string; metadata: string; revision: number; created_at: number; updated_at: number;
  verify_secret: string | null; verify_path: string | null;
}
interface InstanceRow extends RowDataPacket {
  seq: number; id: string; namespace: string; service: string; host: string; port: number; protocol: string; version: string;
  weight: number; priority: number; region: string | null; zone: string | null; campus: string | null;
  healthy: number; isolate: number; last_heartbeat: number; health_changed_at: number; revision: number;
  created_at: number; updated_at: number; token_hash: string; verify_state: string; verify_reason: string; verify_at: number; ttl: number | null;
  /** One metadata pair per row when joined with instance_metadata (NULL: none). */
  md_key?: string | null; md_value?: string | null;
}
interface EventRow extends RowDataPacket { id: number; type: string; namespace: string; service: string | null; instance_id: string | null; at: number; detail: string }

const INSTANCE_COLUMNS = 'id, namespace, service, host, port, protocol, version, weight, priority, region, zone, campus, healthy, isolate, last_heartbeat, health_changed_at, revision, created_at, updated_at, token_hash, verify_state, verify_reason, verify_at';
const INSTANCE_PLACEHOLDERS = INSTANCE_COLUMNS.split(',').map(() => '?').join(', ');
const INSTANCE_SET = 'namespace = ?, service = ?, host = ?, port = ?, protocol = ?, version = ?, weight = ?, priority = ?, region = ?, zone = ?, campus = ?, healthy = ?, isolate = ?, last_heartbeat = ?, health_changed_at = ?, revision = ?, updated_at = ?, token_hash = ?, verify_state = ?, verify_reason = ?, verify_at = ?';
/** An instance with its ttl and metadata, one row per metadata pair: one statement, one snapshot. */
const INSTANCE_SELECT = `SELECT i.*, h.ttl, m.\`key\` AS md_key, m.value AS md_value FROM instance i
  LEFT JOIN health_check h ON h.instance_seq = i.seq LEFT JOIN instance_metadata m ON m.instance_seq = i.seq`;

const SQL = {
  getNamespace: 'SELECT name, comment, created_at, updated_at FROM namespace WHERE name = ?',
  insertNamespace: 'INSERT INTO namespace (name, comment, created_at, updated_at) VALUES (?, ?, ?, ?)',
  upsertNamespace: `INSERT INTO namespace (name, comment, created_at, updated_at) VALUES (?, ?, ?, ?)
    ON DUPLICATE KEY UPDATE comment = VALUES(comment), updated_at = VALUES(updated_at)`,
  deleteNamespace: 'DELETE FROM namespace WHERE name = ?',
  countServices: 'SELECT COUNT(*) AS n FROM service WHERE namespace = ?',
  // Row locks: two nodes bumping one service, or changing one instance, take turns.
  getService: 'SELECT * FROM service WHERE namespace = ? AND name = ? FOR UPDATE',
  insertService: 'INSERT INTO service (namespace, name, comment, metadata, revision, created_at, updated_at, verify_secret, verify_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
  // A revision never goes backwards, whatever order two nodes commit in.
  upsertService: `INSERT INTO service (namespace, name, comment, metadata, revision, created_at, updated_at, verify_secret, verify_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON DUPLICATE KEY UPDATE comment = VALUES(comment), metadata = VALUES(metadata), revision = GREATEST(revision, VALUES(revision)), updated_at = VALUES(updated_at),
      verify_secret = VALUES(verify_secret), verify_path = VALUES(verify_path)`,
  updateService: 'UPDATE service SET comment = ?, metadata = ?, revision = GREATEST(revision, ?), updated_at = ?, verify_secret = ?, verify_path = ? WHERE namespace = ? AND name = ?',
  deleteService: 'DELETE FROM service WHERE namespace = ? AND name = ?',
  getInstance: `${INSTANCE_SELECT} WHERE i.id = ? FOR UPDATE`,
  insertInstance: `INSERT INTO instance (${INSTANCE_COLUMNS}) VALUES (${INSTANCE_PLACEHOLDERS})`,
  updateInstance: `UPDATE instance SET ${INSTANCE_SET} WHERE seq = ?`,
  // LAST_INSERT_ID(seq): the answer's insertId is the row's seq whether it was inserted or updated.
  upsertInstance: `INSERT INTO instance (${INSTANCE_COLUMNS}) VALUES (${INSTANCE_PLACEHOLDERS})
    ON DUPLICATE KEY UPDATE seq = LAST_INSERT_ID(seq), ${INSTANCE_SET.split(', ').map((s) => s.replace(/ = \?$/, '')).map((c) => `${c} = VALUES(${c})`).join(', ')}`,
  deleteMetadata: 'DELETE FROM instance_metadata WHERE instance_seq = ?',
  // Right after an instance insert or upsert, LAST_INSERT_ID() is its seq (the child tables have no AUTO_INCREMENT).
  deleteMetadataLast: 'DELETE FROM instance_metadata WHERE instance_seq = LAST_INSERT_ID()',
  insertHealthCheckLast: "INSERT INTO health_check (instance_seq, type, ttl) VALUES (LAST_INSERT_ID(), 'heartbeat', ?)",
  upsertHealthCheckLast: "INSERT INTO health_check (instance_seq, type, ttl) VALUES (LAST_INSERT_ID(), 'heartbeat', ?) ON DUPLICATE KEY UPDATE type = VALUES(type), ttl = VALUES(ttl)",
  upsertHealthCheck: "INSERT INTO health_check (instance_seq, type, ttl) VALUES (?, 'heartbeat', ?) ON DUPLICATE KEY UPDATE type = VALUES(type), ttl = VALUES(ttl)",
  deleteInstance: 'DELETE FROM instance WHERE id = ?',
  listInstanceIds: 'SELECT id FROM instance WHERE namespace = ? AND service = ?',
  appendEvent: 'INSERT INTO event (type, namespace, service, instance_id, at, detail) VALUES (?, ?, ?, ?, ?, ?)',
} as const;

/** MySQL error numbers the store answers as "retry" rather than as a bug. */
const ER = {
  DUP_ENTRY: 1062,
  LOCK_WAIT_TIMEOUT: 1205,
  LOCK_DEADLOCK: 1213,
  SP_DOES_NOT_EXIST: 1305,
  ROW_IS_REFERENCED: 1451,
  NO_REFERENCED_ROW: 1452,
  ROW_IS_REFERENCED_2: 1217,
  NO_REFERENCED_ROW_2: 1216,
} as const;
/** The connection (or the server) is gone: the connection is thrown away. */
const CONNECTION_ERRNOS = new Set([1040 /* too many connections */, 1053 /* server shutdown */, 1152, 1153, 1927 /* killed */, 2006, 2013, 4031]);
/** The statement ran out of time on the server; the transaction is given up. */
const STATEMENT_TIMEOUT_ERRNOS = new Set([1969 /* MariaDB max_statement_time */, 3024 /* MySQL max_execution_time */]);

type Failure = { error: Error; txDead: boolean; connDead: boolean };
type Query = <T extends RowDataPacket[] | ResultSetHeader>(sql: string, values?: unknown[], timeout?: number) => Promise<T>;

/**
 * The cluster-mode store: several Muster nodes share one MySQL or MariaDB database.
 *
 * Every write transaction runs on one pooled connection at READ COMMITTED. Reads of a service or
 * an instance inside it lock the row (SELECT ... FOR UPDATE), so two nodes changing the same
 * instance or bumping the same service take turns instead of losing an update; a service's
 * revision is written as GREATEST(revision, new). What the database reports as a collision with
 * another node (a duplicate key from two nodes inserting the same new row, a deadlock, a lock
 * wait timeout, a foreign key another node just removed) answers MusterError UNAVAILABLE, which
 * callers retry, never an internal error.
 *
 * Time is bounded: a transaction, from asking for a connection to COMMIT, gets `writeTimeoutMs`;
 * past it the connection is dropped (and killed on the server, so its row locks go), and the
 * write answers UNAVAILABLE. An unreachable database costs a caller at most that long.
 *
 * Round trips are what a MySQL transaction costs, so a batch saves them: the statements of one
 * write go together (the savepoint with the operation's first write; an instance row with its
 * health check and metadata rows), a service read once in a transaction is kept (its row is
 * locked) and its revision bumps are written once, with the COMMIT, and unchanged child rows of
 * an instance are not rewritten when `prev` is given. A registration costs three round trips:
 * read the instance, append the event, write the instance.
 */
export class MysqlStore implements Store {
  readonly kind = 'mysql';
  private readonly target: MysqlTarget;
  private readonly poolSize: number;
  private readonly writeTimeoutMs: number;
  private pool: Pool | undefined;
  private readonly pruneLock: string;
  /** Core connections whose session settings are made. */
  private readonly initialized = new WeakSet<object>();

  constructor(opts: MysqlStoreOptions) {
    this.target = parseMysqlUrl(opts.url);
    this.poolSize = opts.poolSize ?? 10;
    this.writeTimeoutMs = opts.writeTimeoutMs ?? 5000;
    this.pruneLock = `muster_prune:${this.target.database}`.slice(0, 64);
  }

  /** host:port/database, never the password. */
  get where(): string {
    return `${this.target.host}:${this.target.port}/${this.target.database}`;
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  async open(): Promise<void> {
    await this.createAndMigrate();
    const pool = createPool({
      host: this.target.host,
      port: this.target.port,
      user: this.target.user,
      password: this.target.password,
      database: this.target.database,
      charset: 'UTF8MB4_GENERAL_CI',
      connectionLimit: this.poolSize,
      maxIdle: this.poolSize,
      idleTimeout: 60_000,
      waitForConnections: true,
      queueLimit: 0,
      connectTimeout: this.writeTimeoutMs,
      enableKeepAlive: true,
      keepAliveInitialDelay: 10_000,
      namedPlaceholders: false,
      supportBigNumbers: true,
      bigNumberStrings: false,
      dateStrings: true,
      decimalNumbers: true,
      // No stack capture per query: it costs more than a local round trip.
      trace: false,
      maxPreparedStatements: 256,
      // One round trip for the statements of one write (see MysqlTx.write). Every value is
      // escaped by the driver; only integers are ever spliced into SQL text.
      multipleStatements: true,
    });
    // A pooled connection the server drops while idle must not take the process down.
    (pool as unknown as { pool: NodeJS.EventEmitter }).pool.on('connection', (c: NodeJS.EventEmitter) => c.on('error', () => {}));
    this.pool = pool;
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    if (!pool) return;
    await bounded(pool.end(), this.writeTimeoutMs).catch(() => {});
  }

  async ping(): Promise<void> {
    const s = await this.session(Date.now() + this.writeTimeoutMs);
    try {
      await s.run(s.conn.ping());
    } finally {
      s.end();
    }
  }

  /** Creates the database when missing and brings its schema to this build's version. */
  private async createAndMigrate(): Promise<void> {
    const t = this.target;
    let conn: Connection;
    try {
      conn = await bounded(createConnection({
        host: t.host, port: t.port, user: t.user, password: t.password, charset: 'UTF8MB4_GENERAL_CI',
        connectTimeout: this.writeTimeoutMs, supportBigNumbers: true, bigNumberStrings: false, trace: false, multipleStatements: false,
      }), this.writeTimeoutMs + 1000);
    } catch (err) {
      throw new Error(`cannot connect to MySQL at ${t.host}:${t.port} as ${t.user}: ${describe(err)}`, { cause: err });
    }
    conn.on('error', () => {});
    const q: Query = async <T extends RowDataPacket[] | ResultSetHeader>(sql: string, values: unknown[] = [], timeout = this.writeTimeoutMs): Promise<T> => {
      const [rows] = await bounded(conn.query<T>({ sql, timeout }, values), timeout + 1000);
      return rows;
    };
    try {
      await q("SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION', SESSION lock_wait_timeout = 60");
      const collation = await this.binaryCollation(q);
      const exists = await q<RowDataPacket[]>('SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [t.database]);
      if (exists.length === 0) {
        await q(`CREATE DATABASE IF NOT EXISTS ${quoteId(t.database)} CHARACTER SET utf8mb4 COLLATE ${collation}`);
      }
      await q(`USE ${quoteId(t.database)}`);
      // Several nodes start at once: one migrates, the others wait and then find nothing to do.
      const lock = `muster_migrate:${t.database}`.slice(0, 64);
      const [got] = await q<RowDataPacket[]>('SELECT GET_LOCK(?, 30) AS got', [lock], 35_000);
      if (Number(got?.['got']) !== 1) throw new Error(`another Muster node has been migrating the database ${this.where} for 30 s (lock ${lock}); start again when it is done`);
      try {
        await this.migrate(q, collation);
      } finally {
        await q('SELECT RELEASE_LOCK(?)', [lock]).catch(() => {});
      }
    } finally {
      await bounded(conn.end(), 1000).catch(() => conn.destroy());
    }
  }

  private async binaryCollation(q: Query): Promise<string> {
    const rows = await q<RowDataPacket[]>("SELECT COLLATION_NAME AS c FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN ('utf8mb4_nopad_bin', 'utf8mb4_0900_bin')");
    const have = new Set(rows.map((r) => String(r['c'])));
    return have.has('utf8mb4_nopad_bin') ? 'utf8mb4_nopad_bin' : have.has('utf8mb4_0900_bin') ? 'utf8mb4_0900_bin' : 'utf8mb4_bin';
  }

  private async migrate(q: Query, collation: string): Promise<void> {
    await q(`CREATE TABLE IF NOT EXISTS schema_migration (
      version INT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=${collation}`, [], MIGRATION_STATEMENT_TIMEOUT_MS);
    const applied = new Set((await q<RowDataPacket[]>('SELECT version FROM schema_migration')).map((r) => Number(r['version'])));
    const newest = Math.max(0, ...applied);
    const known = Math.max(...MYSQL_MIGRATIONS.map((m) => m.version));
    if (newest > known) {
      throw new Error(`the database ${this.where} has schema version ${newest}, newer than this Muster knows (${known}); upgrade Muster`);
    }
    for (const m of MYSQL_MIGRATIONS) {
      if (applied.has(m.version)) continue;
      for (const statement of m.statements) {
        if (typeof statement === 'string') {
          await q(migrationSql(statement, collation), [], MIGRATION_STATEMENT_TIMEOUT_MS);
          continue;
        }
        const present = await q<RowDataPacket[]>(
          'SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?', [statement.table, statement.column]);
        if (present.length > 0) continue;
        await q(`ALTER TABLE ${quoteId(statement.table)} ADD COLUMN ${quoteId(statement.column)} ${statement.definition}`, [], MIGRATION_STATEMENT_TIMEOUT_MS);
      }
      await q('INSERT INTO schema_migration (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, Date.now()]);
    }
  }

  // ---- connections --------------------------------------------------------------------------

  /** A pooled connection with a deadline, its session settings made. */
  private async session(deadline: number): Promise<Session> {
    const pool = this.pool;
    if (!pool) throw new Error('the MySQL store is not open');
    const conn = await this.acquire(pool, deadline);
    const s = new Session(conn, this, deadline);
    if (!this.initialized.has(conn.connection)) {
      try {
        // Row locks are waited for no longer than a write may take in all.
        const lockWait = Math.max(1, Math.ceil(this.writeTimeoutMs / 1000));
        // A fixed sql_mode also keeps the driver's escaping right (no NO_BACKSLASH_ESCAPES).
        await s.query(`SET SESSION innodb_lock_wait_timeout = ${lockWait}, SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'; `
          + 'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
      } catch (err) {
        s.end();
        throw err;
      }
      this.initialized.add(conn.connection);
    }
    return s;
  }

  /** pool.getConnection, but never waiting past the deadline (mysql2's pool waits forever). */
  private acquire(pool: Pool, deadline: number): Promise<PoolConnection> {
    return new Promise<PoolConnection>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        reject(this.timeoutError('waiting for a connection', undefined));
      }, Math.max(0, deadline - Date.now()));
      pool.getConnection().then(
        (conn) => {
          if (settled) conn.release();
          else {
            settled = true;
            clearTimeout(timer);
            resolve(conn);
          }
        },
        (err: unknown) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          reject(this.classify(err).error);
        },
      );
    });
  }

  /** Best effort: ends an abandoned connection's work on the server, so its row locks go now. */
  killLater(threadId: number | undefined): void {
    const pool = this.pool;
    if (!pool || threadId === undefined) return;
    void this.acquire(pool, Date.now() + Math.min(this.writeTimeoutMs, 2000)).then(
      (conn) => bounded(conn.query({ sql: `KILL ${Number(threadId)}`, timeout: 2000 }), 2500).then(
        () => conn.release(),
        // Unknown thread (already gone) is an answer: the connection is fine.
        (err: unknown) => (this.classify(err).connDead ? destroy(conn) : conn.release()),
      ),
      () => {},
    );
  }

  timeoutError(what: string, cause: unknown): MusterError {
    return Errors.storeRetry(`the database at ${this.target.host}:${this.target.port} did not answer within ${this.writeTimeoutMs} ms (${what})`, cause);
  }

  /** What a driver or server error means here: a retryable MusterError or, when it is neither, a bug. */
  classify(err: unknown): Failure {
    if (err instanceof MusterError) return { error: err, txDead: false, connDead: false };
    const e = err as { errno?: number; code?: string; fatal?: boolean; message?: string };
    switch (e.errno) {
      case ER.DUP_ENTRY:
        return { error: Errors.storeRetry('another node wrote the same row at the same time: concurrent write', err), txDead: false, connDead: false };
      case ER.NO_REFERENCED_ROW:
      case ER.NO_REFERENCED_ROW_2:
      case ER.ROW_IS_REFERENCED:
      case ER.ROW_IS_REFERENCED_2:
        return { error: Errors.storeRetry('another node changed a related row at the same time: concurrent write', err), txDead: false, connDead: false };
      case ER.LOCK_DEADLOCK:
        // The server rolled the whole transaction back.
        return { error: Errors.storeRetry('the write deadlocked with another node\'s: concurrent write', err), txDead: true, connDead: false };
      case ER.LOCK_WAIT_TIMEOUT:
        return { error: Errors.storeRetry('a row stayed locked by another node too long: concurrent write', err), txDead: true, connDead: false };
      case ER.SP_DOES_NOT_EXIST:
        return { error: Errors.storeRetry('the transaction was rolled back by the database', err), txDead: true, connDead: false };
    }
    if (e.errno !== undefined && STATEMENT_TIMEOUT_ERRNOS.has(e.errno)) return { error: this.timeoutError('statement time limit', err), txDead: true, connDead: false };
    if (e.code === 'PROTOCOL_SEQUENCE_TIMEOUT') return { error: this.timeoutError('query', err), txDead: true, connDead: true };
    if (e.fatal || (e.errno !== undefined && CONNECTION_ERRNOS.has(e.errno)) || (typeof e.code === 'string' && /^(E[A-Z]+|PROTOCOL_.*|HANDSHAKE_.*)$/.test(e.code))) {
      return { error: Errors.storeRetry(`the database at ${this.target.host}:${this.target.port} is not reachable: ${describe(err)}`, err), txDead: true, connDead: true };
    }
    return { error: err instanceof Error ? err : new Error(String(err)), txDead: false, connDead: false };
  }

  // ---- reads --------------------------------------------------------------------------------

  async load(): Promise<Snapshot> {
    const s = await this.session(Date.now() + Math.max(LOAD_TIMEOUT_MIN_MS, this.writeTimeoutMs * LOAD_TIMEOUT_FACTOR));
    try {
      // One consistent snapshot: the rows and the last change number agree.
      await s.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      await s.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      const [last] = await s.query<RowDataPacket[]>('SELECT COALESCE(MAX(id), 0) AS last FROM event');
      const namespaces = (await s.query<NsRow[]>('SELECT * FROM namespace')).map(nsFromRow);
      const services = (await s.query<SvcRow[]>('SELECT * FROM service')).map(svcFromRow);
      const metadata = new Map<number, Metadata>();
      for (const r of await s.query<RowDataPacket[]>('SELECT instance_seq, `key`, value FROM instance_metadata')) {
        const seq = Number(r['instance_seq']);
        let m = metadata.get(seq);
        if (!m) metadata.set(seq, (m = {}));
        m[String(r['key'])] = String(r['value']);
      }
      const instances = (await s.query<InstanceRow[]>('SELECT i.*, h.ttl FROM instance i LEFT JOIN health_check h ON h.instance_seq = i.seq'))
        .map((r) => instanceFromRow(r, metadata.get(Number(r.seq)) ?? {}));
      const tokens = (await s.query<Array<TokenRow & RowDataPacket>>(TOKEN_SELECT)).map(tokenFromRow);
      await s.query('COMMIT');
      return { namespaces, services, instances, tokens, lastEventId: Number(last?.['last'] ?? 0) };
    } catch (err) {
      if (!s.connDead) await s.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      s.end();
    }
  }

  async readRecords(keys: RecordKeys): Promise<Records> {
    const out: Records = { namespaces: [], services: [], instances: [] };
    if (keys.namespaces.length + keys.services.length + keys.instances.length === 0) return out;
    const s = await this.session(Date.now() + this.writeTimeoutMs);
    try {
      for (const part of chunks(unique(keys.namespaces), CHUNK)) {
        out.namespaces.push(...(await s.query<NsRow[]>('SELECT * FROM namespace WHERE name IN (?)', [part])).map(nsFromRow));
      }
      const services = uniqueBy(keys.services, ([ns, name]) => `${ns}\u0000${name}`);
      for (const part of chunks(services, CHUNK)) {
        const where = part.map(() => '(namespace = ? AND name = ?)').join(' OR ');
        out.services.push(...(await s.query<SvcRow[]>(`SELECT * FROM service WHERE ${where}`, part.flat())).map(svcFromRow));
      }
      for (const part of chunks(unique(keys.instances), CHUNK)) {
        // With its metadata in the same statement: one snapshot, never a row with another's children.
        out.instances.push(...instancesFromJoinedRows(await s.query<InstanceRow[]>(`${INSTANCE_SELECT} WHERE i.id IN (?)`, [part])));
      }
      return out;
    } finally {
      s.end();
    }
  }

  async listTokens(): Promise<TokenRecord[]> {
    const s = await this.session(Date.now() + this.writeTimeoutMs);
    try {
      return (await s.query<Array<TokenRow & RowDataPacket>>(TOKEN_SELECT)).map(tokenFromRow);
    } finally {
      s.end();
    }
  }

  async listEvents(f: EventFilter): Promise<RegistryEvent[]> {
    const { where, args } = eventWhere(f);
    const limit = Math.max(0, Math.floor(f.limit));
    const sql = `SELECT * FROM event ${where} ORDER BY id ${f.newestFirst ? 'DESC' : 'ASC'} LIMIT ${limit}`;
    const s = await this.session(Date.now() + this.writeTimeoutMs);
    try {
      return (await s.query<EventRow[]>(sql, args)).map(eventFromRow);
    } finally {
      s.end();
    }
  }

  // ---- writes -------------------------------------------------------------------------------

  /** A connection in a started transaction. */
  private async begin(deadline: number): Promise<Session> {
    for (let attempt = 1; ; attempt++) {
      let s: Session | undefined;
      try {
        s = await this.session(deadline);
        await s.query('START TRANSACTION');
        return s;
      } catch (err) {
        s?.end();
        // A pooled connection the server dropped while it sat idle: nothing was done yet, so one
        // more try on a fresh connection.
        if (attempt >= 2 || !(err instanceof MusterError) || Date.now() >= deadline || !s?.connDead) throw err;
      }
    }
  }

  async transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    const s = await this.begin(Date.now() + this.writeTimeoutMs);
    const tx = new MysqlTx(s, this.pruneLock);
    try {
      const result = await fn(tx.api);
      await tx.commit();
      return result;
    } catch (err) {
      if (!s.connDead) await s.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      await tx.releaseLocks();
      s.end();
    }
  }
}

/**
 * One pooled connection with a deadline. Every statement races the deadline, so a database that
 * stops answering costs at most the time left; the connection is then dropped, never reused.
 */
class Session {
  /**
   * Set when the transaction cannot go on (rolled back by the server, timed out, connection lost).
   * The deadline is the timeout of every statement on this connection: one timer, not one per
   * statement (mysql2's per-query timeout leaves the connection busy and does not cover the
   * prepare step).
   */
  dead: Error | undefined;
  txDead = false;
  connDead = false;
  private readonly aborted: Promise<never>;
  private rejectAborted!: (err: Error) => void;
  private readonly timer: NodeJS.Timeout;
  private ended = false;

  constructor(readonly conn: PoolConnection, private readonly store: MysqlStore, readonly deadline: number) {
    this.aborted = new Promise<never>((_, reject) => (this.rejectAborted = reject));
    this.aborted.catch(() => {});
    this.timer = setTimeout(() => {
      this.fail({ error: store.timeoutError('transaction', undefined), txDead: true, connDead: true });
      // The server may still hold the transaction's row locks: end it there too.
      store.killLater(conn.threadId);
    }, Math.max(0, deadline - Date.now()));
  }

  async run<T>(p: Promise<T>): Promise<T> {
    if (this.dead) {
      p.catch(() => {});
      throw this.dead;
    }
    try {
      return await Promise.race([p, this.aborted]);
    } catch (err) {
      throw this.fail(this.store.classify(err));
    }
  }

  /** A prepared statement (cached per connection by the driver): for the fixed statements. */
  async execute<T extends RowDataPacket[] | ResultSetHeader>(sql: string, values: Value[]): Promise<T> {
    if (this.dead) throw this.dead;
    const [rows] = await this.run(this.conn.execute<T>(sql, values));
    return rows;
  }

  /**
   * A text-protocol query, values escaped by the driver (the session's sql_mode is fixed, so
   * escaping is right): for control, variable-shape and multi-statement writes.
   */
  async query<T extends RowDataPacket[] | ResultSetHeader | ResultSetHeader[]>(sql: string, values?: unknown[]): Promise<T> {
    if (this.dead) throw this.dead;
    const [rows] = await this.run(this.conn.query<T>(sql, values));
    return rows;
  }

  private fail(f: Failure): Error {
    if (f.txDead && !this.dead) this.dead = f.error;
    this.txDead ||= f.txDead;
    if (f.connDead && !this.connDead) {
      this.connDead = true;
      this.rejectAborted(f.error);
      destroy(this.conn);
    }
    return f.error;
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    if (this.connDead) destroy(this.conn);
    else this.conn.release();
  }
}

type CachedService = { rec: ServiceRecord; dirty: boolean };
type Value = string | number | null;
/** One statement of a write: SQL with ? placeholders and its values. */
type Stmt = readonly [sql: string, values: Value[]];

/**
 * One write transaction's operations. Besides the connection it keeps what this transaction
 * knows for sure: services whose rows it locked (with revision bumps not yet written), the seq
 * of instances it read, and keys it read as absent (an insert of those must not overwrite a row
 * another node inserted since). A savepoint rollback undoes those too.
 *
 * The statements of one write go to the server together (one round trip: the savepoint, the
 * instance row and its child rows), which is most of what a batch of 512 costs.
 */
class MysqlTx {
  private readonly namespaces = new Map<string, NamespaceRecord>();
  private readonly services = new Map<string, CachedService>();
  private readonly seqs = new Map<string, number>();
  private readonly absent = new Set<string>();
  private undo: Array<() => void> = [];
  private inOp = false;
  private savepointSent = false;
  private readonly locks: string[] = [];
  readonly api: StoreTx;

  constructor(private readonly s: Session, private readonly pruneLock: string) {
    // A plain object of closures: the batcher spreads it to wrap some methods.
    this.api = {
      savepoint: async () => {
        // Sent with the operation's first write: an operation that only reads needs none.
        this.inOp = true;
        this.savepointSent = false;
        this.undo = [];
      },
      releaseSavepoint: async () => {
        // Nothing to send: the next SAVEPOINT of the same name replaces this one.
        this.inOp = false;
        this.savepointSent = false;
        this.undo = [];
      },
      rollbackToSavepoint: async () => {
        const sent = this.savepointSent;
        this.inOp = false;
        this.savepointSent = false;
        for (let i = this.undo.length - 1; i >= 0; i--) this.undo[i]!();
        this.undo = [];
        if (sent) await this.s.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
        // Nothing written, but the transaction is gone (a deadlock): the whole batch fails.
        else if (this.s.dead) throw this.s.dead;
      },

      getNamespace: async (name) => {
        const cached = this.namespaces.get(name);
        if (cached) return { ...cached };
        const [row] = await this.s.execute<NsRow[]>(SQL.getNamespace, [name]);
        if (!row) {
          this.absent.add(`n:${name}`);
          return undefined;
        }
        const rec = nsFromRow(row);
        this.namespaces.set(name, rec);
        this.absent.delete(`n:${name}`);
        return { ...rec };
      },
      putNamespace: async (rec) => {
        const insert = this.absent.has(`n:${rec.name}`);
        try {
          await this.write([[insert ? SQL.insertNamespace : SQL.upsertNamespace, [rec.name, rec.comment, rec.createdAt, rec.updatedAt]]]);
        } catch (err) {
          // Two nodes creating one namespace: the second learns it exists, as on one node.
          if (insert && isDuplicate(err)) throw Errors.namespaceExists(rec.name);
          throw err;
        }
        this.remember(this.namespaces, rec.name, { ...rec });
        this.forgetAbsent(`n:${rec.name}`);
      },
      deleteNamespace: async (name) => {
        await this.write([[SQL.deleteNamespace, [name]]]);
        this.remember(this.namespaces, name, undefined);
      },
      countServices: async (ns) => {
        const [row] = await this.s.execute<RowDataPacket[]>(SQL.countServices, [ns]);
        return Number(row?.['n'] ?? 0);
      },

      getService: async (ns, name) => {
        const key = svcKey(ns, name);
        const cached = this.services.get(key);
        if (cached) return cloneService(cached.rec);
        const [row] = await this.s.execute<SvcRow[]>(SQL.getService, [ns, name]);
        if (!row) {
          this.absent.add(`s:${key}`);
          return undefined;
        }
        // Locked until commit: nobody else changes it, so it is kept for the whole transaction.
        const rec = svcFromRow(row);
        this.services.set(key, { rec, dirty: false });
        this.absent.delete(`s:${key}`);
        return cloneService(rec);
      },
      putService: async (rec) => {
        const key = svcKey(rec.namespace, rec.name);
        const cached = this.services.get(key);
        if (cached) {
          // A row this transaction holds locked: written once, at commit.
          const next = cloneService(rec);
          next.revision = Math.max(next.revision, cached.rec.revision);
          this.remember(this.services, key, { rec: next, dirty: true });
          return;
        }
        const args = [
          rec.namespace, rec.name, rec.comment, JSON.stringify(rec.metadata), rec.revision, rec.createdAt, rec.updatedAt,
          rec.verification?.secret ?? null, rec.verification?.path ?? null,
        ];
        if (this.absent.has(`s:${key}`)) {
          await this.write([[SQL.insertService, args]]);
          this.remember(this.services, key, { rec: cloneService(rec), dirty: false });
          this.forgetAbsent(`s:${key}`);
        } else {
          // Not read here: GREATEST may have kept a newer revision, so the next read asks the database.
          await this.write([[SQL.upsertService, args]]);
        }
      },
      deleteService: async (ns, name) => {
        await this.write([[SQL.deleteService, [ns, name]]]);
        this.remember(this.services, svcKey(ns, name), undefined);
      },

      getInstance: async (id) => {
        const rows = await this.s.execute<InstanceRow[]>(SQL.getInstance, [id]);
        const [rec] = instancesFromJoinedRows(rows);
        if (!rec) {
          this.absent.add(`i:${id}`);
          this.seqs.delete(id);
          return undefined;
        }
        this.absent.delete(`i:${id}`);
        this.seqs.set(id, Number(rows[0]!.seq));
        return rec;
      },
      putInstance: async (rec, prev) => {
        const row: Value[] = [
          rec.id, rec.namespace, rec.service, rec.host, rec.port, rec.protocol, rec.version, rec.weight, rec.priority,
          rec.location.region ?? null, rec.location.zone ?? null, rec.location.campus ?? null, rec.healthy ? 1 : 0, rec.isolate ? 1 : 0,
          rec.lastHeartbeat, rec.healthChangedAt, rec.revision, rec.createdAt, rec.updatedAt, rec.tokenHash,
          rec.verification.state, rec.verification.reason, rec.verification.at,
        ];
        const seqKnown = this.seqs.get(rec.id);
        if (prev === null || (prev === undefined && this.absent.has(`i:${rec.id}`))) {
          // Known not to exist: a plain insert, so a row another node inserted meanwhile is a
          // duplicate key (retry), never silently taken over. Child rows find the new seq in
          // LAST_INSERT_ID(): one round trip for all of them.
          const [r] = await this.write([
            [SQL.insertInstance, row],
            [SQL.insertHealthCheckLast, [rec.ttl]],
            ...metadataInsert(undefined, rec.metadata),
          ], false);
          this.rememberSeq(rec.id, Number(r!.insertId));
          this.forgetAbsent(`i:${rec.id}`);
        } else if (prev && seqKnown !== undefined) {
          // Read (and locked) in this transaction: update in place, child rows only when changed.
          const stmts: Stmt[] = [[SQL.updateInstance, [...row.slice(1, 17), ...row.slice(18), seqKnown]]];
          if (!sameMetadata(prev.metadata, rec.metadata)) stmts.push([SQL.deleteMetadata, [seqKnown]], ...metadataInsert(seqKnown, rec.metadata));
          if (prev.ttl !== rec.ttl) stmts.push([SQL.upsertHealthCheck, [seqKnown, rec.ttl]]);
          await this.write(stmts, stmts.length === 1);
        } else {
          // Nothing known: upsert (LAST_INSERT_ID(seq) names the row either way) and rewrite every child row.
          const [r] = await this.write([
            [SQL.upsertInstance, row],
            [SQL.deleteMetadataLast, []],
            ...metadataInsert(undefined, rec.metadata),
            [SQL.upsertHealthCheckLast, [rec.ttl]],
          ], false);
          this.rememberSeq(rec.id, Number(r!.insertId));
          this.forgetAbsent(`i:${rec.id}`);
        }
      },
      deleteInstance: async (id) => {
        await this.write([[SQL.deleteInstance, [id]]]);
        this.rememberSeq(id, undefined);
        if (!this.absent.has(`i:${id}`)) {
          this.absent.add(`i:${id}`);
          if (this.inOp) this.undo.push(() => this.absent.delete(`i:${id}`));
        }
      },
      listInstanceIds: async (ns, svc) => (await this.s.execute<RowDataPacket[]>(SQL.listInstanceIds, [ns, svc])).map((r) => String(r['id'])),
      updateHeartbeats: async (beats) => {
        if (beats.length === 0) return;
        const newest = new Map<string, number>();
        for (const b of beats) newest.set(b.id, Math.max(b.lastHeartbeat, newest.get(b.id) ?? -Infinity));
        // Sorted: every node locks rows in the same order, so two flushes cannot deadlock.
        const sorted = [...newest].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
        const stmts: Stmt[] = [];
        for (const part of chunks(sorted, CHUNK)) {
          // A heartbeat time never goes backwards, whichever node flushes last.
          stmts.push([
            `UPDATE instance SET last_heartbeat = GREATEST(last_heartbeat, CASE id ${part.map(() => 'WHEN ? THEN ?').join(' ')} END) WHERE id IN (${part.map(() => '?').join(', ')})`,
            [...part.flat(), ...part.map(([id]) => id)],
          ]);
        }
        for (const part of chunks(stmts, 8)) await this.write(part, false);
      },

      listTokens: async () => (await this.s.query<Array<TokenRow & RowDataPacket>>(TOKEN_SELECT)).map(tokenFromRow),
      putToken: async (rec) => void (await this.write([[`REPLACE INTO access_token ${TOKEN_UPSERT_VALUES}`, tokenArgs(rec)]])),

      appendEvent: async (e: NewEvent) => {
        const [r] = await this.write([[SQL.appendEvent, [e.type, e.namespace, e.service ?? null, e.instanceId ?? null, e.at, JSON.stringify(e.detail)]]]);
        return Number(r!.insertId);
      },
      pruneEvents: async (keep, olderThan) => {
        // Every node prunes; one at a time is enough, and the others must not queue on its row locks.
        const [got] = await this.s.query<RowDataPacket[]>('SELECT GET_LOCK(?, 0) AS got', [this.pruneLock]);
        if (Number(got?.['got']) !== 1) return 0;
        this.locks.push(this.pruneLock);
        let removed = 0;
        const [edge] = await this.s.query<RowDataPacket[]>(`SELECT id FROM event ORDER BY id DESC LIMIT 1 OFFSET ${Math.max(0, Math.floor(keep))}`);
        if (edge) removed += (await this.write([[`DELETE FROM event WHERE id <= ? ORDER BY id LIMIT ${PRUNE_CHUNK}`, [Number(edge['id'])]]], false))[0]!.affectedRows;
        // The newest event always stays: load() reads the last change number from it.
        const [top] = await this.s.query<RowDataPacket[]>('SELECT MAX(id) AS id FROM event');
        if (top?.['id'] != null) {
          removed += (await this.write([[`DELETE FROM event WHERE at < ? AND id < ? ORDER BY at LIMIT ${PRUNE_CHUNK}`, [olderThan, Number(top['id'])]]], false))[0]!.affectedRows;
        }
        return removed;
      },
    };
  }

  /** Writes the revision bumps of locked services and commits, in one round trip. */
  async commit(): Promise<void> {
    const stmts: Stmt[] = [];
    for (const { rec, dirty } of this.services.values()) {
      if (dirty) {
        stmts.push([SQL.updateService, [
          rec.comment, JSON.stringify(rec.metadata), rec.revision, rec.updatedAt, rec.verification?.secret ?? null, rec.verification?.path ?? null, rec.namespace, rec.name,
        ]]);
      }
    }
    if (stmts.length === 0) {
      await this.s.query('COMMIT');
      return;
    }
    await this.s.query(`${stmts.map(([sql]) => sql).join('; ')}; COMMIT`, stmts.flatMap(([, v]) => v));
  }

  /** Named locks are per connection, not per transaction: let them go once the transaction ended. */
  async releaseLocks(): Promise<void> {
    if (this.locks.length === 0 || this.s.connDead) return;
    for (const lock of this.locks.splice(0)) {
      await this.s.query('SELECT RELEASE_LOCK(?)', [lock]).catch(() => {});
    }
  }

  /**
   * Sends the statements of one write in one round trip, preceded by the operation's SAVEPOINT
   * when this is its first write; answers their results in order. A lone statement of a fixed
   * shape goes as a prepared statement (cached per connection), anything else as one text query.
   * The server stops at the first statement that fails; the caller rolls back to the savepoint.
   */
  private async write(stmts: readonly Stmt[], prepared = true): Promise<ResultSetHeader[]> {
    const sp = this.inOp && !this.savepointSent;
    if (sp) this.savepointSent = true;
    if (!sp && stmts.length === 1 && prepared) return [await this.s.execute<ResultSetHeader>(stmts[0]![0], stmts[0]![1])];
    const sql = [...(sp ? [`SAVEPOINT ${SAVEPOINT}`] : []), ...stmts.map(([q]) => q)].join('; ');
    const r = await this.s.query<ResultSetHeader | ResultSetHeader[]>(sql, stmts.flatMap(([, v]) => v));
    const all = Array.isArray(r) ? r : [r];
    return sp ? all.slice(1) : all;
  }

  /** Sets a cache entry (undefined: removes it), undoable by a savepoint rollback. */
  private remember<V>(map: Map<string, V>, key: string, value: V | undefined): void {
    if (this.inOp) {
      const had = map.has(key);
      const before = map.get(key);
      this.undo.push(() => (had ? map.set(key, before as V) : map.delete(key)));
    }
    if (value === undefined) map.delete(key);
    else map.set(key, value);
  }

  private rememberSeq(id: string, seq: number | undefined): void {
    this.remember(this.seqs, id, seq);
  }

  private forgetAbsent(key: string): void {
    if (!this.absent.delete(key)) return;
    if (this.inOp) this.undo.push(() => this.absent.add(key));
  }
}

/** The insert of an instance's metadata rows (none: no statement); seq undefined: LAST_INSERT_ID(). */
function metadataInsert(seq: number | undefined, metadata: Metadata): Stmt[] {
  const entries = Object.entries(metadata);
  if (entries.length === 0) return [];
  const owner = seq === undefined ? 'LAST_INSERT_ID()' : '?';
  return [[
    `INSERT INTO instance_metadata (instance_seq, \`key\`, value) VALUES ${entries.map(() => `(${owner}, ?, ?)`).join(', ')}`,
    entries.flatMap(([k, v]) => (seq === undefined ? [k, v] : [seq, k, v])),
  ]];
}

function svcKey(ns: string, name: string): string {
  return `${ns}\u0000${name}`;
}

function cloneService(r: ServiceRecord): ServiceRecord {
  return { ...r, metadata: { ...r.metadata } };
}

function isDuplicate(err: unknown): boolean {
  return err instanceof MusterError && (err.cause as { errno?: number } | undefined)?.errno === ER.DUP_ENTRY;
}

function quoteId(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}

function describe(err: unknown): string {
  const e = err as { code?: string; message?: string };
  if (e.code && e.message && !e.message.includes(e.code)) return `${e.code}: ${e.message}`;
  return e.message || e.code || String(err);
}

function destroy(conn: PoolConnection): void {
  try {
    conn.destroy();
    // destroy() ends the socket politely; a peer that stopped answering would keep it half open.
    (conn.connection as unknown as { stream?: { destroy?: () => void } }).stream?.destroy?.();
  } catch {
    /* already gone */
  }
}

/** Rejects when p takes longer than ms; p itself is left to settle (and its rejection swallowed). */
function bounded<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(Object.assign(new Error(`no answer within ${ms} ms`), { code: 'ETIMEDOUT' })), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e)),
    );
  });
}

function* chunks<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

function unique(items: readonly string[]): string[] {
  return [...new Set(items)];
}

function uniqueBy<T>(items: readonly T[], key: (t: T) => string): T[] {
  const seen = new Map<string, T>();
  for (const t of items) if (!seen.has(key(t))) seen.set(key(t), t);
  return [...seen.values()];
}

function nsFromRow(r: NsRow): NamespaceRecord {
  return { name: r.name, comment: r.comment, createdAt: Number(r.created_at), updatedAt: Number(r.updated_at) };
}

function svcFromRow(r: SvcRow): ServiceRecord {
  return {
    namespace: r.namespace, name: r.name, comment: r.comment, metadata: JSON.parse(r.metadata) as Metadata,
    revision: Number(r.revision), createdAt: Number(r.created_at), updatedAt: Number(r.updated_at),
    verification: r.verify_secret === null ? null : { secret: r.verify_secret, path: r.verify_path ?? LIMITS.verificationPath.default },
  };
}

/** Rows of INSTANCE_SELECT (one per metadata pair) folded into records, in first-seen order. */
function instancesFromJoinedRows(rows: InstanceRow[]): InstanceRecord[] {
  const out = new Map<string, InstanceRecord>();
  for (const r of rows) {
    let rec = out.get(r.id);
    if (!rec) out.set(r.id, (rec = instanceFromRow(r, {})));
    if (r.md_key != null) rec.metadata[r.md_key] = r.md_value ?? '';
  }
  return [...out.values()];
}

function instanceFromRow(r: InstanceRow, metadata: Metadata): InstanceRecord {
  const location: InstanceRecord['location'] = {};
  if (r.region !== null) location.region = r.region;
  if (r.zone !== null) location.zone = r.zone;
  if (r.campus !== null) location.campus = r.campus;
  return {
    id: r.id, namespace: r.namespace, service: r.service, host: r.host, port: Number(r.port), protocol: r.protocol, version: r.version,
    weight: Number(r.weight), priority: Number(r.priority), metadata, location, ttl: r.ttl == null ? 5 : Number(r.ttl),
    healthy: Number(r.healthy) === 1, isolate: Number(r.isolate) === 1,
    lastHeartbeat: Number(r.last_heartbeat), healthChangedAt: Number(r.health_changed_at), revision: Number(r.revision),
    createdAt: Number(r.created_at), updatedAt: Number(r.updated_at), tokenHash: r.token_hash,
    verification: { state: r.verify_state as VerificationState, reason: r.verify_reason, at: Number(r.verify_at) },
  };
}

function eventFromRow(r: EventRow): RegistryEvent {
  const e: RegistryEvent = { id: Number(r.id), type: r.type as EventType, namespace: r.namespace, at: iso(Number(r.at)), detail: JSON.parse(r.detail) as Record<string, unknown> };
  if (r.service !== null) e.service = r.service;
  if (r.instance_id !== null) e.instanceId = r.instance_id;
  return e;
}
