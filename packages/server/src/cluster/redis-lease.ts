import { performance } from 'node:perf_hooks';
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

export interface LeaseOptions extends RedisModuleOptions {
  /** This node's id, written as the lease's value. Must be unique per running process. */
  nodeId: string;
  /** The lease's name; the key is `${prefix}lease:${name}`. Default `sweep`. */
  name?: string;
  /** How long the lease lives in Redis after each acquire or renewal. Default 15 000 ms. */
  ttlMs?: number;
  /** How often the holder renews and the others try to acquire. Default ttlMs / 3. */
  renewIntervalMs?: number;
  /**
   * How much sooner than `ttlMs` the holder gives up a lease it could not renew. It covers the
   * rate difference between this node's clock and Redis's (the key expires on Redis's clock) and
   * a late timer. Default ttlMs / 10.
   */
  safetyMarginMs?: number;
}

// Extends the lease only while it is still ours: a plain PEXPIRE would extend a lease another
// node took after ours lapsed.
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
// Deletes the lease only while it is still ours, for the same reason.
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/**
 * One holder at a time of a named lease in Redis (DESIGN, cluster mode: the node that runs the
 * expiry sweep). Every node runs one; each tries `SET key nodeId NX PX ttl` until it gets it, the
 * holder renews with a compare-and-renew script every `renewIntervalMs` and releases it with a
 * compare-and-delete on `stop()`; when the holder dies, the key expires and another node takes it
 * at its next attempt (within ttl + one interval).
 *
 * Never two believers: the holder counts the lease as its own only until `sentAt + ttl - margin`
 * of the last acquire or renewal that Redis confirmed, where `sentAt` is when that command was
 * sent (Redis started the key's ttl later than that, so the local deadline always falls before
 * the key's expiry). A failed renewal drops the lease at once; one that is merely slow drops it
 * at the deadline, however long Redis takes to answer. Times use `performance.now()`, which wall
 * clock jumps do not move.
 */
export class Lease {
  private readonly redis: LeaseOptions['redis'];
  private readonly log: ClusterLog;
  private readonly key: string;
  private readonly nodeId: string;
  private readonly ttlMs: number;
  private readonly intervalMs: number;
  private readonly marginMs: number;
  private readonly timeoutMs: number;
  private readonly listeners: Listeners<boolean>;

  /** Whether the last confirmed acquire or renewal made us the holder (see `held` for the deadline). */
  private mine = false;
  /** performance.now() after which the lease is not ours unless a renewal confirmed it again. */
  private validUntil = 0;
  private tickTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private attempt: Promise<void> | undefined;
  private running = false;
  /** Why the last attempt failed (Redis error or timeout); undefined after one that reached Redis. */
  lastError: string | undefined;

  constructor(opts: LeaseOptions) {
    this.redis = opts.redis;
    this.log = opts.log ?? silentLog;
    this.nodeId = opts.nodeId;
    this.key = clusterKeys(opts.prefix).lease(opts.name ?? 'sweep');
    this.ttlMs = opts.ttlMs ?? 15_000;
    this.intervalMs = opts.renewIntervalMs ?? Math.floor(this.ttlMs / 3);
    this.marginMs = opts.safetyMarginMs ?? Math.ceil(this.ttlMs / 10);
    // An attempt must settle before the next is due, so one never overtakes another.
    this.timeoutMs = Math.min(opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS, this.intervalMs);
    this.listeners = new Listeners(this.log, 'lease');
    if (!this.nodeId) throw new RangeError('lease: nodeId must not be empty');
    if (!(this.ttlMs > 0 && this.intervalMs > 0 && this.marginMs >= 0))
      throw new RangeError('lease: ttlMs and renewIntervalMs must be > 0, safetyMarginMs >= 0');
    // A renewal is sent every interval and may take up to timeoutMs to confirm; the lease must
    // stay valid that long, or the holder would drop it between two healthy renewals.
    if (this.intervalMs + this.timeoutMs >= this.ttlMs - this.marginMs) {
      throw new RangeError(
        `lease: renewIntervalMs (${this.intervalMs}) + commandTimeoutMs (${this.timeoutMs}) must be below ttlMs - safetyMarginMs (${this.ttlMs - this.marginMs})`,
      );
    }
  }

  /** Whether this node holds the lease now. Checked against the deadline on every read. */
  get held(): boolean {
    return this.mine && performance.now() < this.validUntil;
  }

  /** How long the lease is still ours without another renewal (0 when not held). */
  remainingMs(): number {
    return this.held ? Math.max(0, this.validUntil - performance.now()) : 0;
  }

