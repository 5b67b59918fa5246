import type { Logger } from 'pino';
import { Errors, MusterError } from '../errors.js';
import {
  conflictDeadline,
  isConflict,
  type IndexedRecords,
  type Store,
  type StoreTx,
  type TxHints,
  type TxOptions,
} from '../store/store.js';
import { RepeatedWarning } from '../repeated-warning.js';
import type { Change } from './changes.js';
import { RecordingTx } from './recording-tx.js';
import { checkContext, type RequestContext } from './request-context.js';

/** One write: runs inside the batch's transaction, in its own savepoint. */
export type WriteOp<T> = (tx: StoreTx) => Promise<T>;

export interface BatcherOptions {
  /** A batch is flushed as soon as it holds this many writes. */
  maxSize: number;
  /**
   * ...or this long after its first write arrived. 0 flushes once the requests read in the
   * current turn of the event loop are queued; writes arriving while a batch is being built
   * always share the next one.
   */
  maxWaitMs: number;
  /**
   * Batches that may be committing at once (default 1). Above 1, the next batch is built while
   * earlier ones wait for the store to make them durable; only for a store whose transactions
   * run on connections of their own (MySQL).
   */
  inFlight?: number;
}

export interface BatcherHooks {
  /** Called with a committed batch's changes before any of its callers is answered. */
  onCommitted(changes: Change[]): void;
  onBatch?(size: number, commitSeconds: number): void;
}

interface Pending {
  op: WriteOp<unknown>;
  hints: TxHints | undefined;
  /** The request it serves: not applied once its client has gone or its deadline passed; told the revision it committed. */
  ctx: RequestContext | undefined;
  resolve(v: unknown): void;
  reject(e: unknown): void;
  /** Re-run alone after it or its batch collided, within that transaction's deadline; `tries`: runs after its own collisions. */
  alone?: { deadline: number | undefined; tries?: number };
}

/**
 * How many times a write that collided with another node's (two registrations creating one
 * service, a deadlock) runs again, alone and reading afresh, before its caller gets the collision.
 */
const COLLISION_RETRIES = 2;

/** `revision`: the highest change number the write took (0: none). */
type Outcome = { ok: true; value: unknown; revision: number } | { ok: false; error: unknown };

/**
 * Groups writes into one store transaction per batch (PolarisMesh's service/batch, as a queue
 * drained by size or time). Each caller waits on its own promise and is answered only after its
 * batch committed and the index holds the change; a failing write is rolled back to its
 * savepoint and fails alone.
 *
 * One batch is built at a time: the next starts only once the one before has sent its COMMIT
 * (TxOptions.onCommitting). Every row a batch locks is locked by then, or first thing in that
 * COMMIT (a service whose revision moves), so a later batch that touches the same rows waits for
 * it in the database: batches commit those rows in the order they started, and their changes
 * reach the index in that same order, whatever order the database acknowledges the commits in.
 * (Should a later COMMIT ever reach a service first, it takes the lower number, and the index
 * keeps the higher revision.) With `inFlight` above 1, the time a commit waits for the
 * disk is spent building the next batch instead, and the database can make several durable
 * with one flush.
 *
 * The hints of a batch's writes go to the store together, so it can read ahead for all of them
 * at once. A batch whose commit fails on a collision with another node's write (isConflict: the
 * store could not tell which write collided) is re-run one write per transaction, within the
 * failed transaction's deadline: only the colliding write fails.
 */
export class WriteBatcher {
  private queue: Pending[] = [];
  private cancelTimer: (() => void) | undefined;
  /** A batch is started and has not yet sent its COMMIT. */
  private building = false;
  private readonly running = new Set<Promise<void>>();
  /** Settles once the newest batch started has reached the index, or failed. */
  private applied: Promise<void> = Promise.resolve();
  private readonly inFlight: number;
  /** Writes in the batch started last. */
  private lastSize = 0;
  private closed = false;
  /** While the store is out, every batch fails: one line per outage, not one per batch. */
  private readonly failing: RepeatedWarning;

  constructor(
    private readonly store: Store,
    private readonly opts: BatcherOptions,
    private readonly hooks: BatcherHooks,
    private readonly log: Logger,
  ) {
    this.inFlight = Math.max(1, opts.inFlight ?? 1);
    this.failing = new RepeatedWarning(
      log,
      'store transaction failed; the whole batch was rolled back',
      'store transactions commit again',
      { level: 'error' },
    );
  }

