import { createPool } from 'mysql2/promise';
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import type { MusterError } from '../../errors.js';
import { FailureClassifier, type Failure } from './error-classification.js';
import type { MysqlTarget } from './mysql-url.js';
import { Session, bounded, destroy, type SessionOwner } from './session.js';

/** A pooled connection idle longer than this is pinged before use (HikariCP's default bypass window). */
const IDLE_CHECK_MS = 500;

/**
 * The store's connections: a mysql2 pool whose connections are handed out as Sessions, each
 * with a deadline, its session settings made once per connection.
 */
export class SessionPool implements SessionOwner {
  private pool: Pool | undefined;
  private readonly classifier: FailureClassifier;
  /**
   * Core connections whose session settings are made, with the distance between the
   * AUTO_INCREMENT ids of one multi-row INSERT where the server hands them out consecutively
   * (innodb_autoinc_lock_mode 0 or 1: the session's auto_increment_increment); 0 where they may
   * interleave with other sessions' (mode 2).
   */
  private readonly initialized = new WeakMap<object, number>();

  constructor(
    private readonly target: MysqlTarget,
    private readonly poolSize: number,
    private readonly writeTimeoutMs: number,
  ) {
    this.classifier = new FailureClassifier(target.host, target.port, writeTimeoutMs);
  }

  open(): void {
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
    (pool as unknown as { pool: NodeJS.EventEmitter }).pool.on('connection', (c: NodeJS.EventEmitter) =>
      c.on('error', () => {}),
    );
    this.pool = pool;
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    if (!pool) return;
    await bounded(pool.end(), this.writeTimeoutMs).catch(() => {});
  }

  /** A pooled connection with a deadline, its session settings made. */
  async session(deadline: number): Promise<Session> {
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
        const r = await s.query<RowDataPacket[][]>(
          `SET SESSION innodb_lock_wait_timeout = ${lockWait}, SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'; ` +
            'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED; ' +
            'SELECT @@innodb_autoinc_lock_mode AS lock_mode, @@auto_increment_increment AS inc',
        );
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
      const timer = setTimeout(
        () => {
          settled = true;
          reject(this.timeoutError('waiting for a connection', undefined));
        },
        Math.max(0, deadline - Date.now()),
      );
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
      (conn) =>
        bounded(conn.query({ sql: `KILL ${Number(threadId)}`, timeout: 2000 }), 2500).then(
          () => conn.release(),
          // Unknown thread (already gone) is an answer: the connection is fine.
          (err: unknown) => (this.classify(err).connDead ? destroy(conn) : conn.release()),
        ),
      () => {},
    );
  }

  timeoutError(what: string, cause: unknown): MusterError {
    return this.classifier.timeoutError(what, cause);
  }

  classify(err: unknown): Failure {
    return this.classifier.classify(err);
  }
}
