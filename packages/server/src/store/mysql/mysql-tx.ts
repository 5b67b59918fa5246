import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { Metadata } from '@muster/api';
import { Errors } from '../../errors.js';
import type { InstanceRecord, NamespaceRecord, ServiceRecord, TokenRecord } from '../../model/records.js';
import { markConflict, type NewEvent, type StoreTx, type TxHints } from '../store.js';
import { namespaceFromRow as nsFromRow, serviceFromRow as svcFromRow } from '../service-row.js';
import { TOKEN_SELECT, TOKEN_UPSERT_VALUES, tokenArgs, tokenFromRow, type TokenRow } from '../token-row.js';
import { CommitPlan, newer, type CachedService, type KnownInstance } from './commit-plan.js';
import { isDuplicate } from './error-classification.js';
import {
  cloneInstance,
  cloneService,
  instanceRow,
  instancesWithSeq,
  sameSettings,
  svcKey,
  type InstanceRow,
  type NsRow,
  type SvcRow,
} from './rows.js';
import type { Session } from './session.js';
import { INSTANCE_SELECT, SAVEPOINT, SQL } from './sql.js';
import { CHUNK, chunkedStmts, chunks, unique, uniqueBy, valuesOf, type Stmt } from './statements.js';

/** Rows deleted per criterion per pruneEvents call: one prune never holds a batch for long. */
const PRUNE_CHUNK = 20_000;

/**
 * One write transaction's operations. Round trips are what a MySQL transaction costs, so the
 * writes of a whole batch go to the server together, at commit:
 * - What the hints name is read in the round trip that starts the transaction: namespaces,
 *   services and instances (the instances locked, FOR UPDATE). What the index vouched for
 *   (TxHints.indexed) is taken unread; with nothing left to read, the start goes with the next
 *   statement sent, and a batch of registrations is one round trip, START TRANSACTION to COMMIT.
 * - appendEvent answers a provisional number (-1, -2, ...), the real one is taken at commit
 *   (see CommitPlan).
 * - Reads answer from what the transaction knows; a miss is a round trip of its own.
 * - Events, and the writes of instances whose row is known (read here, or known to be absent),
 *   are held back and sent with the COMMIT as multi-row statements, together with the service
 *   revision bumps. A held-back write of an operation that fails is simply dropped, so its
 *   savepoint is only sent to the server with a write that goes at once (namespaces, new
 *   services, deletes of services, heartbeats, writes of unknown rows).
 * What fails at commit fails the whole transaction; a collision with another node there (a
 * duplicate key) is marked with markConflict, and the batcher re-runs the writes one by one.
 */
export class MysqlTx implements StoreTx {
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
  private readonly plan: CommitPlan;

  constructor(
    readonly session: Session,
    private readonly pruneLock: string,
    private readonly hints: TxHints | undefined,
  ) {
    this.plan = new CommitPlan(session);
  }

  async savepoint(): Promise<void> {
    // Sent with the operation's first write that goes at once: most send none.
    this.inOp = true;
    this.savepointSent = false;
    this.undo = [];
    this.opWants.clear();
    this.plan.endOp();
  }

  async releaseSavepoint(): Promise<void> {
    // Nothing to send: the next SAVEPOINT of the same name replaces this one.
    for (const [id, want] of this.opWants) this.known.get(id)!.want = want;
    this.plan.releaseOp();
    this.endOp();
  }

  async rollbackToSavepoint(): Promise<void> {
    const sent = this.savepointSent;
    for (let i = this.undo.length - 1; i >= 0; i--) this.undo[i]!();
    // Its held-back writes and its events are dropped.
    this.endOp();
    if (sent) await this.session.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
    // Nothing written, but the transaction is gone (a deadlock): the whole batch fails.
    else if (this.session.dead) throw this.session.dead;
  }

