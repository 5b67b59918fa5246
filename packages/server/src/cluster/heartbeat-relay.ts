import { clusterKeys } from './cluster-keys.js';
import {
  type ClusterLog,
  DEFAULT_COMMAND_TIMEOUT_MS,
  errorMessage,
  Listeners,
  type RedisModuleOptions,
  silentLog,
  withTimeout,
} from './redis-common.js';

export interface HeartbeatRelayOptions extends RedisModuleOptions {
  /** How often recorded heartbeats are written to Redis. Default 500 ms. */
  flushIntervalMs?: number;
  /**
   * Ids per script call or HMGET/HDEL. A bigger batch is split into several commands sent in one
   * pipeline, so one huge flush does not block Redis (scripts run atomically) for long. Default 1000.
   */
  chunkSize?: number;
  /**
   * This node's id. Set, every flush (an empty one too) ends by noting in `${prefix}flushed` the
   * flush generation it saw, so the node that takes the sweep lease can wait until every node
   * has written what it held (FlushBarrier). `stop()` removes the note.
   */
  node?: string;
}

// Writes each id's time only when it is newer than the stored one: heartbeats for one instance
// can arrive at several nodes, and their flushes reach Redis in any order. It also makes a late
// or repeated flush (a timed-out pipeline that still ran) harmless.
const MAX_MERGE = `
local n = 0
for i = 1, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]))
  local new = tonumber(ARGV[i + 1])
  if cur == nil or cur < new then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    n = n + 1
  end
end
return n`;

// Notes that this node's flush, everything it held before it included, is in: run after the
// flush's merges, in the same pipeline.
const MARK = `redis.call('HSET', KEYS[1], ARGV[1], redis.call('GET', KEYS[2]) or '0') return 1`;

/**
 * Makes the heartbeats any node takes visible to the node that runs the sweep (DESIGN, cluster
 * mode: heartbeats go to Redis, so any node can take any instance's heartbeat).
 *
 * `record()` only touches memory (the heartbeat path stays free of round trips); every
 * `flushIntervalMs` one pipelined write merges the newest time per id into the hash
 * `${prefix}hb`, keeping the maximum. What a failed flush could not write stays in memory and goes
 * with the next one, so an outage loses nothing; memory stays bounded by the number of ids,
 * since only the newest time per id is kept.
 *
 * Times are milliseconds on the cluster's clock (ClusterClock), the one the sweep compares them
 * with, whatever the clocks of the nodes that took them say.
 */
export class HeartbeatRelay {
  private readonly redis: HeartbeatRelayOptions['redis'];
  private readonly log: ClusterLog;
  private readonly key: string;
  private readonly keys: ReturnType<typeof clusterKeys>;
  private readonly node: string | undefined;
  private readonly intervalMs: number;
  private readonly chunkSize: number;
  private readonly timeoutMs: number;
  private readonly listeners: Listeners<boolean>;

  /** Recorded and not yet written: id -> newest time. */
  private pending = new Map<string, number>();
  /** Being written by the flush under way (still counts for `times()`). */
  private writing = new Map<string, number>();
  private flushing: Promise<boolean> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private _available = false;
  private checked = false;
  /** Why the last round trip failed; undefined after one that worked. */
  lastError: string | undefined;

  constructor(opts: HeartbeatRelayOptions) {
    this.redis = opts.redis;
    this.log = opts.log ?? silentLog;
    this.keys = clusterKeys(opts.prefix);
    this.key = this.keys.heartbeats;
    this.node = opts.node;
    this.intervalMs = opts.flushIntervalMs ?? 500;
    this.chunkSize = opts.chunkSize ?? 1000;
    this.timeoutMs = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.listeners = new Listeners(this.log, 'heartbeat relay');
    if (!(this.intervalMs > 0 && this.chunkSize > 0))
      throw new RangeError('heartbeat relay: flushIntervalMs and chunkSize must be > 0');
  }

  /** Whether the last Redis round trip worked (false until the first one did). */
  get available(): boolean {
    return this._available;
  }

  /** Called with the new value whenever `available` changes. Returns the unsubscribe function. */
  onAvailability(cb: (available: boolean) => void): () => void {
    return this.listeners.add(cb);
  }

  /** How many ids wait to be written (including those of a flush under way). */
  get pendingCount(): number {
    let n = this.pending.size;
    for (const id of this.writing.keys()) if (!this.pending.has(id)) n++;
    return n;
  }

  /** Notes a heartbeat of `id` at `at` (ms since the epoch). Memory only; an older time than one already noted is ignored. */
  record(id: string, at: number): void {
    if (!Number.isFinite(at)) return;
    const cur = this.pending.get(id);
    if (cur === undefined || cur < at) this.pending.set(id, at);
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
    void this.flush(); // also finds out at once whether Redis is there
  }

