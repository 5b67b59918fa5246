import { performance } from 'node:perf_hooks';
import { Errors } from '../errors.js';

/**
 * How far this node's index has got in the change sequence: every change up to `get()` is in it.
 * Read-your-writes waits on it (DESIGN, cluster mode): a request carrying the revision an earlier
 * write answered is served only once that revision is reached, by whichever node it reaches.
 *
 * A single node applies every write before it answers it, so it has reached every revision a
 * client can hold. In a cluster, the change follower moves it; `catchUp` makes the follower read
 * the change log at once and answers the newest change number the log held.
 */
export class AppliedRevision {
  private value = 0;
  private readonly waiters = new Set<{ revision: number; done: () => void }>();

  constructor(private readonly catchUp?: () => Promise<number>) {}

  get(): number {
    return this.value;
  }

  /** Every change up to `revision` is in the index now. */
  advance(revision: number): void {
    if (revision <= this.value) return;
    this.value = revision;
    for (const w of this.waiters) if (w.revision <= revision) w.done();
  }

  /**
   * Resolves once `revision` is applied here. Waits at most `waitMs`, then UNAVAILABLE (another
   * node may have it). A revision the store never held (from another registry, or a store that
   * was reset) is FAILED_PRECONDITION at once: waiting cannot bring it.
   */
  async reach(revision: number, waitMs: number): Promise<void> {
    if (revision <= this.value) return;
    if (!this.catchUp) throw Errors.revisionAhead(revision, this.value);
    const started = performance.now();
    let done!: () => void;
    const reached = new Promise<boolean>((resolve) => (done = () => resolve(true)));
    const waiter = { revision, done };
    this.waiters.add(waiter);
    let timer: NodeJS.Timeout | undefined;
    try {
      const newest = await Promise.race([
        reached.then(() => Infinity),
        this.catchUp().catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))),
        sleep(waitMs, (t) => (timer = t)),
      ]);
      if (revision <= this.value) return;
      // The change log cannot be read: no use waiting; another node may have it.
      if (newest instanceof Error) throw Errors.revisionUnreachable(revision, this.value, newest);
      // The log, read after this revision was answered, does not hold it: it never will.
      if (newest !== undefined && newest < revision) throw Errors.revisionAhead(revision, newest);
      // Read, but a change below it is not in yet (a commit of another node still under way).
      clearTimeout(timer);
      const left = waitMs - (performance.now() - started);
      if (left <= 0 || !(await Promise.race([reached, sleep(left, (t) => (timer = t)).then(() => false)]))) {
        throw Errors.revisionNotApplied(revision, this.value, Math.round(performance.now() - started));
      }
    } finally {
      clearTimeout(timer);
      this.waiters.delete(waiter);
    }
  }
}

/** Resolves undefined after `ms`; hands its timer out so the caller can clear it. */
function sleep(ms: number, keep: (t: NodeJS.Timeout) => void): Promise<undefined> {
  return new Promise((resolve) => keep(setTimeout(() => resolve(undefined), Math.max(0, ms))));
}
