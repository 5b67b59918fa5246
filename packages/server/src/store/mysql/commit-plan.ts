import type { RowDataPacket } from 'mysql2/promise';
import type { InstanceRecord, ServiceRecord } from '../../model/records.js';
import { sameMetadata } from '../../model/records.js';
import type { NewEvent } from '../store.js';
import { instanceRow, settingsOf } from './rows.js';
import type { Session } from './session.js';
import { INSTANCE_PLACEHOLDERS, SQL } from './sql.js';
import {
  chunkedStmts,
  chunks,
  concat,
  multiRow,
  packQueries,
  rowGroups,
  valuesOf,
  type Stmt,
  type Value,
} from './statements.js';

/** Session variables that hold the first change number of each event INSERT of a commit. */
const NUMBER_VAR = '@muster_ev';
/** Variables read back per SELECT at most. */
const VARS_PER_SELECT = 1000;

/**
 * A service row as this transaction knows it. `dirty`: 'bump' when only its revision (and
 * updatedAt) moved, 'full' when its settings changed too. `locked`: the row is locked already;
 * one that is not gets locked first thing in the COMMIT, before the events take their numbers.
 */
export type CachedService = { rec: ServiceRecord; dirty: false | 'bump' | 'full'; locked: boolean };

/**
 * An instance whose row this transaction knows: `db` as the database holds it now, in this
 * transaction, and `want` as the released operations left it, written at commit (null: no row).
 */
export interface KnownInstance {
  db: InstanceRecord | null;
  want: InstanceRecord | null;
  /** The row's seq while it exists. */
  seq: number | undefined;
}

/**
 * What a transaction holds back until its COMMIT, and the COMMIT itself:
 * - Change numbers. appendEvent answers a provisional number (-1, -2, ...). The events are
 *   inserted at commit, where AUTO_INCREMENT numbers them, after every lock the transaction
 *   takes: a row's revision only ever grows, and two transactions bumping one service take its
 *   numbers in the order they commit. Nothing is reserved ahead, so a write that fails takes no
 *   number; the batcher learns the real numbers (TxOptions.onNumbered) before anyone sees the
 *   records.
 * - The held-back writes: the instances the transaction knows, as the released operations left
 *   them, and the service revision bumps, sent with the COMMIT as multi-row statements.
 */
export class CommitPlan {
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

  constructor(private readonly session: Session) {}

  /** A provisional change number for this event; `inOp`: it goes or is dropped with the running operation. */
  appendEvent(e: NewEvent, inOp: boolean): number {
    // Numbered at commit, under every lock the transaction takes.
    const n = -++this.provisional;
    if (inOp) this.opEvents.push([n, e]);
    else this.events.set(n, e);
    return n;
  }

  /** The running operation was released: its events go with the commit. */
  releaseOp(): void {
    for (const [id, e] of this.opEvents) this.events.set(id, e);
    this.opEvents = [];
  }

  /** The running operation ended: its events not released are dropped. */
  endOp(): void {
    this.opEvents = [];
  }

  /**
   * A provisional change number as SQL: the real one, read at commit from the session variable
   * of its event's INSERT. Only ever formatted into the commit's statements, once `placed`.
   */
  number(n: number): Value {
    if (n >= 0) return n;
    return {
      toSqlString: () => {
        const [g, i] = this.placed.get(n)!;
        const step = this.session.step;
        return i === 0 ? `${NUMBER_VAR}${g}` : `(${NUMBER_VAR}${g} + ${i * step})`;
      },
    };
  }