  /** Stops the timer and makes a last attempt to write what is pending; nobody need wait for this node's flushes any more. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
    if (this.node === undefined) return;
    await withTimeout(this.redis.hdel(this.keys.flushed, this.node), this.timeoutMs, 'flush note').catch(() => {});
  }

  /**
   * Writes what is pending now (joins a flush under way instead of starting a second one).
   * Resolves true when everything that was pending reached Redis; never rejects.
   */
  flush(): Promise<boolean> {
    this.flushing ??= this.write().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  /**
   * The newest heartbeat time of each of `ids` that has one: Redis's, or this node's own not yet
   * written one when newer. Resolves `undefined` when Redis did not answer: the caller cannot
   * tell a silent instance from one heartbeating through another node then, and must not expire
   * anything on that answer.
   */
  async times(ids: readonly string[]): Promise<Map<string, number> | undefined> {
    const out = new Map<string, number>();
    if (ids.length === 0) return out;
    try {
      const chunks = this.chunks(ids);
      const p = this.redis.pipeline();
      for (const c of chunks) p.hmget(this.key, ...c);
      const res = await withTimeout(p.exec(), this.timeoutMs, 'heartbeat times');
      chunks.forEach((c, i) => {
        const [err, values] = res?.[i] ?? [new Error('no reply'), []];
        if (err) throw err;
        c.forEach((id, j) => {
          const t = Number((values as (string | null)[])[j] ?? NaN);
          if (Number.isFinite(t)) out.set(id, t);
        });
      });
      this.setAvailable(true);
    } catch (e) {
      this.failed(e, 'reading heartbeat times failed');
      return undefined;
    }
    for (const id of ids) {
      const local = Math.max(this.pending.get(id) ?? -Infinity, this.writing.get(id) ?? -Infinity);
      if (local > (out.get(id) ?? -Infinity)) out.set(id, local);
    }
    return out;
  }

  /**
   * Removes `ids` (deregistered or cleaned-up instances) here and in Redis. Waits for a flush
   * under way first, so it cannot write them back after the delete. Resolves false when Redis did
   * not answer (a leftover field is harmless: nothing reads a time of an unknown instance).
   */
  async forget(ids: readonly string[]): Promise<boolean> {
    if (ids.length === 0) return true;
    await this.flushing;
    for (const id of ids) this.pending.delete(id);
    try {
      const p = this.redis.pipeline();
      for (const c of this.chunks(ids)) p.hdel(this.key, ...c);
      const res = await withTimeout(p.exec(), this.timeoutMs, 'forget heartbeats');
      const err = res?.find(([e]) => e)?.[0];
      if (err) throw err;
      this.setAvailable(true);
      return true;
    } catch (e) {
      this.failed(e, 'removing heartbeat times failed');
      return false;
    }
  }

  private async write(): Promise<boolean> {
    if (this.pending.size === 0 && this.node === undefined) {
      // Nothing to write: still find out when Redis is back (or there at first), so
      // `available` does not keep reporting an outage that is over.
      if (this.checked && this._available) return true;
      try {
        await withTimeout(this.redis.ping(), this.timeoutMs, 'ping');
        this.setAvailable(true);
        return true;
      } catch (e) {
        this.failed(e, 'Redis not reachable');
        return false;
      }
    }
    this.writing = this.pending;
    this.pending = new Map();
    const pairs = [...this.writing];
    const chunks: [string, number][][] = [];
    for (let i = 0; i < pairs.length; i += this.chunkSize) chunks.push(pairs.slice(i, i + this.chunkSize));
    let ok = true;
    try {
      const p = this.redis.pipeline();
      for (const c of chunks) p.eval(MAX_MERGE, 1, this.key, ...c.flatMap(([id, at]) => [id, String(at)]));
      if (this.node !== undefined) p.eval(MARK, 2, this.keys.flushed, this.keys.flushGeneration, this.node);
      const res = await withTimeout(p.exec(), this.timeoutMs, 'heartbeat flush');
      const mark = res?.[chunks.length];
      if (this.node !== undefined && (!mark || mark[0])) ok = false;
      chunks.forEach((c, i) => {
        const reply = res?.[i];
        const err = reply ? reply[0] : new Error('no reply');
        if (err) {
          ok = false;
          this.keep(c);
          this.log.warn(
            { err: errorMessage(err), ids: c.length },
            'heartbeat relay: part of a flush failed; kept for the next',
          );
        }
      });
      if (ok) this.setAvailable(true);
      else this.failed(new Error('part of a flush failed'), 'heartbeat flush failed');
    } catch (e) {
      ok = false;
      this.keep(pairs);
      this.failed(e, 'heartbeat flush failed; kept for the next');
    }
    this.writing = new Map();
    return ok;
  }

  /** Puts back what a failed flush could not write; a newer time recorded meanwhile wins. */
  private keep(pairs: Iterable<[string, number]>): void {
    for (const [id, at] of pairs) this.record(id, at);
  }

  private chunks(ids: readonly string[]): string[][] {
    const out: string[][] = [];
    for (let i = 0; i < ids.length; i += this.chunkSize) out.push(ids.slice(i, i + this.chunkSize));
    return out;
  }

  private failed(e: unknown, msg: string): void {
    this.lastError = errorMessage(e);
    // Log the transition, not every retry of an outage.
    if (this._available || !this.checked)
      this.log.warn({ err: this.lastError, pending: this.pending.size }, `heartbeat relay: ${msg}`);
    this.setAvailable(false);
  }

  private setAvailable(v: boolean): void {
    this.checked = true;
    if (v) this.lastError = undefined;
    if (this._available === v) return;
    this._available = v;
    if (v) this.log.info({ pending: this.pending.size }, 'heartbeat relay: Redis reachable');
    this.listeners.emit(v);
  }
}
