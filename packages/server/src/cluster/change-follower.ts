import type { RegistryEvent } from '@muster/api';
import type { Logger } from 'pino';
import type { Change } from '../batch/changes.js';
import { serviceKey, type RegistryIndex } from '../index/registry-index.js';
import type { ChangeLog, RecordKeys } from '../store/store.js';

export interface FollowerOptions {
  /** The safety net: how often the change log is read even without a notification. */
  pollIntervalMs: number;
  /**
   * How long a missing change number is waited for. Ids are taken when a transaction writes its
   * event and become visible when it commits, so a later id can be seen first; an id that never
   * appears belonged to a transaction that rolled back.
   */
  gapTimeoutMs: number;
  /** Events read per round trip. */
  pageSize: number;
  /** Told when another node created or revoked an access token: tokens are not in the index. Awaited, so that they count as applied once reloaded. */
  onTokenEvents?: () => void | Promise<void>;
  /** Told, once the index holds them, that every change up to this number is applied (read-your-writes waits on it). */
  onApplied?: (revision: number) => void;
}

const MAX_OWN = 100_000;
/** Ranges of its own change numbers a read leaves out at most (the rest are read and passed over). */
const MAX_SKIP_RANGES = 64;

/**
 * Keeps this node's index current with what other nodes wrote (DESIGN, cluster mode). It reads
 * the change log (the event table, whose id is the change sequence) after the last id it has
 * applied, re-reads the rows those events name and applies them to the index like a committed
 * batch, so watchers here wake as they do for local writes. A notification only makes it read
 * sooner; the periodic read is the safety net, so a lost notification costs one poll interval.
 *
 * It follows ids, never timestamps: clocks of several nodes skew, ids do not.
 */
export class ChangeFollower {
  /** Every id up to here is applied (or was given up as a rolled-back gap). */
  private applied = 0;
  /** Ids above `applied` not seen yet, with when they were first missed. */
  private gaps = new Map<number, number>();
  /** The highest id read so far; ids up to it are applied unless they are gaps. */
  private seenUpTo = 0;
  /** Change numbers this node committed itself and not read yet: its index has them already. */
  private readonly own = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** Last read failure, for readiness and logs; undefined when the last read worked. */
  lastError: Error | undefined;

  constructor(
    private readonly store: ChangeLog,
    private readonly index: RegistryIndex,
    private readonly opts: FollowerOptions,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Starts after the snapshot the index was loaded from. */
  start(lastEventId: number): void {
    this.applied = this.seenUpTo = lastEventId;
    this.opts.onApplied?.(this.applied);
    this.timer = setInterval(() => this.poke(), this.opts.pollIntervalMs);
    this.timer.unref();
  }

  /**
   * Re-applies the changes logged since `sinceMs`. A transaction of another node can hold an id
   * below the snapshot's newest one and commit just after the snapshot was read: following only
   * from that newest id would never see it. Applying is idempotent, so replaying a little more
   * than needed costs only reads.
   */
  async replay(sinceMs: number): Promise<void> {
    let afterId = 0;
    for (;;) {
      const events = await this.store.listEvents({ since: sinceMs, afterId, limit: this.opts.pageSize });
      if (events.length > 0) await this.applyEvents(events);
      if (events.length < this.opts.pageSize) return;
      afterId = events[events.length - 1]!.id;
    }
  }

  /** The highest change number seen in the change log: none above it was committed when it was read. */
  get newestSeen(): number {
    return this.seenUpTo;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }

  /**
   * Change numbers this node just committed: the index has their changes, so the change log
   * read passes over them instead of reading their rows back.
   */
  committedHere(ids: readonly number[]): void {
    // Only a bound on memory: an id forgotten is read back, which costs a read, not correctness.
    if (this.own.size + ids.length > MAX_OWN) this.own.clear();
    for (const id of ids) if (id > this.seenUpTo) this.own.add(id);
  }

  /** Reads the change log now (coalesced with a read under way). */
  poke(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => (this.running = undefined));
  }

  /** Reads until caught up; resolves when done. For tests and for read-your-writes. */
  async catchUp(): Promise<void> {
    this.poke();
    while (this.running) await this.running;
  }

