import { createConnection, createPool } from 'mysql2/promise';
import type { Connection, Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { EventType, Metadata, RegistryEvent } from '@muster/api';
import { Errors, MusterError } from '../../errors.js';
import type { InstanceRecord, NamespaceRecord, ServiceRecord, TokenRecord } from '../../model/records.js';
import { iso, sameMetadata } from '../../model/records.js';
import { markConflict, type EventFilter, type NewEvent, type RecordKeys, type Records, type Snapshot, type Store, type StoreTx, type TxHints, type TxOptions } from '../store.js';
import { eventWhere } from '../event-filter.js';
import { instanceFromRow, type InstanceRowFields } from '../instance-row.js';
import { namespaceFromRow as nsFromRow, serviceFromRow as svcFromRow, type NamespaceRowFields, type ServiceRowFields } from '../service-row.js';
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
/** A pooled connection idle longer than this is pinged before use (HikariCP's default bypass window). */
const IDLE_CHECK_MS = 500;
/** Rows deleted per criterion per pruneEvents call: one prune never holds a batch for long. */
const PRUNE_CHUNK = 20_000;
const SAVEPOINT = 'muster_op';
/** Session variables that hold the first change number of each event INSERT of a commit. */
const NUMBER_VAR = '@muster_ev';
/** Variables read back per SELECT at most. */
const VARS_PER_SELECT = 1000;

interface NsRow extends RowDataPacket, NamespaceRowFields {}
interface SvcRow extends RowDataPacket, ServiceRowFields {}
interface InstanceRow extends RowDataPacket, InstanceRowFields {
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

const INSTANCE_UPDATE_COLUMNS = INSTANCE_SET.split(', ').map((c) => c.replace(/ = \?$/, ''));

const SQL = {
  namespaces: 'SELECT name, comment, created_at, updated_at FROM namespace',
  getNamespace: 'SELECT name, comment, created_at, updated_at FROM namespace WHERE name = ?',
  insertNamespace: 'INSERT INTO namespace (name, comment, created_at, updated_at) VALUES (?, ?, ?, ?)',
  upsertNamespace: `INSERT INTO namespace (name, comment, created_at, updated_at) VALUES (?, ?, ?, ?)
    ON DUPLICATE KEY UPDATE comment = VALUES(comment), updated_at = VALUES(updated_at)`,
  deleteNamespace: 'DELETE FROM namespace WHERE name = ?',
  countServices: 'SELECT COUNT(*) AS n FROM service WHERE namespace = ?',
  // Read without a lock: a revision bump locks the row at commit, a change of its settings at once (lockService).
  getService: 'SELECT * FROM service WHERE namespace = ? AND name = ?',
  lockService: 'SELECT * FROM service WHERE namespace = ? AND name = ? FOR UPDATE',
  // The settings the write was decided on must still be the row's: else comment = NULL fails the
  // statement (strict sql_mode), and with it the commit, as a conflict (ER.BAD_NULL).
  bumpService: 'UPDATE service SET comment = IF(comment = ? AND metadata = ? AND verify_secret <=> ? AND verify_path <=> ?, comment, NULL), '
    + 'revision = GREATEST(revision, ?), updated_at = GREATEST(updated_at, ?) WHERE namespace = ? AND name = ?',
  insertService: 'INSERT INTO service (namespace, name, comment, metadata, revision, created_at, updated_at, verify_secret, verify_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
  // A revision never goes backwards, whatever order two nodes commit in.
  upsertService: `INSERT INTO service (namespace, name, comment, metadata, revision, created_at, updated_at, verify_secret, verify_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON DUPLICATE KEY UPDATE comment = VALUES(comment), metadata = VALUES(metadata), revision = GREATEST(revision, VALUES(revision)), updated_at = VALUES(updated_at),
      verify_secret = VALUES(verify_secret), verify_path = VALUES(verify_path)`,
  updateService: 'UPDATE service SET comment = ?, metadata = ?, verify_secret = ?, verify_path = ?, revision = GREATEST(revision, ?), updated_at = ? WHERE namespace = ? AND name = ?',
  deleteService: 'DELETE FROM service WHERE namespace = ? AND name = ?',
  getInstance: `${INSTANCE_SELECT} WHERE i.id = ? FOR UPDATE`,
  listInstances: `${INSTANCE_SELECT} WHERE i.namespace = ? AND i.service = ? FOR UPDATE`,
  // LAST_INSERT_ID(seq): the answer's insertId is the row's seq whether it was inserted or updated.
  upsertInstance: `INSERT INTO instance (${INSTANCE_COLUMNS}) VALUES (${INSTANCE_PLACEHOLDERS})
    ON DUPLICATE KEY UPDATE seq = LAST_INSERT_ID(seq), ${INSTANCE_UPDATE_COLUMNS.map((c) => `${c} = VALUES(${c})`).join(', ')}`,
  // Right after an instance upsert, LAST_INSERT_ID() is its seq (the child tables have no AUTO_INCREMENT).
  deleteMetadataLast: 'DELETE FROM instance_metadata WHERE instance_seq = LAST_INSERT_ID()',
  upsertHealthCheckLast: "INSERT INTO health_check (instance_seq, type, ttl) VALUES (LAST_INSERT_ID(), 'heartbeat', ?) ON DUPLICATE KEY UPDATE type = VALUES(type), ttl = VALUES(ttl)",
  deleteInstance: 'DELETE FROM instance WHERE id = ?',
  // The held-back writes of a transaction, at commit (see MysqlTx.instanceWrites).
  deleteInstances: 'DELETE FROM instance WHERE seq IN (?)',
  insertInstances: `INSERT INTO instance (${INSTANCE_COLUMNS})`,
  // Only rows this transaction holds locked: the insert part never happens.
  upsertInstances: `INSERT INTO instance (${INSTANCE_COLUMNS})`,
  upsertInstancesTail: ` ON DUPLICATE KEY UPDATE ${INSTANCE_UPDATE_COLUMNS.map((c) => `${c} = VALUES(${c})`).join(', ')}`,
  insertHealthChecks: 'INSERT INTO health_check (instance_seq, type, ttl)',
  upsertHealthChecks: 'INSERT INTO health_check (instance_seq, type, ttl)',
  upsertHealthChecksTail: ' ON DUPLICATE KEY UPDATE type = VALUES(type), ttl = VALUES(ttl)',
  deleteMetadataOf: 'DELETE FROM instance_metadata WHERE instance_seq IN (?)',
  insertMetadata: 'INSERT INTO instance_metadata (instance_seq, `key`, value)',
  // Events take their id (the change number) from AUTO_INCREMENT at commit.
  insertEvents: 'INSERT INTO event (type, namespace, service, instance_id, at, detail)',
  // Ids a rolled-back commit took: written as unused (type '') so followers need not wait for them.
  insertUnusedEvents: 'INSERT INTO event (id, type, namespace, service, instance_id, at, detail)',
  // A row written at once with a provisional revision gets the real one at commit.
  fixInstanceRevision: 'UPDATE instance SET revision = ? WHERE seq = ?',
  fixServiceRevision: 'UPDATE service SET revision = GREATEST(revision, ?) WHERE namespace = ? AND name = ?',
} as const;

/** MySQL error numbers the store answers as "retry" rather than as a bug. */
const ER = {
  BAD_NULL: 1048,
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
 * Every write transaction runs on one pooled connection at READ COMMITTED. Reads of an instance
 * inside it lock the row (SELECT ... FOR UPDATE), so two nodes changing the same instance take
 * turns instead of losing an update. A service row is locked first thing in the COMMIT when its
 * revision moves, at once when its settings change (see putService); its revision is written as
 * GREATEST(revision, new). What the database reports as a collision with
 * another node (a duplicate key from two nodes inserting the same new row, a deadlock, a lock
 * wait timeout, a foreign key another node just removed) answers MusterError UNAVAILABLE, which
 * callers retry, never an internal error.
 *
 * Time is bounded: a transaction, from asking for a connection to COMMIT, gets `writeTimeoutMs`;
 * past it the connection is dropped (and killed on the server, so its row locks go), and the
 * write answers UNAVAILABLE. An unreachable database costs a caller at most that long.
 *
 * Round trips (and statements) are what a MySQL transaction costs, so a batch of writes costs
 * at most two, not a few per write: one round trip starts the transaction, reads and locks what
 * the batch's hints name (less what the node's index vouches for); the writes then run against
 * what the transaction knows, and what they wrote goes with the COMMIT as multi-row statements,
 * its events first, which is where they take their change numbers (see MysqlTx). A batch of
 * registrations of new instances into services the index holds is one round trip, whatever its
 * size. A collision found at commit fails the transaction with an error marked by
 * markConflict, and the batcher re-runs the writes one per transaction.
 */
export class MysqlStore implements Store {
  readonly kind = 'mysql';
  private readonly target: MysqlTarget;
  private readonly poolSize: number;
  private readonly writeTimeoutMs: number;
  private pool: Pool | undefined;
  private readonly pruneLock: string;
  /**
   * Core connections whose session settings are made, with the distance between the
   * AUTO_INCREMENT ids of one multi-row INSERT where the server hands them out consecutively
   * (innodb_autoinc_lock_mode 0 or 1: the session's auto_increment_increment); 0 where they may
   * interleave with other sessions' (mode 2).
   */
  private readonly initialized = new WeakMap<object, number>();

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
    // As HikariCP does: a connection that sat idle is checked before it is handed out. A
    // transaction may be a single round trip, COMMIT included, and one the database dropped
    // meanwhile would fail it with its outcome unknown; here it is simply dropped for another.
    if (Date.now() - (conn.connection as unknown as { lastActiveTime: number }).lastActiveTime > IDLE_CHECK_MS) {
      try {
        await s.run(conn.ping());
      } catch (err) {
        s.end();
        if (s.connDead && Date.now() < deadline) return this.session(deadline);
        throw err;
      }
    }
    let step = this.initialized.get(conn.connection);
    if (step === undefined) {
      try {
        // Row locks are waited for no longer than a write may take in all.
        const lockWait = Math.max(1, Math.ceil(this.writeTimeoutMs / 1000));
        // A fixed sql_mode also keeps the driver's escaping right (no NO_BACKSLASH_ESCAPES).
        const r = await s.query<RowDataPacket[][]>(`SET SESSION innodb_lock_wait_timeout = ${lockWait}, SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'; `
          + 'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED; '
          + 'SELECT @@innodb_autoinc_lock_mode AS lock_mode, @@auto_increment_increment AS inc');
        const row = r[2]![0]!;
        step = Number(row['lock_mode']) <= 1 ? Math.max(1, Number(row['inc'])) : 0;
      } catch (err) {
        s.end();
        throw err;
      }
      this.initialized.set(conn.connection, step);
    }
    s.step = step;
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
      case ER.BAD_NULL:
        // Only ever the guard of a revision bump (SQL.bumpService): every value written is set.
        return { error: Errors.storeRetry('another node changed the service\'s settings at the same time: concurrent write', err), txDead: false, connDead: false };
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
    // Change numbers a failed commit left unused (type '') are no events; only a follower asks for them.
    const only = f.withUnused ? where : where ? `${where} AND type <> ''` : "WHERE type <> ''";
    const limit = Math.max(0, Math.floor(f.limit));
    const sql = `SELECT * FROM event ${only} ORDER BY id ${f.newestFirst ? 'DESC' : 'ASC'} LIMIT ${limit}`;
    const s = await this.session(Date.now() + this.writeTimeoutMs);
    try {
      return (await s.query<EventRow[]>(sql, args)).map(eventFromRow);
    } finally {
      s.end();
    }
  }

  // ---- writes -------------------------------------------------------------------------------

  /** A connection in a started transaction, with what the hints name read (and locked) ahead. */
  private async begin(deadline: number, hints: TxHints | undefined): Promise<MysqlTx> {
    for (let attempt = 1; ; attempt++) {
      let s: Session | undefined;
      try {
        s = await this.session(deadline);
        const tx = new MysqlTx(s, this.pruneLock, hints);
        await tx.open();
        return tx;
      } catch (err) {
        await s?.rollback();
        s?.end();
        // A pooled connection the server dropped while it sat idle: nothing was done yet, so one
        // more try on a fresh connection.
        if (attempt >= 2 || !(err instanceof MusterError) || Date.now() >= deadline || !s?.connDead) throw collided(err) ? markConflict(err as Error, deadline) : err;
      }
    }
  }

  async transaction<T>(fn: (tx: StoreTx) => Promise<T>, opts: TxOptions = {}): Promise<T> {
    const deadline = Math.min(Date.now() + this.writeTimeoutMs, opts.deadline ?? Infinity);
    const tx = await this.begin(deadline, opts.hints);
    const s = tx.session;
    try {
      const result = await fn(tx.api);
      await tx.commit(opts.onCommitting, opts.onNumbered);
      return result;
    } catch (err) {
      await s.rollback();
      await tx.leaveUnused();
      // Held-back writes of several operations failed together: the batcher re-runs them apart.
      throw collided(err) ? markConflict(err as Error, deadline) : err;
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
  private startDeferred = false;

  /** See MysqlStore.initialized. */
  step = 0;

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

  /**
   * The transaction starts with the next statement sent, in its round trip: a transaction that
   * has nothing to read first is then one round trip in all, START TRANSACTION to COMMIT.
   */
  deferStart(): void {
    this.startDeferred = true;
  }

  /** A prepared statement (cached per connection by the driver): for the fixed statements. */
  async execute<T extends RowDataPacket[] | ResultSetHeader>(sql: string, values: Array<string | number | null>): Promise<T> {
    if (this.dead) throw this.dead;
    // A prepared statement goes alone: the deferred start is a round trip of its own here.
    if (this.startDeferred) await this.query('START TRANSACTION');
    const [rows] = await this.run(this.conn.execute<T>(sql, values));
    return rows;
  }

  /**
   * A text-protocol query, values escaped by the driver (the session's sql_mode is fixed, so
   * escaping is right): for control, variable-shape and multi-statement writes.
   */
  async query<T extends RowDataPacket[] | RowDataPacket[][] | ResultSetHeader | ResultSetHeader[]>(sql: string, values?: unknown[]): Promise<T> {
    if (this.dead) throw this.dead;
    if (this.startDeferred) {
      this.startDeferred = false;
      if (sql !== 'START TRANSACTION') {
        // Answered as the statements alone would be: without the start's result.
        const [all] = await this.run(this.conn.query<RowDataPacket[][]>(`START TRANSACTION; ${sql}`, values));
        const rest = (all as unknown[]).slice(1);
        return (rest.length === 1 ? rest[0] : rest) as T;
      }
    }
    const [rows] = await this.run(this.conn.query<T>(sql, values));
    return rows;
  }

  /**
   * Ends the transaction on a connection that is still there, also when it cannot go on: after a
   * lock wait or statement timeout the server rolled back only the statement, and a connection
   * handed back with the rest open would commit it with the next START TRANSACTION.
   */
  async rollback(): Promise<void> {
    if (this.connDead) return;
    // Never started on the server: nothing to end.
    if (this.startDeferred) {
      this.startDeferred = false;
      return;
    }
    try {
      await Promise.race([this.conn.query('ROLLBACK'), this.aborted]);
      // The transaction is over: the connection takes statements again.
      this.dead = undefined;
      this.txDead = false;
    } catch (err) {
      this.fail(this.store.classify(err));
    }
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

/**
 * A service row as this transaction knows it. `dirty`: 'bump' when only its revision (and
 * updatedAt) moved, 'full' when its settings changed too. `locked`: the row is locked already;
 * one that is not gets locked first thing in the COMMIT, before the events take their numbers.
 */
type CachedService = { rec: ServiceRecord; dirty: false | 'bump' | 'full'; locked: boolean };
/** A value of a statement; `toSqlString` is SQL the driver splices in as it is (only ever an expression of ours). */
type Value = string | number | null | ReadonlyArray<string | number> | { toSqlString(): string };
/** One statement: SQL with ? placeholders (an array value expands to a list) and its values. */
type Stmt = readonly [sql: string, values: Value[]];

/**
 * An instance whose row this transaction knows: `db` as the database holds it now, in this
 * transaction, and `want` as the released operations left it, written at commit (null: no row).
 */
interface KnownInstance {
  db: InstanceRecord | null;
  want: InstanceRecord | null;
  /** The row's seq while it exists. */
  seq: number | undefined;
}

/**
 * One write transaction's operations. Round trips are what a MySQL transaction costs, so the
 * writes of a whole batch go to the server together, at commit:
 * - What the hints name is read in the round trip that starts the transaction: namespaces,
 *   services and instances (the instances locked, FOR UPDATE). What the index vouched for
 *   (TxHints.indexed) is taken unread; with nothing left to read, the start goes with the next
 *   statement sent, and a batch of registrations is one round trip, START TRANSACTION to COMMIT.
 * - appendEvent answers a provisional number (-1, -2, ...). The events are inserted at commit,
 *   where AUTO_INCREMENT numbers them, after every lock the transaction takes: a row's revision
 *   only ever grows, and two transactions bumping one service take its numbers in the order
 *   they commit. Nothing is reserved ahead, so a write that fails takes no number; the batcher
 *   learns the real numbers (TxOptions.onNumbered) before anyone sees the records.
 * - Reads answer from what the transaction knows; a miss is a round trip of its own.
 * - Events, and the writes of instances whose row is known (read here, or known to be absent),
 *   are held back and sent with the COMMIT as multi-row statements, together with the service
 *   revision bumps. A held-back write of an operation that fails is simply dropped, so its
 *   savepoint is only sent to the server with a write that goes at once (namespaces, new
 *   services, deletes of services, heartbeats, writes of unknown rows).
 * What fails at commit fails the whole transaction; a collision with another node there (a
 * duplicate key) is marked with markConflict, and the batcher re-runs the writes one by one.
 */
class MysqlTx {
  private readonly namespaces = new Map<string, NamespaceRecord>();
  private readonly services = new Map<string, CachedService>();
  /** Namespaces ('n:') and services ('s:') read as absent: an insert of those must not overwrite a row another node inserted since. */
  private readonly absent = new Set<string>();
  private readonly known = new Map<string, KnownInstance>();
  /** The running operation's instance writes, on top of `known` until it is released. */
  private readonly opWants = new Map<string, InstanceRecord | null>();
  private undo: Array<() => void> = [];
  private inOp = false;
  private savepointSent = false;
  private readonly locks: string[] = [];

  /** Provisional change numbers handed out (-1, -2, ...): the real ones are known at commit. */
  private provisional = 0;
  /** Events of released operations, by provisional number (a Map keeps them in order). */
  private readonly events = new Map<number, NewEvent>();
  private opEvents: Array<[number, NewEvent]> = [];
  /** Rows written at once with a provisional revision: set to the real one at commit. */
  private readonly fixups: Stmt[] = [];
  /** The event INSERTs of the commit: each one's session variable and provisional numbers. */
  private groups: Array<{ variable: string; numbers: number[] }> = [];
  /** Provisional number -> [group, position in it], once the commit is built. */
  private readonly placed = new Map<number, readonly [number, number]>();
  readonly api: StoreTx;

  constructor(readonly session: Session, private readonly pruneLock: string, private readonly hints: TxHints | undefined) {
    const s = session;
    // A plain object of closures: the batcher spreads it to wrap some methods.
    this.api = {
      savepoint: async () => {
        // Sent with the operation's first write that goes at once: most send none.
        this.inOp = true;
        this.savepointSent = false;
        this.undo = [];
        this.opWants.clear();
        this.opEvents = [];
      },
      releaseSavepoint: async () => {
        // Nothing to send: the next SAVEPOINT of the same name replaces this one.
        for (const [id, want] of this.opWants) this.known.get(id)!.want = want;
        for (const [id, e] of this.opEvents) this.events.set(id, e);
        this.endOp();
      },
      rollbackToSavepoint: async () => {
        const sent = this.savepointSent;
        for (let i = this.undo.length - 1; i >= 0; i--) this.undo[i]!();
        // Its held-back writes and its events are dropped.
        this.endOp();
        if (sent) await s.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
        // Nothing written, but the transaction is gone (a deadlock): the whole batch fails.
        else if (s.dead) throw s.dead;
      },

      getNamespace: async (name) => {
        const cached = this.namespaces.get(name);
        if (cached) return { ...cached };
        if (this.absent.has(`n:${name}`)) return undefined;
        const [row] = await s.execute<NsRow[]>(SQL.getNamespace, [name]);
        if (!row) {
          this.absent.add(`n:${name}`);
          return undefined;
        }
        const rec = nsFromRow(row);
        this.namespaces.set(name, rec);
        return { ...rec };
      },
      putNamespace: async (rec) => {
        const insert = this.absent.has(`n:${rec.name}`);
        try {
          await this.write([[insert ? SQL.insertNamespace : SQL.upsertNamespace, [rec.name, rec.comment, rec.createdAt, rec.updatedAt]]]);
        } catch (err) {
          // Two nodes creating one namespace: the second learns it exists, as on one node (and
          // this transaction's next read of it asks the database again).
          if (insert && isDuplicate(err)) {
            this.absent.delete(`n:${rec.name}`);
            throw Errors.namespaceExists(rec.name);
          }
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
        const [row] = await s.execute<RowDataPacket[]>(SQL.countServices, [ns]);
        return Number(row?.['n'] ?? 0);
      },

      getService: async (ns, name) => {
        const key = svcKey(ns, name);
        const cached = this.services.get(key);
        if (cached) return cloneService(cached.rec);
        if (this.absent.has(`s:${key}`)) return undefined;
        const [row] = await s.execute<SvcRow[]>(SQL.getService, [ns, name]);
        if (!row) {
          this.absent.add(`s:${key}`);
          return undefined;
        }
        const rec = svcFromRow(row);
        this.services.set(key, { rec, dirty: false, locked: false });
        return cloneService(rec);
      },
      putService: async (rec) => {
        const key = svcKey(rec.namespace, rec.name);
        const cached = this.services.get(key);
        if (cached) {
          // Written once, at commit. A revision bump needs no lock before then; a change of the
          // settings must not overwrite one another node made since the row was read.
          const next = cloneService(rec);
          next.revision = newer(next.revision, cached.rec.revision);
          const settings = cached.dirty === 'full' || !sameSettings(next, cached.rec);
          if (settings && !cached.locked) {
            const [row] = await s.execute<SvcRow[]>(SQL.lockService, [rec.namespace, rec.name]);
            if (!row || !sameSettings(svcFromRow(row), cached.rec)) throw Errors.storeRetry('another node changed the service at the same time: concurrent write', undefined);
          }
          this.remember(this.services, key, { rec: next, dirty: settings ? 'full' : 'bump', locked: cached.locked || settings });
          return;
        }
        // A provisional revision is not a number yet: 0 now (GREATEST keeps what the row has), the real one at commit.
        const args = [
          rec.namespace, rec.name, rec.comment, JSON.stringify(rec.metadata), Math.max(0, rec.revision), rec.createdAt, rec.updatedAt,
          rec.verification?.secret ?? null, rec.verification?.path ?? null,
        ];
        if (rec.revision < 0) this.fixup([SQL.fixServiceRevision, [this.number(rec.revision), rec.namespace, rec.name]]);
        if (this.absent.has(`s:${key}`)) {
          try {
            await this.write([[SQL.insertService, args]]);
          } catch (err) {
            // Another node created it since it was read (two registrations creating one service):
            // a collision, so the write runs again, and that run reads the row.
            if (isDuplicate(err)) {
              this.absent.delete(`s:${key}`);
              throw markConflict(err as Error, this.session.deadline);
            }
            throw err;
          }
          this.remember(this.services, key, { rec: cloneService(rec), dirty: false, locked: true });
          this.forgetAbsent(`s:${key}`);
        } else {
          // Not read here: GREATEST may have kept a newer revision, so the next read asks the database.
          await this.write([[SQL.upsertService, args]]);
        }
      },
      deleteService: async (ns, name) => {
        // The rows of its instances deleted in this transaction go first (they are held back
        // otherwise); any other instance row still there makes the delete fail, as it should.
        const gone: string[] = [];
        for (const [id, k] of this.known) {
          if (k.db && k.db.namespace === ns && k.db.service === name && this.current(id) === null) gone.push(id);
        }
        const seqs = gone.map((id) => this.known.get(id)!.seq!);
        await this.write([...chunkedStmts(seqs, (part) => [SQL.deleteInstances, [part]]), [SQL.deleteService, [ns, name]]], false);
        for (const id of gone) this.gone(id);
        this.remember(this.services, svcKey(ns, name), undefined);
      },

      getInstance: async (id) => {
        const k = this.known.get(id);
        if (k) {
          const cur = this.current(id);
          return cur ? cloneInstance(cur) : undefined;
        }
        const [rec] = instancesWithSeq(await s.execute<InstanceRow[]>(SQL.getInstance, [id]));
        this.known.set(id, { db: rec?.rec ?? null, want: rec?.rec ?? null, seq: rec?.seq });
        return rec ? cloneInstance(rec.rec) : undefined;
      },
      putInstance: async (rec, prev) => {
        if (this.known.has(rec.id) || prev === null) {
          // Known, or known by the caller not to exist: held back until the commit. A row
          // another node inserted meanwhile is a duplicate key there (retry), never taken over.
          if (!this.known.has(rec.id)) this.addKnown(rec.id, null, undefined);
          this.setWant(rec.id, cloneInstance(rec));
          return;
        }
        // Nothing known: upsert now (LAST_INSERT_ID(seq) names the row either way) and rewrite every child row.
        const [r] = await this.write([
          [SQL.upsertInstance, instanceRow(rec, (n) => Math.max(0, n))],
          [SQL.deleteMetadataLast, []],
          ...metadataInsertLast(rec.metadata),
          [SQL.upsertHealthCheckLast, [rec.ttl]],
        ], false);
        const seq = Number(r!.insertId);
        if (rec.revision < 0) this.fixup([SQL.fixInstanceRevision, [this.number(rec.revision), seq]]);
        this.addKnown(rec.id, cloneInstance(rec), seq);
      },
      deleteInstance: async (id) => {
        if (this.known.has(id)) {
          this.setWant(id, null);
          return;
        }
        await this.write([[SQL.deleteInstance, [id]]]);
        this.addKnown(id, null, undefined);
      },
      listInstanceIds: async (ns, svc) => {
        // Every row of the service, locked and known from here on; then what this transaction made of them.
        for (const { rec, seq } of instancesWithSeq(await s.query<InstanceRow[]>(SQL.listInstances, [ns, svc]))) {
          if (!this.known.has(rec.id)) this.known.set(rec.id, { db: rec, want: rec, seq });
        }
        const ids: string[] = [];
        for (const id of this.known.keys()) {
          const cur = this.current(id);
          if (cur && cur.namespace === ns && cur.service === svc) ids.push(id);
        }
        return ids;
      },
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
        // What this transaction holds of those rows, held-back writes included, gets the time too.
        for (const [id, at] of newest) {
          const k = this.known.get(id);
          for (const r of [k?.db, k?.want, this.opWants.get(id)]) if (r) r.lastHeartbeat = Math.max(r.lastHeartbeat, at);
        }
      },

      listTokens: async () => (await this.session.query<Array<TokenRow & RowDataPacket>>(TOKEN_SELECT)).map(tokenFromRow),
      putToken: async (rec) => void (await this.write([[`REPLACE INTO access_token ${TOKEN_UPSERT_VALUES}`, tokenArgs(rec)]])),

      appendEvent: async (e: NewEvent) => {
        // Numbered at commit, under every lock the transaction takes (see MysqlTx).
        const n = -++this.provisional;
        if (this.inOp) this.opEvents.push([n, e]);
        else this.events.set(n, e);
        return n;
      },
      pruneEvents: async (keep, olderThan) => {
        // Every node prunes; one at a time is enough, and the others must not queue on its row locks.
        const [got] = await s.query<RowDataPacket[]>('SELECT GET_LOCK(?, 0) AS got', [this.pruneLock]);
        if (Number(got?.['got']) !== 1) return 0;
        this.locks.push(this.pruneLock);
        let removed = 0;
        const [edge] = await s.query<RowDataPacket[]>(`SELECT id FROM event ORDER BY id DESC LIMIT 1 OFFSET ${Math.max(0, Math.floor(keep))}`);
        if (edge) removed += (await this.write([[`DELETE FROM event WHERE id <= ? ORDER BY id LIMIT ${PRUNE_CHUNK}`, [Number(edge['id'])]]], false))[0]!.affectedRows;
        // The newest event always stays: load() reads the last change number from it.
        const [top] = await s.query<RowDataPacket[]>('SELECT MAX(id) AS id FROM event');
        if (top?.['id'] != null) {
          removed += (await this.write([[`DELETE FROM event WHERE at < ? AND id < ? ORDER BY at LIMIT ${PRUNE_CHUNK}`, [olderThan, Number(top['id'])]]], false))[0]!.affectedRows;
        }
        return removed;
      },
    };
  }

  /**
   * Starts the transaction, in one round trip with what the hints name: namespaces and services
   * read, instances read and locked.
   */
  async open(): Promise<void> {
    const h = this.hints;
    // What the index vouched for is not read: the commit fails where it was no longer so (a
    // service's settings: bumpService; an instance that exists after all: a duplicate key).
    // (A batch's writes name the same few namespaces and services many times over.)
    for (const ns of h?.indexed?.namespaces ?? []) if (!this.namespaces.has(ns.name)) this.namespaces.set(ns.name, { ...ns });
    for (const svc of h?.indexed?.services ?? []) {
      const key = svcKey(svc.namespace, svc.name);
      if (!this.services.has(key)) this.services.set(key, { rec: cloneService(svc), dirty: false, locked: false });
    }
    for (const id of h?.indexed?.absentInstances ?? []) this.known.set(id, { db: null, want: null, seq: undefined });
    const stmts: Stmt[] = [['START TRANSACTION', []]];
    const parse: Array<(rows: RowDataPacket[]) => void> = [() => {}];
    const namespaces = unique(h?.namespaces ?? []).filter((n) => !this.namespaces.has(n));
    if (namespaces.length) {
      stmts.push([`${SQL.namespaces} WHERE name IN (?)`, [namespaces]]);
      parse.push((rows) => {
        for (const r of rows as NsRow[]) this.namespaces.set(r.name, nsFromRow(r));
        for (const n of namespaces) if (!this.namespaces.has(n)) this.absent.add(`n:${n}`);
      });
    }
    const services = uniqueBy(h?.services ?? [], ([ns, name]) => svcKey(ns, name)).filter(([ns, name]) => !this.services.has(svcKey(ns, name)));
    if (services.length) {
      stmts.push([`SELECT * FROM service WHERE ${services.map(() => '(namespace = ? AND name = ?)').join(' OR ')}`, services.flat()]);
      parse.push((rows) => {
        for (const r of rows as SvcRow[]) this.services.set(svcKey(r.namespace, r.name), { rec: svcFromRow(r), dirty: false, locked: false });
        for (const [ns, name] of services) if (!this.services.has(svcKey(ns, name))) this.absent.add(`s:${svcKey(ns, name)}`);
      });
    }
    const instances = unique(h?.instances ?? []).filter((id) => !this.known.has(id));
    if (instances.length) {
      stmts.push([`${INSTANCE_SELECT} WHERE i.id IN (?) FOR UPDATE`, [instances]]);
      parse.push((rows) => {
        for (const { rec, seq } of instancesWithSeq(rows as InstanceRow[])) this.known.set(rec.id, { db: rec, want: rec, seq });
        for (const id of instances) if (!this.known.has(id)) this.known.set(id, { db: null, want: null, seq: undefined });
      });
    }
    if (stmts.length === 1) return this.session.deferStart();
    const results = await this.session.query<RowDataPacket[] | ResultSetHeader>(stmts.map(([q]) => q).join('; '), valuesOf(stmts));
    const all = stmts.length === 1 ? [results] : (results as unknown as RowDataPacket[][]);
    parse.forEach((p, i) => p(all[i] as RowDataPacket[]));
  }

  /**
   * A provisional change number as SQL: the real one, read at commit from the session variable
   * of its event's INSERT. Only ever formatted into the commit's statements, once `placed`.
   */
  private number(n: number): Value {
    if (n >= 0) return n;
    return {
      toSqlString: () => {
        const [g, i] = this.placed.get(n)!;
        const step = this.session.step;
        return i === 0 ? `${NUMBER_VAR}${g}` : `(${NUMBER_VAR}${g} + ${i * step})`;
      },
    };
  }

  /** A statement for the commit that sets a provisional number written at once; dropped with its operation. */
  private fixup(stmt: Stmt): void {
    this.fixups.push(stmt);
    if (this.inOp) this.undo.push(() => void this.fixups.splice(this.fixups.indexOf(stmt), 1));
  }

  /** What the transaction holds for an instance now (null: deleted or absent; undefined: unknown). */
  private current(id: string): InstanceRecord | null | undefined {
    if (this.inOp && this.opWants.has(id)) return this.opWants.get(id);
    return this.known.get(id)?.want;
  }

  private setWant(id: string, want: InstanceRecord | null): void {
    if (this.inOp) this.opWants.set(id, want);
    else this.known.get(id)!.want = want;
  }

  /** The row as written at once: undone with the operation, after which it is unknown again. */
  private addKnown(id: string, db: InstanceRecord | null, seq: number | undefined): void {
    this.known.set(id, { db, want: db, seq });
    if (this.inOp) this.undo.push(() => this.known.delete(id));
  }

  /** The row is gone from the database (deleted with its service). */
  private gone(id: string): void {
    const k = this.known.get(id)!;
    const { db, seq } = k;
    k.db = null;
    k.seq = undefined;
    if (this.inOp) this.undo.push(() => ((k.db = db), (k.seq = seq)));
  }

  private endOp(): void {
    this.inOp = false;
    this.savepointSent = false;
    this.undo = [];
    this.opWants.clear();
    this.opEvents = [];
  }

  /**
   * The events, the held-back writes, the revision bumps of locked services and COMMIT: one
   * round trip unless it is large. The events go first and take their change numbers there,
   * from the event table's AUTO_INCREMENT, after every lock the transaction holds; each INSERT's
   * first id is kept in a session variable that the statements after it name for the revisions
   * they write, and that is read back at the end. `sent` is told once the first of it is on the
   * wire: every row lock this transaction takes has been asked for before anything another
   * transaction sends after that. `numbered` is told how provisional numbers map to real ones.
   */
  async commit(sent?: () => void, numbered?: (renumber: (n: number) => number) => void): Promise<void> {
    // Services whose revision moves are locked before anything takes a number: two transactions
    // bumping one service number their events in the order they commit.
    const toLock = [...this.services.values()].filter((c) => c.dirty && !c.locked).map((c) => [c.rec.namespace, c.rec.name]);
    const events = this.eventInserts();
    const stmts: Stmt[] = [
      // Cleared first, whatever fails next: a failed commit is told apart from one that took numbers (see leaveUnused).
      ...chunkedStmts(this.groups.map((x) => x.variable), (vars) => [`SET ${vars.map((v) => `${v} = NULL`).join(', ')}`, []]),
      ...(toLock.length ? [[`SELECT 1 FROM service WHERE ${toLock.map(() => '(namespace = ? AND name = ?)').join(' OR ')} FOR UPDATE`, toLock.flat()] as Stmt] : []),
      ...events, ...this.fixups, ...this.instanceWrites(),
    ];
    for (const { rec, dirty } of this.services.values()) {
      if (dirty === 'bump') stmts.push([SQL.bumpService, [...settingsOf(rec), this.number(rec.revision), rec.updatedAt, rec.namespace, rec.name]]);
      else if (dirty === 'full') {
        stmts.push([SQL.updateService, [...settingsOf(rec), this.number(rec.revision), rec.updatedAt, rec.namespace, rec.name]]);
      }
    }
    const firstRead = stmts.length;
    stmts.push(...this.readNumbers());
    const queries = packQueries(stmts);
    const results: unknown[] = [];
    for (let i = 0; i < queries.length; i++) {
      const part = queries[i]!;
      const last = i === queries.length - 1;
      const sql = [...part.map(([q]) => q), ...(last ? ['COMMIT'] : [])].join('; ');
      const answered = this.session.query<RowDataPacket[][]>(sql, valuesOf(part));
      if (i === 0) sent?.();
      const r = await answered;
      results.push(...(part.length + (last ? 1 : 0) === 1 ? [r] : r));
    }
    if (this.groups.length === 0) return;
    const firsts = results.slice(firstRead, firstRead + Math.ceil(this.groups.length / VARS_PER_SELECT))
      .flatMap((rows) => Object.values((rows as RowDataPacket[])[0]!).map(Number));
    const step = this.session.step;
    numbered?.((n) => {
      if (n >= 0) return n;
      const [g, i] = this.placed.get(n)!;
      return firsts[g]! + i * step;
    });
  }

  /**
   * The events of the released operations as INSERTs that take their ids from AUTO_INCREMENT,
   * each followed by keeping its first id. The ids of one INSERT are consecutive (by the
   * session's auto_increment_increment) where the server hands them out together (lock modes 0
   * and 1); in interleaved mode (2) every event is an INSERT of its own.
   */
  private eventInserts(): Stmt[] {
    const rows = [...this.events].map(([n, e]) => ({ n, row: [e.type, e.namespace, e.service ?? null, e.instanceId ?? null, e.at, JSON.stringify(e.detail)] as Value[] }));
    const parts = this.session.step > 0 ? rowGroups(rows.map((r) => r.row)) : rows.map((_, i) => [i, i + 1] as const);
    this.groups = parts.map(([from, to], g) => ({ variable: `${NUMBER_VAR}${g}`, numbers: rows.slice(from, to).map((r) => r.n) }));
    this.placed.clear();
    this.groups.forEach(({ numbers }, g) => numbers.forEach((n, i) => this.placed.set(n, [g, i])));
    const out: Stmt[] = [];
    parts.forEach(([from, to], g) => {
      out.push([`${SQL.insertEvents} VALUES ${Array(to - from).fill('(?, ?, ?, ?, ?, ?)').join(', ')}`, concat(rows.slice(from, to).map((r) => r.row))]);
      out.push([`SET ${this.groups[g]!.variable} = LAST_INSERT_ID()`, []]);
    });
    return out;
  }

  /** SELECTs of the variables that hold the first id of each event INSERT. */
  private readNumbers(): Stmt[] {
    return [...chunks(this.groups.map((x) => x.variable), VARS_PER_SELECT)].map((vars): Stmt => [`SELECT ${vars.join(', ')}`, []]);
  }

  /** From what the database holds to what the released operations want, as multi-row statements. */
  private instanceWrites(): Stmt[] {
    const deleted: number[] = [];
    const inserted: InstanceRecord[] = [];
    const updated: InstanceRecord[] = [];
    const oldMetadata: number[] = [];
    const newMetadata: Value[][] = [];
    const newTtl: Value[][] = [];
    for (const { db, want, seq } of this.known.values()) {
      if (db === want) continue;
      if (!want) deleted.push(seq!);
      else if (!db) inserted.push(want);
      else {
        updated.push(want);
        if (!sameMetadata(db.metadata, want.metadata)) {
          oldMetadata.push(seq!);
          for (const [k, v] of Object.entries(want.metadata)) newMetadata.push([seq!, k, v]);
        }
        if (db.ttl !== want.ttl) newTtl.push([seq!, want.ttl]);
      }
    }
    return [
      ...chunkedStmts(deleted, (seqs) => [SQL.deleteInstances, [seqs]]),
      ...this.instanceInserts(inserted),
      ...multiRow(SQL.upsertInstances, `(${INSTANCE_PLACEHOLDERS})`, updated.map((r) => instanceRow(r, this.numberOf)), SQL.upsertInstancesTail),
      ...chunkedStmts(oldMetadata, (seqs) => [SQL.deleteMetadataOf, [seqs]]),
      ...multiRow(SQL.insertMetadata, '(?, ?, ?)', newMetadata),
      ...multiRow(SQL.upsertHealthChecks, "(?, 'heartbeat', ?)", newTtl, SQL.upsertHealthChecksTail),
    ];
  }

  /**
   * New instance rows with their child rows, which name the new seq through LAST_INSERT_ID():
   * the first id of a multi-row INSERT, the others following it by the step when the server
   * hands them out consecutively; one row per INSERT when it may not.
   */
  private instanceInserts(recs: InstanceRecord[]): Stmt[] {
    const step = this.session.step;
    const out: Stmt[] = [];
    const rows = recs.map((r) => instanceRow(r, this.numberOf));
    for (const part of step > 0 ? rowGroups(rows) : recs.map((_, i) => [i, i + 1] as const)) {
      const [from, to] = part;
      const group = recs.slice(from, to);
      const seq = (i: number) => (i === 0 ? 'LAST_INSERT_ID()' : `LAST_INSERT_ID() + ${i * step}`);
      out.push([`${SQL.insertInstances} VALUES ${group.map(() => `(${INSTANCE_PLACEHOLDERS})`).join(', ')}`, concat(rows.slice(from, to))]);
      out.push([`${SQL.insertHealthChecks} VALUES ${group.map((_, i) => `(${seq(i)}, 'heartbeat', ?)`).join(', ')}`, group.map((r) => r.ttl)]);
      const md = group.flatMap((r, i) => Object.entries(r.metadata).map(([k, v]): Value[] => [seq(i), k, v]));
      for (const [a, b] of rowGroups(md)) {
        const rows = md.slice(a, b);
        out.push([`${SQL.insertMetadata} VALUES ${rows.map(([at]) => `(${at as string}, ?, ?)`).join(', ')}`, rows.flatMap(([, k, v]) => [k!, v!])]);
      }
    }
    return out;
  }

  private readonly numberOf = (n: number): Value => this.number(n);

  /**
   * After a rollback: AUTO_INCREMENT never hands an id out twice, rolled back or not, so the ids
   * the failed commit's event INSERTs took (their first ones are still in the session
   * variables) are written as unused rows, committed at once: followers skip them rather than
   * wait for them as for a gap. Best effort: where it cannot be done, they are a gap, waited for
   * a while and then given up. A transaction that failed before its commit took no ids.
   */
  async leaveUnused(): Promise<void> {
    if (this.groups.length === 0 || this.session.connDead) return;
    try {
      const firsts: Array<number | null> = [];
      for (const [sql] of this.readNumbers()) {
        const [row] = await this.session.query<RowDataPacket[]>(sql);
        firsts.push(...Object.values(row!).map((v) => (v === null ? null : Number(v))));
      }
      const step = this.session.step;
      const ids = this.groups.flatMap((g, i) => (firsts[i] == null ? [] : g.numbers.map((_, k) => firsts[i]! + k * step)));
      const now = Date.now();
      for (const [sql, values] of multiRow(SQL.insertUnusedEvents, "(?, '', '', NULL, NULL, ?, '{}')", ids.map((id) => [id, now]))) {
        await this.session.query(sql, values);
      }
    } catch {
      // A gap, as after any rollback the server did not let us follow up on.
    }
  }

  /** Named locks are per connection, not per transaction: let them go once the transaction ended. */
  async releaseLocks(): Promise<void> {
    if (this.locks.length === 0 || this.session.connDead) return;
    for (const lock of this.locks.splice(0)) {
      await this.session.query('SELECT RELEASE_LOCK(?)', [lock]).catch(() => {});
    }
  }

  /**
   * Sends statements that go at once, in one round trip, preceded by the operation's SAVEPOINT
   * when this is its first; answers their results in order. A lone statement of a fixed shape
   * goes as a prepared statement (cached per connection), anything else as one text query. The
   * server stops at the first statement that fails; the caller rolls back to the savepoint.
   */
  private async write(stmts: readonly Stmt[], prepared = true): Promise<ResultSetHeader[]> {
    const sp = this.inOp && !this.savepointSent;
    if (sp) this.savepointSent = true;
    if (!sp && stmts.length === 1 && prepared) return [await this.session.execute<ResultSetHeader>(stmts[0]![0], stmts[0]![1] as Array<string | number | null>)];
    const sql = [...(sp ? [`SAVEPOINT ${SAVEPOINT}`] : []), ...stmts.map(([q]) => q)].join('; ');
    const r = await this.session.query<ResultSetHeader | ResultSetHeader[]>(sql, valuesOf(stmts));
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

  private forgetAbsent(key: string): void {
    if (!this.absent.delete(key)) return;
    if (this.inOp) this.undo.push(() => this.absent.add(key));
  }
}

/** Characters of SQL text and values per query: well under max_allowed_packet (16 MB on MariaDB, 64 MB on MySQL 8) even when escaped. */
const QUERY_BUDGET = 1 << 20;
/** Rows per multi-row statement at most. */
const ROWS_PER_STATEMENT = 1000;

/**
 * The values of several rows or statements as one list, by a loop: V8's Array#flat and #flatMap
 * cost several times as much at the sizes of a batch (a profiled hot spot of the commit).
 */
function concat(lists: ReadonlyArray<readonly Value[]>): Value[] {
  const out: Value[] = [];
  for (const list of lists) for (let i = 0; i < list.length; i++) out.push(list[i]!);
  return out;
}

function valuesOf(stmts: readonly Stmt[]): Value[] {
  return concat(stmts.map(([, values]) => values));
}

function valueSize(v: Value): number {
  if (v === null) return 4;
  if (typeof v === 'string') return v.length + 2;
  if (typeof v === 'number') return 16;
  return Array.isArray(v) ? v.reduce<number>((n, x) => n + valueSize(x) + 2, 0) : 48;
}

/** `head` VALUES tuple, tuple, ... `tail`, in statements of a bounded size. */
function multiRow(head: string, tuple: string, rows: Value[][], tail = ''): Stmt[] {
  return rowGroups(rows).map(([from, to]) => [`${head} VALUES ${Array(to - from).fill(tuple).join(', ')}${tail}`, concat(rows.slice(from, to))]);
}

/** Rows split into [from, to) groups of a bounded count and size, one statement each. */
function rowGroups(rows: Value[][]): Array<readonly [number, number]> {
  const out: Array<readonly [number, number]> = [];
  let from = 0;
  let size = 0;
  rows.forEach((row, i) => {
    const n = row.reduce<number>((acc, v) => acc + valueSize(v) + 2, 2);
    if (i > from && (i - from >= ROWS_PER_STATEMENT || size + n > QUERY_BUDGET / 4)) {
      out.push([from, i]);
      from = i;
      size = 0;
    }
    size += n;
  });
  if (rows.length > from) out.push([from, rows.length]);
  return out;
}

function chunkedStmts<K extends string | number>(ids: K[], stmt: (ids: K[]) => Stmt): Stmt[] {
  return [...chunks(ids, CHUNK)].map(stmt);
}

/** Statements grouped into queries (round trips) of a bounded size. */
function packQueries(stmts: Stmt[]): Stmt[][] {
  const out: Stmt[][] = [[]];
  let size = 0;
  for (const st of stmts) {
    const n = st[0].length + st[1].reduce<number>((acc, v) => acc + valueSize(v), 0);
    if (out[out.length - 1]!.length > 0 && size + n > QUERY_BUDGET) {
      out.push([]);
      size = 0;
    }
    out[out.length - 1]!.push(st);
    size += n;
  }
  return out;
}

/** The instance's columns; `revision` says how its revision is written (a provisional one is an expression). */
function instanceRow(rec: InstanceRecord, revision: (n: number) => Value): Value[] {
  return [
    rec.id, rec.namespace, rec.service, rec.host, rec.port, rec.protocol, rec.version, rec.weight, rec.priority,
    rec.location.region ?? null, rec.location.zone ?? null, rec.location.campus ?? null, rec.healthy ? 1 : 0, rec.isolate ? 1 : 0,
    rec.lastHeartbeat, rec.healthChangedAt, revision(rec.revision), rec.createdAt, rec.updatedAt, rec.tokenHash,
    rec.verification.state, rec.verification.reason, rec.verification.at,
  ];
}

/** The insert of an instance's metadata rows right after its row was written (none: no statement). */
function metadataInsertLast(metadata: Metadata): Stmt[] {
  const entries = Object.entries(metadata);
  if (entries.length === 0) return [];
  return [[`INSERT INTO instance_metadata (instance_seq, \`key\`, value) VALUES ${entries.map(() => '(LAST_INSERT_ID(), ?, ?)').join(', ')}`, entries.flat()]];
}

function cloneInstance(r: InstanceRecord): InstanceRecord {
  return { ...r, metadata: { ...r.metadata }, location: { ...r.location } };
}

/**
 * The later of two revisions, where a provisional one (negative: numbered at this transaction's
 * commit) is later than any real one, and of two provisional ones the one handed out last.
 */
function newer(a: number, b: number): number {
  if (a < 0 || b < 0) return Math.min(a, b);
  return Math.max(a, b);
}

/** A service's settings as its columns hold them: comment, metadata, verify_secret, verify_path. */
function settingsOf(rec: ServiceRecord): Value[] {
  return [rec.comment, JSON.stringify(rec.metadata), rec.verification?.secret ?? null, rec.verification?.path ?? null];
}

/** What a service is configured with, apart from its revision and timestamps. */
function sameSettings(a: ServiceRecord, b: ServiceRecord): boolean {
  return a.comment === b.comment && sameMetadata(a.metadata, b.metadata)
    && (a.verification?.secret ?? null) === (b.verification?.secret ?? null) && (a.verification?.path ?? null) === (b.verification?.path ?? null);
}

function svcKey(ns: string, name: string): string {
  return `${ns}\u0000${name}`;
}

function cloneService(r: ServiceRecord): ServiceRecord {
  return { ...r, metadata: { ...r.metadata } };
}

/** What another node's concurrent write causes: the same writes in smaller transactions may succeed. */
const COLLISION_ERRNOS = new Set<number>([ER.BAD_NULL, ER.DUP_ENTRY, ER.LOCK_DEADLOCK, ER.NO_REFERENCED_ROW, ER.NO_REFERENCED_ROW_2, ER.ROW_IS_REFERENCED, ER.ROW_IS_REFERENCED_2]);

function collided(err: unknown): boolean {
  const errno = err instanceof MusterError ? (err.cause as { errno?: number } | undefined)?.errno : undefined;
  return errno !== undefined && COLLISION_ERRNOS.has(errno);
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

/** Rows of INSTANCE_SELECT folded into records, with each row's seq. */
function instancesWithSeq(rows: InstanceRow[]): Array<{ rec: InstanceRecord; seq: number }> {
  const seqs = new Map<string, number>();
  for (const r of rows) seqs.set(r.id, Number(r.seq));
  return instancesFromJoinedRows(rows).map((rec) => ({ rec, seq: seqs.get(rec.id)! }));
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

function eventFromRow(r: EventRow): RegistryEvent {
  const e: RegistryEvent = { id: Number(r.id), type: r.type as EventType, namespace: r.namespace, at: iso(Number(r.at)), detail: JSON.parse(r.detail) as Record<string, unknown> };
  if (r.service !== null) e.service = r.service;
  if (r.instance_id !== null) e.instanceId = r.instance_id;
  return e;
}