  /** Called with true when this node gains the lease and false when it loses it. Returns the unsubscribe function. */
  onChange(cb: (held: boolean) => void): () => void {
    return this.listeners.add(cb);
  }

  /** Who holds the lease in Redis now: a node id, null when nobody, undefined when Redis did not answer. */
  async holder(): Promise<string | null | undefined> {
    try {
      return await withTimeout(this.redis.get(this.key), this.timeoutMs, 'lease holder');
    } catch (e) {
      this.log.debug({ err: errorMessage(e) }, 'lease: cannot read the holder');
      return undefined;
    }
  }

  /** Starts trying to acquire (at once, then every interval). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.tick();
  }

  /**
   * Stops renewing and, unless `release: false`, deletes the lease if it is still ours so another
   * node takes it at its next attempt instead of after the ttl. `release: false` leaves the key
   * to expire, like a crash. Either way this node no longer counts as the holder.
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearTimeout(this.tickTimer);
    await this.attempt;
    this.drop('stopped');
    if (opts.release === false) return;
    try {
      // Also sent when we did not think we held it: an acquire that timed out may still have
      // been applied, and the compare-and-delete only removes our own value.
      const n = await withTimeout(
        this.redis.eval(RELEASE, 1, this.key, this.nodeId) as Promise<number>,
        this.timeoutMs,
        'lease release',
      );
      if (n === 1) this.log.info({ lease: this.key, node: this.nodeId }, 'lease released');
    } catch (e) {
      this.log.warn({ lease: this.key, err: errorMessage(e) }, 'lease: release failed; it expires on its own');
    }
  }

  private tick(): void {
    if (!this.running) return;
    const started = performance.now();
    this.attempt = this.tryOnce().finally(() => {
      this.attempt = undefined;
      if (!this.running) return;
      // Keep a steady rhythm measured from the send, not from the answer.
      this.tickTimer = setTimeout(() => this.tick(), Math.max(0, this.intervalMs - (performance.now() - started)));
      this.tickTimer.unref();
    });
  }

  private async tryOnce(): Promise<void> {
    const sentAt = performance.now();
    try {
      let ok = false;
      if (!this.mine) {
        const r = await withTimeout(
          this.redis.set(this.key, this.nodeId, 'PX', this.ttlMs, 'NX'),
          this.timeoutMs,
          'lease acquire',
        );
        ok = r === 'OK';
      }
      // Renew what we hold; also when NX failed, because the key may still be ours (a renewal
      // or acquire that timed out here but was applied), which is cheaper than waiting it out.
      // sentAt stays the first command's: earlier is the safe side.
      if (!ok)
        ok =
          (await withTimeout(
            this.redis.eval(RENEW, 1, this.key, this.nodeId, String(this.ttlMs)) as Promise<number>,
            this.timeoutMs,
            'lease renew',
          )) === 1;
      this.lastError = undefined;
      if (ok) this.confirm(sentAt);
      else this.drop('held by another node');
    } catch (e) {
      this.lastError = errorMessage(e);
      this.drop(`Redis: ${this.lastError}`);
    }
  }

  private confirm(sentAt: number): void {
    if (!this.running) return; // stop() raced the answer: it releases, we do not claim
    const until = sentAt + this.ttlMs - this.marginMs;
    if (performance.now() >= until) {
      this.drop('the confirmation came too late');
      return;
    }
    this.validUntil = until;
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(() => this.checkDeadline(), until - performance.now());
    this.deadlineTimer.unref();
    if (!this.mine) {
      this.mine = true;
      this.log.info({ lease: this.key, node: this.nodeId }, 'lease acquired');
      this.listeners.emit(true);
    }
  }

  private checkDeadline(): void {
    const left = this.validUntil - performance.now();
    if (left > 0) {
      // Timers may fire a fraction of a millisecond early.
      this.deadlineTimer = setTimeout(() => this.checkDeadline(), Math.ceil(left));
      this.deadlineTimer.unref();
      return;
    }
    this.drop('no renewal confirmed in time');
  }

  private drop(reason: string): void {
    this.validUntil = 0;
    clearTimeout(this.deadlineTimer);
    if (!this.mine) return;
    this.mine = false;
    if (reason === 'stopped') this.log.info({ lease: this.key, node: this.nodeId }, 'lease given up: stopping');
    else this.log.warn({ lease: this.key, node: this.nodeId, reason }, 'lease lost');
    this.listeners.emit(false);
  }
}
