import type { Metadata, RegistryEvent } from '@muster/api';
import type { RowDataPacket } from 'mysql2/promise';
import { MusterError } from '../../errors.js';
import type { TokenRecord } from '../../model/records.js';
import {
  markConflict,
  type ChangeLog,
  type ChangeLogFilter,
  type RecordKeys,
  type Records,
  type Snapshot,
  type Store,
  type StoreTx,
  type TxHints,
  type TxOptions,
} from '../store.js';
import { eventWhere } from '../event-filter.js';
import { instanceFromRow } from '../instance-row.js';
import { namespaceFromRow as nsFromRow, serviceFromRow as svcFromRow } from '../service-row.js';
import { TOKEN_SELECT, tokenFromRow, type TokenRow } from '../token-row.js';
import { collided } from './error-classification.js';
import { MysqlTx } from './mysql-tx.js';
import { parseMysqlUrl, type MysqlTarget } from './mysql-url.js';
import {
  eventFromRow,
  instancesFromJoinedRows,
  type EventRow,
  type InstanceRow,
  type NsRow,
  type SvcRow,
} from './rows.js';
import { createAndMigrate } from './schema.js';
import type { Session } from './session.js';
import { SessionPool } from './session-pool.js';
import { INSTANCE_SELECT } from './sql.js';
import { CHUNK, chunks, unique, uniqueBy } from './statements.js';

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

/**
 * The cluster-mode store: several Muster nodes share one MySQL or MariaDB database.
 *
 * Every write transaction runs on one pooled connection at READ COMMITTED. Reads of an instance
 * inside it lock the row (SELECT ... FOR UPDATE), so two nodes changing the same instance take
 * turns instead of losing an update. A service row is locked first thing in the COMMIT when its
 * revision moves, at once when its settings change (see MysqlTx.putService); its revision is written as
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
 * its events first, which is where they take their change numbers (see MysqlTx, CommitPlan). A batch of
 * registrations of new instances into services the index holds is one round trip, whatever its
 * size. A collision found at commit fails the transaction with an error marked by
 * markConflict, and the batcher re-runs the writes one per transaction.
 */
export class MysqlStore implements Store, ChangeLog {
  readonly kind = 'mysql';
  private readonly target: MysqlTarget;
  private readonly writeTimeoutMs: number;
  private readonly sessions: SessionPool;
  private readonly pruneLock: string;

  constructor(opts: MysqlStoreOptions) {
    this.target = parseMysqlUrl(opts.url);
    this.writeTimeoutMs = opts.writeTimeoutMs ?? 5000;
    this.sessions = new SessionPool(this.target, opts.poolSize ?? 10, this.writeTimeoutMs);
    this.pruneLock = `muster_prune:${this.target.database}`.slice(0, 64);
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  async open(): Promise<void> {
    await createAndMigrate(this.target, this.writeTimeoutMs);
    this.sessions.open();
  }

  close(): Promise<void> {
    return this.sessions.close();
  }

  async ping(): Promise<void> {
    const s = await this.sessions.session(Date.now() + this.writeTimeoutMs);
    try {
      await s.run(s.conn.ping());
    } finally {
      s.end();
    }
  }

  // ---- reads --------------------------------------------------------------------------------

  async load(): Promise<Snapshot> {
    const s = await this.sessions.session(
      Date.now() + Math.max(LOAD_TIMEOUT_MIN_MS, this.writeTimeoutMs * LOAD_TIMEOUT_FACTOR),
    );
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
      const instances = (
        await s.query<InstanceRow[]>(
          'SELECT i.*, h.ttl FROM instance i LEFT JOIN health_check h ON h.instance_seq = i.seq',
        )
      ).map((r) => instanceFromRow(r, metadata.get(Number(r.seq)) ?? {}));
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
    const s = await this.sessions.session(Date.now() + this.writeTimeoutMs);
    try {
      for (const part of chunks(unique(keys.namespaces), CHUNK)) {
        out.namespaces.push(
          ...(await s.query<NsRow[]>('SELECT * FROM namespace WHERE name IN (?)', [part])).map(nsFromRow),
        );
      }
      const services = uniqueBy(keys.services, ([ns, name]) => `${ns}\u0000${name}`);
      for (const part of chunks(services, CHUNK)) {
        const where = part.map(() => '(namespace = ? AND name = ?)').join(' OR ');
        out.services.push(
          ...(await s.query<SvcRow[]>(`SELECT * FROM service WHERE ${where}`, part.flat())).map(svcFromRow),
        );
      }
      for (const part of chunks(unique(keys.instances), CHUNK)) {
        // With its metadata in the same statement: one snapshot, never a row with another's children.
        out.instances.push(
          ...instancesFromJoinedRows(await s.query<InstanceRow[]>(`${INSTANCE_SELECT} WHERE i.id IN (?)`, [part])),
        );
      }
      return out;
    } finally {
      s.end();
    }
  }

  async listTokens(): Promise<TokenRecord[]> {
    const s = await this.sessions.session(Date.now() + this.writeTimeoutMs);
    try {
      return (await s.query<Array<TokenRow & RowDataPacket>>(TOKEN_SELECT)).map(tokenFromRow);
    } finally {
      s.end();
    }
  }

  async listEvents(f: ChangeLogFilter): Promise<RegistryEvent[]> {
    const { where, args } = eventWhere(f);
    // Change numbers a failed commit left unused (type '') are no events; only a follower asks for them.
    const only = f.withUnused ? where : where ? `${where} AND type <> ''` : "WHERE type <> ''";
    const limit = Math.max(0, Math.floor(f.limit));
    const sql = `SELECT * FROM event ${only} ORDER BY id ${f.newestFirst ? 'DESC' : 'ASC'} LIMIT ${limit}`;
    const s = await this.sessions.session(Date.now() + this.writeTimeoutMs);
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
        s = await this.sessions.session(deadline);
        const tx = new MysqlTx(s, this.pruneLock, hints);
        await tx.open();
        return tx;
      } catch (err) {
        await s?.rollback();
        s?.end();
        // A pooled connection the server dropped while it sat idle: nothing was done yet, so one
        // more try on a fresh connection.
        if (attempt >= 2 || !(err instanceof MusterError) || Date.now() >= deadline || !s?.connDead)
          throw collided(err) ? markConflict(err as Error, deadline) : err;
      }
    }
  }

  async transaction<T>(fn: (tx: StoreTx) => Promise<T>, opts: TxOptions = {}): Promise<T> {
    const deadline = Math.min(Date.now() + this.writeTimeoutMs, opts.deadline ?? Infinity);
    const tx = await this.begin(deadline, opts.hints);
    const s = tx.session;
    try {
      const result = await fn(tx);
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