  /**
   * Brings one instance into the index straight from the store: a heartbeat for an instance
   * registered through another node a moment ago must not answer NOT_FOUND.
   */
  async fetchInstance(id: string): Promise<boolean> {
    const { instances } = await this.store.readRecords({ namespaces: [], services: [], instances: [id] });
    const rec = instances[0];
    if (!rec) return false;
    const svc = await this.store.readRecords({
      namespaces: [rec.namespace],
      services: [[rec.namespace, rec.service]],
      instances: [],
    });
    this.index.apply([
      ...svc.namespaces.map((n): Change => ({ kind: 'namespace', name: n.name, rec: n })),
      ...svc.services
        .filter((s) => (this.index.service(s.namespace, s.name)?.rec.revision ?? -1) <= s.revision)
        .map((s): Change => ({ kind: 'service', namespace: s.namespace, name: s.name, rec: s })),
      ...(this.newer(rec.id, rec.revision) ? [{ kind: 'instance', id: rec.id, rec } as Change] : []),
    ]);
    return true;
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        // From the first change not applied (a late one shows up there), then page by page: a
        // gap still waited for must not make every read start over at it.
        let after: number | undefined = this.applied;
        while (!this.stopped && after !== undefined) after = await this.readPage(after);
        if (this.lastError) this.log.info('change log readable again; index caught up');
        this.lastError = undefined;
      } catch (err) {
        if (!this.lastError)
          this.log.warn({ err }, 'reading the change log failed; the index may be stale until it works again');
        this.lastError = err as Error;
        return;
      }
    } while (this.again && !this.stopped);
  }

  /** One page of the change log after `afterId` applied; answers where the next page starts when it was full. */
  private async readPage(afterId: number): Promise<number | undefined> {
    // Its own changes are left out of the read (committed, so already readable: they count as
    // read); unused change numbers are not: each one seen is one not waited for as a gap.
    const skip = this.ownRanges(afterId);
    const events = await this.store.listEvents({ afterId, limit: this.opts.pageSize, withUnused: true, skip });
    const full = events.length === this.opts.pageSize;
    const last = events.length > 0 ? events[events.length - 1]!.id : afterId;
    // A full page goes on after its last id; one that is not has read everything up to the last own number left out.
    const top = full ? last : Math.max(last, skip.length > 0 ? skip[skip.length - 1]![1] : afterId);
    if (top === afterId) {
      this.expireGaps();
      this.opts.onApplied?.(this.applied);
      return undefined;
    }
    const fresh = events.filter((e) => !this.seen(e.id) && !this.own.has(e.id));
    this.advance(afterId, events, top);
    if (fresh.length > 0) await this.applyEvents(fresh);
    // Only now: `applied` moved in advance(), but the index has the rows since applyEvents.
    this.opts.onApplied?.(this.applied);
    return full ? last : undefined;
  }

  /** Its own change numbers above `afterId` as ranges of consecutive ids (a batch's are), the lowest first. */
  private ownRanges(afterId: number): Array<[number, number]> {
    const ids = [...this.own].filter((id) => id > afterId).sort((a, b) => a - b);
    const out: Array<[number, number]> = [];
    for (const id of ids) {
      const r = out[out.length - 1];
      if (r && id === r[1] + 1) r[1] = id;
      else if (out.length === MAX_SKIP_RANGES) break;
      else out.push([id, id]);
    }
    return out;
  }

  /** Ids up to `top` (after `afterId`) neither in the page nor this node's own are gaps to wait for. */
  private advance(afterId: number, events: RegistryEvent[], top: number): void {
    const now = this.now();
    const ids = new Set(events.map((e) => e.id));
    for (let id = Math.max(afterId, this.applied) + 1; id <= top; id++) {
      if (ids.has(id) || this.own.has(id)) this.gaps.delete(id);
      else if (!this.gaps.has(id)) this.gaps.set(id, now);
    }
    this.seenUpTo = Math.max(this.seenUpTo, top);
    this.expireGaps();
    // Kept until every number below is applied: a read that starts over from a gap leaves them out again.
    for (const id of this.own) if (id <= this.applied) this.own.delete(id);
  }

  private seen(id: number): boolean {
    return id <= this.seenUpTo && !this.gaps.has(id);
  }

  /** `applied` moves up to the first gap still worth waiting for. */
  private expireGaps(): void {
    const now = this.now();
    for (const [id, since] of this.gaps) {
      if (now - since >= this.opts.gapTimeoutMs) {
        this.gaps.delete(id);
        this.log.debug({ id }, 'change number never appeared (a rolled-back write); not waiting for it any longer');
      }
    }
    let firstGap = Infinity;
    for (const id of this.gaps.keys()) firstGap = Math.min(firstGap, id);
    this.applied = Math.max(this.applied, Math.min(firstGap - 1, this.seenUpTo));
  }

  private async applyEvents(events: RegistryEvent[]): Promise<void> {
    const namespaces = new Map<string, number>();
    const services = new Map<string, { ns: string; name: string; id: number }>();
    const instances = new Map<string, number>();
    let tokens = false;
    for (const e of events) {
      if (e.type === 'token.created' || e.type === 'token.revoked') tokens = true;
      if (e.type.startsWith('namespace.')) namespaces.set(e.namespace, e.id);
      if (e.service !== undefined)
        services.set(serviceKey(e.namespace, e.service), { ns: e.namespace, name: e.service, id: e.id });
      if (e.instanceId !== undefined) instances.set(e.instanceId, e.id);
    }
    const keys: RecordKeys = {
      namespaces: [...namespaces.keys()],
      services: [...services.values()].map((s) => [s.ns, s.name]),
      instances: [...instances.keys()],
    };
    const rows = await this.store.readRecords(keys);
    const changes: Change[] = [];
    // Rows read now may be older than what this node itself committed meanwhile: a row is
    // applied only when it is not behind the index, and an absent row removes only an entry
    // that the deleting event is not behind.
    const nsRows = new Map(rows.namespaces.map((n) => [n.name, n]));
    for (const name of namespaces.keys()) changes.push({ kind: 'namespace', name, rec: nsRows.get(name) });
    const svcRows = new Map(rows.services.map((s) => [serviceKey(s.namespace, s.name), s]));
    for (const [key, s] of services) {
      const row = svcRows.get(key);
      const cur = this.index.service(s.ns, s.name)?.rec.revision;
      if (row ? cur === undefined || row.revision >= cur : cur === undefined || cur <= s.id) {
        changes.push({ kind: 'service', namespace: s.ns, name: s.name, rec: row });
      }
    }
    const instRows = new Map(rows.instances.map((i) => [i.id, i]));
    for (const [id, eventId] of instances) {
      const row = instRows.get(id);
      if (row ? this.newer(id, row.revision) : (this.index.instances.get(id)?.revision ?? 0) <= eventId) {
        changes.push({ kind: 'instance', id, rec: row });
      }
    }
    if (changes.length > 0) this.index.apply(changes);
    if (tokens) await this.opts.onTokenEvents?.();
  }

  private newer(id: string, revision: number): boolean {
    const cur = this.index.instances.get(id);
    return !cur || revision >= cur.revision;
  }
}