  /**
   * `hints`: what the write will read and append, for the store to read ahead (see TxHints).
   * `ctx`: the context of the request it serves. It is checked right before the write runs in its
   * transaction: a client that has gone, or a deadline that passed while the write waited (in the
   * queue, behind slow commits, in a paused process), fails it with DEADLINE_EXCEEDED, and nothing
   * of it is applied. Once committed, the context is told the change number it took.
   */
  submit<T>(op: WriteOp<T>, hints?: TxHints, ctx?: RequestContext): Promise<T> {
    if (this.closed) return Promise.reject(Errors.shuttingDown());
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ op: op as WriteOp<unknown>, hints, ctx, resolve: resolve as (v: unknown) => void, reject });
      this.schedule();
    });
  }

  /** Stops taking writes and waits until every queued one is committed (or failed). */
  async close(): Promise<void> {
    this.closed = true;
    await this.drain();
  }

  /** Waits until the queue is empty and no batch is running. */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.running.size > 0) {
      this.kick();
      await Promise.all(this.running);
    }
  }

  /**
   * A batch may start now: none is being built, and either none is committing, or the queue
   * holds as many writes as the last batch took. While commits are quick, writes wait for the
   * one under way and go together (big batches cost the database least per write); once a
   * commit keeps them waiting longer than it takes a batch's worth to pile up (a slow disk, a
   * distant database), waiting gains nothing and the next batch goes.
   */
  private get free(): boolean {
    if (this.building) return false;
    return this.running.size === 0 || (this.running.size < this.inFlight && this.queue.length >= this.lastSize);
  }

  private schedule(): void {
    if (!this.free) return; // picked up when the batch being built sends its COMMIT, or one ends
    if (this.queue.length >= this.opts.maxSize) this.kick();
    else if (!this.cancelTimer) {
      if (this.opts.maxWaitMs === 0) {
        const t = setImmediate(() => this.kick());
        this.cancelTimer = () => clearImmediate(t);
      } else {
        const t = setTimeout(() => this.kick(), this.opts.maxWaitMs);
        this.cancelTimer = () => clearTimeout(t);
      }
    }
  }

  /** Starts the next batch if one may start. Writes queued while a batch was built have waited long enough: no timer for them. */
  private kick(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    if (!this.free || this.queue.length === 0) return;
    const batch = this.queue[0]!.alone ? this.queue.splice(0, 1) : this.queue.splice(0, this.opts.maxSize);
    this.lastSize = batch.length;
    const before = this.applied;
    let settle!: () => void;
    this.applied = new Promise<void>((resolve) => (settle = resolve));
    this.building = true;
    let sent = false;
    const built = () => {
      if (sent) return;
      sent = true;
      this.building = false;
      this.kick();
    };
    const run: Promise<void> = this.runBatch(batch, before, built).finally(() => {
      settle();
      this.running.delete(run);
      built();
      this.kick();
    });
    this.running.add(run);
  }

  private async runBatch(batch: Pending[], before: Promise<void>, built: () => void): Promise<void> {
    const alone = batch[0]!.alone;
    // A re-run after a collision reads what the index vouched for: the index may not know yet.
    const hints = mergeHints(batch, !alone);
    const first = await this.attempt(batch, { hints, deadline: alone?.deadline, onCommitting: built }, before);
    if (first.ok) {
      this.failing.worked();
      return this.answer(batch, first.outcomes);
    }
    if (!isConflict(first.error)) {
      this.failing.failed({ err: first.error, batchSize: batch.length });
      for (const item of batch) item.reject(Errors.storeUnavailable(first.error));
      return;
    }
    // One write that collided with another node's: it runs again, reading what that node
    // committed (also what the index vouched for, which may be what was out of date: its
    // commit then brings the index up to date).
    if (batch.length === 1) return this.again(batch[0]!, first.error);
    // Each write alone, first in line: the one that collided fails, the others commit. The failed
    // transaction's deadline still bounds them all, so a caller waits no longer than the write timeout.
    this.log.warn(
      { err: first.error, batchSize: batch.length },
      "a batch collided with another node's write at commit; re-running its writes one per transaction",
    );
    const deadline = conflictDeadline(first.error);
    this.queue.unshift(...batch.map((item) => ({ ...item, alone: { deadline } })));
  }

  /**
   * One transaction for these writes; once it committed and the batch started `before` it has
   * reached the index (or failed), the index gets its changes.
   */
  private async attempt(
    batch: Pending[],
    opts: TxOptions,
    before: Promise<void>,
  ): Promise<{ ok: true; outcomes: Outcome[] } | { ok: false; error: unknown }> {
    const outcomes: Outcome[] = [];
    const changes: Change[] = [];
    /** Where each write's changes start in `changes`, and where the next one's do. */
    const marks: number[] = [];
    const started = process.hrtime.bigint();
    try {
      await this.store.transaction(
        async (tx) => {
          const recording = new RecordingTx(tx, changes);
          for (const item of batch) {
            const mark = changes.length;
            marks.push(mark);
            await tx.savepoint();
            try {
              if (item.ctx) checkContext(item.ctx);
              const value = await item.op(recording);
              await tx.releaseSavepoint();
              outcomes.push({ ok: true, value, revision: 0 });
            } catch (error) {
              await tx.rollbackToSavepoint();
              changes.length = mark;
              outcomes.push({ ok: false, error });
            }
          }
        },
        { ...opts, onNumbered: (renumber) => renumberChanges(changes, renumber) },
      );
    } catch (error) {
      return { ok: false, error };
    }
    marks.push(changes.length);
    // Only now are the change numbers final (a store may number them at commit).
    outcomes.forEach((o, i) => {
      if (!o.ok) return;
      for (let k = marks[i]!; k < marks[i + 1]!; k++) {
        const c = changes[k]!;
        if (c.kind === 'event' && c.id > o.revision) o.revision = c.id;
      }
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.hooks.onBatch?.(batch.length, seconds);
    await before;
    try {
      this.hooks.onCommitted(changes);
    } catch (err) {
      // The write is durable; an index failure is a bug, not a reason to tell callers it failed.
      this.log.error({ err }, 'applying committed changes to the index failed');
    }
    return { ok: true, outcomes };
  }

  private answer(batch: Pending[], outcomes: Outcome[]): void {
    batch.forEach((item, i) => {
      const o = outcomes[i]!;
      if (o.ok) {
        if (item.ctx) item.ctx.revision = Math.max(item.ctx.revision ?? 0, o.revision);
        item.resolve(o.value);
      } else if (isConflict(o.error)) {
        this.again(item, o.error);
      } else {
        if (!(o.error instanceof MusterError))
          this.log.error({ err: o.error }, 'write failed with an unexpected error');
        item.reject(o.error);
      }
    });
  }

  /** A write that collided runs again, first in line, unless it did so often enough: then its caller gets the collision (UNAVAILABLE: retry). */
  private again(item: Pending, collision: unknown): void {
    const tries = (item.alone?.tries ?? 0) + 1;
    if (tries > COLLISION_RETRIES) return item.reject(collision);
    this.queue.unshift({ ...item, alone: { deadline: conflictDeadline(collision), tries } });
  }
}

/** The hints of a batch's writes; with what the index vouched for unless `indexed` is false. */
function mergeHints(batch: Pending[], indexed: boolean): TxHints | undefined {
  if (!batch.some((p) => p.hints)) return undefined;
  const out = { namespaces: [] as string[], services: [] as Array<[string, string]>, instances: [] as string[] };
  let known: IndexedRecords | undefined;
  // Loops, not push(...spread): a batch merges hundreds of one-element lists.
  const add = <T>(to: T[], from: readonly T[] | undefined) => {
    if (from) for (const x of from) to.push(x);
  };
  for (const { hints: h } of batch) {
    if (!h) continue;
    add(out.namespaces, h.namespaces);
    add(out.services, h.services);
    add(out.instances, h.instances);
    if (h.indexed && indexed) {
      known ??= { namespaces: [], services: [], absentInstances: [] };
      add(known.namespaces, h.indexed.namespaces);
      add(known.services, h.indexed.services);
      add(known.absentInstances, h.indexed.absentInstances);
    }
  }
  return known ? { ...out, indexed: known } : out;
}

/**
 * The records of committed changes with their real change numbers. They are the very objects the
 * writes put (and answer their callers with), so this renumbers those answers too.
 */
function renumberChanges(changes: Change[], renumber: (n: number) => number): void {
  for (const c of changes) {
    if (c.kind === 'event') c.id = renumber(c.id);
    else if ((c.kind === 'instance' || c.kind === 'service') && c.rec) c.rec.revision = renumber(c.rec.revision);
  }
}