  /**
   * A statement for the commit that sets a provisional number written at once; answers how to
   * drop it again with its operation.
   */
  fixup(stmt: Stmt): () => void {
    this.fixups.push(stmt);
    return () => void this.fixups.splice(this.fixups.indexOf(stmt), 1);
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
  async commit(
    services: readonly CachedService[],
    known: Iterable<KnownInstance>,
    sent?: () => void,
    numbered?: (renumber: (n: number) => number) => void,
  ): Promise<void> {
    // Services whose revision moves are locked before anything takes a number: two transactions
    // bumping one service number their events in the order they commit.
    const toLock = services.filter((c) => c.dirty && !c.locked).map((c) => [c.rec.namespace, c.rec.name]);
    const events = this.eventInserts();
    const stmts: Stmt[] = [
      // Cleared first, whatever fails next: a failed commit is told apart from one that took numbers (see leaveUnused).
      ...chunkedStmts(
        this.groups.map((x) => x.variable),
        (vars) => [`SET ${vars.map((v) => `${v} = NULL`).join(', ')}`, []],
      ),
      ...(toLock.length
        ? [
            [
              `SELECT 1 FROM service WHERE ${toLock.map(() => '(namespace = ? AND name = ?)').join(' OR ')} FOR UPDATE`,
              toLock.flat(),
            ] as Stmt,
          ]
        : []),
      ...events,
      ...this.fixups,
      ...this.instanceWrites(known),
    ];
    for (const { rec, dirty } of services) {
      if (dirty === 'bump')
        stmts.push([
          SQL.bumpService,
          [...settingsOf(rec), this.number(rec.revision), rec.updatedAt, rec.namespace, rec.name],
        ]);
      else if (dirty === 'full') {
        stmts.push([
          SQL.updateService,
          [...settingsOf(rec), this.number(rec.revision), rec.updatedAt, rec.namespace, rec.name],
        ]);
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
    const firsts = results
      .slice(firstRead, firstRead + Math.ceil(this.groups.length / VARS_PER_SELECT))
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
    const rows = [...this.events].map(([n, e]) => ({
      n,
      row: [e.type, e.namespace, e.service ?? null, e.instanceId ?? null, e.at, JSON.stringify(e.detail)] as Value[],
    }));
    const parts = this.session.step > 0 ? rowGroups(rows.map((r) => r.row)) : rows.map((_, i) => [i, i + 1] as const);
    this.groups = parts.map(([from, to], g) => ({
      variable: `${NUMBER_VAR}${g}`,
      numbers: rows.slice(from, to).map((r) => r.n),
    }));
    this.placed.clear();
    this.groups.forEach(({ numbers }, g) => numbers.forEach((n, i) => this.placed.set(n, [g, i])));
    const out: Stmt[] = [];
    parts.forEach(([from, to], g) => {
      out.push([
        `${SQL.insertEvents} VALUES ${Array(to - from)
          .fill('(?, ?, ?, ?, ?, ?)')
          .join(', ')}`,
        concat(rows.slice(from, to).map((r) => r.row)),
      ]);
      out.push([`SET ${this.groups[g]!.variable} = LAST_INSERT_ID()`, []]);
    });
    return out;
  }

  /** SELECTs of the variables that hold the first id of each event INSERT. */
  private readNumbers(): Stmt[] {
    return [
      ...chunks(
        this.groups.map((x) => x.variable),
        VARS_PER_SELECT,
      ),
    ].map((vars): Stmt => [`SELECT ${vars.join(', ')}`, []]);
  }

  /** From what the database holds to what the released operations want, as multi-row statements. */
  private instanceWrites(known: Iterable<KnownInstance>): Stmt[] {
    const deleted: number[] = [];
    const inserted: InstanceRecord[] = [];
    const updated: InstanceRecord[] = [];
    const oldMetadata: number[] = [];
    const newMetadata: Value[][] = [];
    const newTtl: Value[][] = [];
    for (const { db, want, seq } of known) {
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
      ...multiRow(
        SQL.upsertInstances,
        `(${INSTANCE_PLACEHOLDERS})`,
        updated.map((r) => instanceRow(r, this.numberOf)),
        SQL.upsertInstancesTail,
      ),
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
      out.push([
        `${SQL.insertInstances} VALUES ${group.map(() => `(${INSTANCE_PLACEHOLDERS})`).join(', ')}`,
        concat(rows.slice(from, to)),
      ]);
      out.push([
        `${SQL.insertHealthChecks} VALUES ${group.map((_, i) => `(${seq(i)}, 'heartbeat', ?)`).join(', ')}`,
        group.map((r) => r.ttl),
      ]);
      const md = group.flatMap((r, i) => Object.entries(r.metadata).map(([k, v]): Value[] => [seq(i), k, v]));
      for (const [a, b] of rowGroups(md)) {
        const rows = md.slice(a, b);
        out.push([
          `${SQL.insertMetadata} VALUES ${rows.map(([at]) => `(${at as string}, ?, ?)`).join(', ')}`,
          rows.flatMap(([, k, v]) => [k!, v!]),
        ]);
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
      const ids = this.groups.flatMap((g, i) =>
        firsts[i] == null ? [] : g.numbers.map((_, k) => firsts[i]! + k * step),
      );
      const now = Date.now();
      for (const [sql, values] of multiRow(
        SQL.insertUnusedEvents,
        "(?, '', '', NULL, NULL, ?, '{}')",
        ids.map((id) => [id, now]),
      )) {
        await this.session.query(sql, values);
      }
    } catch {
      // A gap, as after any rollback the server did not let us follow up on.
    }
  }
}

/**
 * The later of two revisions, where a provisional one (negative: numbered at this transaction's
 * commit) is later than any real one, and of two provisional ones the one handed out last.
 */
export function newer(a: number, b: number): number {
  if (a < 0 || b < 0) return Math.min(a, b);
  return Math.max(a, b);
}
