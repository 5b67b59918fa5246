import type { PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { MusterError } from '../../errors.js';
import type { Failure } from './error-classification.js';

/** What a session needs of the pool it came from. */
export interface SessionOwner {
  /** What a driver or server error means here (FailureClassifier.classify). */
  classify(err: unknown): Failure;
  timeoutError(what: string, cause: unknown): MusterError;
  /** Best effort: ends an abandoned connection's work on the server, so its row locks go now. */
  killLater(threadId: number | undefined): void;
}

/**
 * One pooled connection with a deadline. Every statement races the deadline, so a database that
 * stops answering costs at most the time left; the connection is then dropped, never reused.
 */
export class Session {
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

  /** See SessionPool.initialized. */
  step = 0;

  constructor(
    readonly conn: PoolConnection,
    private readonly owner: SessionOwner,
    readonly deadline: number,
  ) {
    this.aborted = new Promise<never>((_, reject) => (this.rejectAborted = reject));
    this.aborted.catch(() => {});
    this.timer = setTimeout(
      () => {
        this.fail({ error: owner.timeoutError('transaction', undefined), txDead: true, connDead: true });
        // The server may still hold the transaction's row locks: end it there too.
        owner.killLater(conn.threadId);
      },
      Math.max(0, deadline - Date.now()),
    );
  }

  async run<T>(p: Promise<T>): Promise<T> {
    if (this.dead) {
      p.catch(() => {});
      throw this.dead;
    }
    try {
      return await Promise.race([p, this.aborted]);
    } catch (err) {
      throw this.fail(this.owner.classify(err));
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
  async execute<T extends RowDataPacket[] | ResultSetHeader>(
    sql: string,
    values: Array<string | number | null>,
  ): Promise<T> {
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
  async query<T extends RowDataPacket[] | RowDataPacket[][] | ResultSetHeader | ResultSetHeader[]>(
    sql: string,
    values?: unknown[],
  ): Promise<T> {
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
      this.fail(this.owner.classify(err));
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

export function destroy(conn: PoolConnection): void {
  try {
    conn.destroy();
    // destroy() ends the socket politely; a peer that stopped answering would keep it half open.
    (conn.connection as unknown as { stream?: { destroy?: () => void } }).stream?.destroy?.();
  } catch {
    /* already gone */
  }
}

/** Rejects when p takes longer than ms; p itself is left to settle (and its rejection swallowed). */
export function bounded<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(
      () => reject(Object.assign(new Error(`no answer within ${ms} ms`), { code: 'ETIMEDOUT' })),
      ms,
    );
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e)),
    );
  });
}