  async getNamespace(name: string): Promise<NamespaceRecord | undefined> {
    const cached = this.namespaces.get(name);
    if (cached) return { ...cached };
    if (this.absent.has(`n:${name}`)) return undefined;
    const [row] = await this.session.execute<NsRow[]>(SQL.getNamespace, [name]);
    if (!row) {
      this.absent.add(`n:${name}`);
      return undefined;
    }
    const rec = nsFromRow(row);
    this.namespaces.set(name, rec);
    return { ...rec };
  }

  async putNamespace(rec: NamespaceRecord): Promise<void> {
    const insert = this.absent.has(`n:${rec.name}`);
    try {
      await this.write([
        [insert ? SQL.insertNamespace : SQL.upsertNamespace, [rec.name, rec.comment, rec.createdAt, rec.updatedAt]],
      ]);
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
  }

  async deleteNamespace(name: string): Promise<void> {
    await this.write([[SQL.deleteNamespace, [name]]]);
    this.remember(this.namespaces, name, undefined);
  }

  async countServices(ns: string): Promise<number> {
    const [row] = await this.session.execute<RowDataPacket[]>(SQL.countServices, [ns]);
    return Number(row?.['n'] ?? 0);
  }

  async getService(ns: string, name: string): Promise<ServiceRecord | undefined> {
    const key = svcKey(ns, name);
    const cached = this.services.get(key);
    if (cached) return cloneService(cached.rec);
    if (this.absent.has(`s:${key}`)) return undefined;
    const [row] = await this.session.execute<SvcRow[]>(SQL.getService, [ns, name]);
    if (!row) {
      this.absent.add(`s:${key}`);
      return undefined;
    }
    const rec = svcFromRow(row);
    this.services.set(key, { rec, dirty: false, locked: false });
    return cloneService(rec);
  }

  async putService(rec: ServiceRecord): Promise<void> {
    const key = svcKey(rec.namespace, rec.name);
    const cached = this.services.get(key);
    if (cached) {
      // Written once, at commit. A revision bump needs no lock before then; a change of the
      // settings must not overwrite one another node made since the row was read.
      const next = cloneService(rec);
      next.revision = newer(next.revision, cached.rec.revision);
      const settings = cached.dirty === 'full' || !sameSettings(next, cached.rec);
      if (settings && !cached.locked) {
        const [row] = await this.session.execute<SvcRow[]>(SQL.lockService, [rec.namespace, rec.name]);
        if (!row || !sameSettings(svcFromRow(row), cached.rec))
          throw Errors.storeRetry('another node changed the service at the same time: concurrent write', undefined);
      }
      this.remember(this.services, key, {
        rec: next,
        dirty: settings ? 'full' : 'bump',
        locked: cached.locked || settings,
      });
      return;
    }
    // A provisional revision is not a number yet: 0 now (GREATEST keeps what the row has), the real one at commit.
    const args = [
      rec.namespace,
      rec.name,
      rec.comment,
      JSON.stringify(rec.metadata),
      Math.max(0, rec.revision),
      rec.createdAt,
      rec.updatedAt,
      rec.verification?.secret ?? null,
      rec.verification?.path ?? null,
    ];
    if (rec.revision < 0)
      this.fixup([SQL.fixServiceRevision, [this.plan.number(rec.revision), rec.namespace, rec.name]]);
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
  }

  async deleteService(ns: string, name: string): Promise<void> {
    // The rows of its instances deleted in this transaction go first (they are held back
    // otherwise); any other instance row still there makes the delete fail, as it should.
    const gone: string[] = [];
    for (const [id, k] of this.known) {
      if (k.db && k.db.namespace === ns && k.db.service === name && this.current(id) === null) gone.push(id);
    }
    const seqs = gone.map((id) => this.known.get(id)!.seq!);
    await this.write(
      [...chunkedStmts(seqs, (part) => [SQL.deleteInstances, [part]]), [SQL.deleteService, [ns, name]]],
      false,
    );
    for (const id of gone) this.gone(id);
    this.remember(this.services, svcKey(ns, name), undefined);
  }

  async getInstance(id: string): Promise<InstanceRecord | undefined> {
    const k = this.known.get(id);
    if (k) {
      const cur = this.current(id);
      return cur ? cloneInstance(cur) : undefined;
    }
    const [rec] = instancesWithSeq(await this.session.execute<InstanceRow[]>(SQL.getInstance, [id]));
    this.known.set(id, { db: rec?.rec ?? null, want: rec?.rec ?? null, seq: rec?.seq });
    return rec ? cloneInstance(rec.rec) : undefined;
  }

  async putInstance(rec: InstanceRecord, prev?: InstanceRecord | null): Promise<void> {
    if (this.known.has(rec.id) || prev === null) {
      // Known, or known by the caller not to exist: held back until the commit. A row
      // another node inserted meanwhile is a duplicate key there (retry), never taken over.
      if (!this.known.has(rec.id)) this.addKnown(rec.id, null, undefined);
      this.setWant(rec.id, cloneInstance(rec));
      return;
    }
    // Nothing known: upsert now (LAST_INSERT_ID(seq) names the row either way) and rewrite every child row.
    const [r] = await this.write(
      [
        [SQL.upsertInstance, instanceRow(rec, (n) => Math.max(0, n))],
        [SQL.deleteMetadataLast, []],
        ...metadataInsertLast(rec.metadata),
        [SQL.upsertHealthCheckLast, [rec.ttl]],
      ],
      false,
    );
    const seq = Number(r!.insertId);
    if (rec.revision < 0) this.fixup([SQL.fixInstanceRevision, [this.plan.number(rec.revision), seq]]);
    this.addKnown(rec.id, cloneInstance(rec), seq);
  }

  async deleteInstance(id: string): Promise<void> {
    if (this.known.has(id)) {
      this.setWant(id, null);
      return;
    }
    await this.write([[SQL.deleteInstance, [id]]]);
    this.addKnown(id, null, undefined);
  }

  async listInstanceIds(ns: string, svc: string): Promise<string[]> {
    // Every row of the service, locked and known from here on; then what this transaction made of them.
    for (const { rec, seq } of instancesWithSeq(
      await this.session.query<InstanceRow[]>(SQL.listInstances, [ns, svc]),
    )) {
      if (!this.known.has(rec.id)) this.known.set(rec.id, { db: rec, want: rec, seq });
    }
    const ids: string[] = [];
    for (const id of this.known.keys()) {
      const cur = this.current(id);
      if (cur && cur.namespace === ns && cur.service === svc) ids.push(id);
    }
    return ids;
  }

  async updateHeartbeats(beats: ReadonlyArray<{ id: string; lastHeartbeat: number }>): Promise<void> {
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
  }

  async listTokens(): Promise<TokenRecord[]> {
    return (await this.session.query<Array<TokenRow & RowDataPacket>>(TOKEN_SELECT)).map(tokenFromRow);
  }

  async putToken(rec: TokenRecord): Promise<void> {
    await this.write([[`REPLACE INTO access_token ${TOKEN_UPSERT_VALUES}`, tokenArgs(rec)]]);
  }

  async appendEvent(e: NewEvent): Promise<number> {
    // Numbered at commit, under every lock the transaction takes (see CommitPlan).
    return this.plan.appendEvent(e, this.inOp);
  }

  async pruneEvents(keep: number, olderThan: number): Promise<number> {
    // Every node prunes; one at a time is enough, and the others must not queue on its row locks.
    const [got] = await this.session.query<RowDataPacket[]>('SELECT GET_LOCK(?, 0) AS got', [this.pruneLock]);
    if (Number(got?.['got']) !== 1) return 0;
    this.locks.push(this.pruneLock);
    let removed = 0;
    const [edge] = await this.session.query<RowDataPacket[]>(
      `SELECT id FROM event ORDER BY id DESC LIMIT 1 OFFSET ${Math.max(0, Math.floor(keep))}`,
    );
    if (edge)
      removed += (
        await this.write(
          [[`DELETE FROM event WHERE id <= ? ORDER BY id LIMIT ${PRUNE_CHUNK}`, [Number(edge['id'])]]],
          false,
        )
      )[0]!.affectedRows;
    // The newest event always stays: load() reads the last change number from it.
    const [top] = await this.session.query<RowDataPacket[]>('SELECT MAX(id) AS id FROM event');
    if (top?.['id'] != null) {
      removed += (
        await this.write(
          [
            [
              `DELETE FROM event WHERE at < ? AND id < ? ORDER BY at LIMIT ${PRUNE_CHUNK}`,
              [olderThan, Number(top['id'])],
            ],
          ],
          false,
        )
      )[0]!.affectedRows;
    }
    return removed;
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
    for (const ns of h?.indexed?.namespaces ?? [])
      if (!this.namespaces.has(ns.name)) this.namespaces.set(ns.name, { ...ns });
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
    const services = uniqueBy(h?.services ?? [], ([ns, name]) => svcKey(ns, name)).filter(
      ([ns, name]) => !this.services.has(svcKey(ns, name)),
    );
    if (services.length) {
      stmts.push([
        `SELECT * FROM service WHERE ${services.map(() => '(namespace = ? AND name = ?)').join(' OR ')}`,
        services.flat(),
      ]);
      parse.push((rows) => {
        for (const r of rows as SvcRow[])
          this.services.set(svcKey(r.namespace, r.name), { rec: svcFromRow(r), dirty: false, locked: false });
        for (const [ns, name] of services)
          if (!this.services.has(svcKey(ns, name))) this.absent.add(`s:${svcKey(ns, name)}`);
      });
    }
    const instances = unique(h?.instances ?? []).filter((id) => !this.known.has(id));
    if (instances.length) {
      stmts.push([`${INSTANCE_SELECT} WHERE i.id IN (?) FOR UPDATE`, [instances]]);
      parse.push((rows) => {
        for (const { rec, seq } of instancesWithSeq(rows as InstanceRow[]))
          this.known.set(rec.id, { db: rec, want: rec, seq });
        for (const id of instances)
          if (!this.known.has(id)) this.known.set(id, { db: null, want: null, seq: undefined });
      });
    }
    if (stmts.length === 1) return this.session.deferStart();
    const results = await this.session.query<RowDataPacket[] | ResultSetHeader>(
      stmts.map(([q]) => q).join('; '),
      valuesOf(stmts),
    );
    const all = stmts.length === 1 ? [results] : (results as unknown as RowDataPacket[][]);
    parse.forEach((p, i) => p(all[i] as RowDataPacket[]));
  }

  /** A statement for the commit that sets a provisional number written at once; dropped with its operation. */
  private fixup(stmt: Stmt): void {
    const drop = this.plan.fixup(stmt);
    if (this.inOp) this.undo.push(drop);
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
    this.plan.endOp();
  }

  /** The held-back writes and COMMIT, in one round trip unless it is large (see CommitPlan.commit). */
  commit(sent?: () => void, numbered?: (renumber: (n: number) => number) => void): Promise<void> {
    return this.plan.commit([...this.services.values()], this.known.values(), sent, numbered);
  }

  /** After a rollback: the change numbers the failed commit took are written as unused (see CommitPlan.leaveUnused). */
  leaveUnused(): Promise<void> {
    return this.plan.leaveUnused();
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
    if (!sp && stmts.length === 1 && prepared)
      return [await this.session.execute<ResultSetHeader>(stmts[0]![0], stmts[0]![1] as Array<string | number | null>)];
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

/** The insert of an instance's metadata rows right after its row was written (none: no statement). */
function metadataInsertLast(metadata: Metadata): Stmt[] {
  const entries = Object.entries(metadata);
  if (entries.length === 0) return [];
  return [
    [
      `INSERT INTO instance_metadata (instance_seq, \`key\`, value) VALUES ${entries.map(() => '(LAST_INSERT_ID(), ?, ?)').join(', ')}`,
      entries.flat(),
    ],
  ];
}
