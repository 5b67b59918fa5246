import { performance } from 'node:perf_hooks';
import { clusterKeys } from './cluster-keys.js';
import {
  type ClusterLog,
  DEFAULT_COMMAND_TIMEOUT_MS,
  errorMessage,
  type RedisModuleOptions,
  silentLog,
  withTimeout,
} from './redis-common.js';

export interface FlushBarrierOptions extends RedisModuleOptions {
  /** The most the sweep waits for a node that does not flush: it is presumed gone. */
  waitMs: number;
}

/**
 * Holds the sweep of a node that has just taken the sweep lease until every node that was
 * flushing heartbeats under the previous holder has flushed again (DESIGN, cluster mode). After
 * an outage of Redis the nodes come back one by one, each with the heartbeats it kept in memory
 * meanwhile; a sweep that ran before a slow node wrote them would expire instances that were
 * heartbeating all along.
 *
 * Acquisitions of the lease are numbered (`${prefix}flushgen`, one INCR each) and every node's
 * flush ends by noting the number it saw (HeartbeatRelay's `node`). Taking the lease as number G,
 * the holder waits while a node's note still shows the generation the nodes were at before (it
 * has not flushed since; a node that stops cleanly removes its note), but no longer than
 * `waitMs`: a node that has not flushed by then is dead, or cut off from Redis with its
 * heartbeats, and waiting longer would stop every expiry for a node that may never return. Notes
 * older than that generation belong to nodes gone before the last holder took the lease: they
 * are removed. A counter that starts at 1 (a new cluster, or a Redis that lost its data) says
 * nothing about who is alive: the sweep waits `waitMs`.
 */
export class FlushBarrier {
  private readonly redis: FlushBarrierOptions['redis'];
  private readonly log: ClusterLog;
  private readonly keys: ReturnType<typeof clusterKeys>;
  private readonly waitMs: number;
  private readonly timeoutMs: number;
  /** performance.now() when the lease was taken; undefined: nothing to wait for. */
  private armedAt: number | undefined;
  private generation: Promise<number> | undefined;

  constructor(opts: FlushBarrierOptions) {
    this.redis = opts.redis;
    this.log = opts.log ?? silentLog;
    this.keys = clusterKeys(opts.prefix);
    this.waitMs = opts.waitMs;
    this.timeoutMs = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  }

  /** The lease was just taken: sweeps wait from now on. */
  arm(): void {
    this.armedAt = performance.now();
    this.generation = undefined;
    this.nextGeneration();
  }

  /** The lease was lost: nothing to wait for until it is taken again. */
  disarm(): void {
    this.armedAt = undefined;
    this.generation = undefined;
  }

  /** Whether this node may sweep now. Never rejects. */
  async passed(): Promise<boolean> {
    const armedAt = this.armedAt;
    if (armedAt === undefined) return true;
    let pending: string[] | undefined;
    try {
      const g = await this.nextGeneration();
      if (g > 1) pending = await this.unflushed(g);
    } catch (e) {
      this.generation = undefined; // taken again at the next sweep
      this.log.debug({ err: errorMessage(e) }, 'flush barrier: Redis did not answer');
    }
    if (this.armedAt !== armedAt) return false; // the lease was lost or taken again meanwhile
    const waitedMs = Math.round(performance.now() - armedAt);
    if (pending?.length === 0) {
      this.log.info({ waitedMs }, 'every node has written the heartbeats it held: sweeping');
      this.disarm();
      return true;
    }
    if (waitedMs >= this.waitMs) {
      this.log.warn(
        { waitedMs, unflushed: pending ?? 'unknown' },
        'sweeping without heartbeats a node may still hold: it has not flushed since this node took the sweep lease',
      );
      this.disarm();
      return true;
    }
    return false;
  }

  /** The number of this acquisition, taken once per arm (a retry after a failure may skip one: harmless, see unflushed). */
  private nextGeneration(): Promise<number> {
    if (!this.generation) {
      this.generation = withTimeout(this.redis.incr(this.keys.flushGeneration), this.timeoutMs, 'flush generation');
      this.generation.catch(() => {}); // awaited (and retried) by passed()
    }
    return this.generation;
  }

  /**
   * Nodes whose note shows the newest generation below `g`: they were flushing before and have
   * not since. That generation, not g - 1: a retried INCR may have counted twice.
   */
  private async unflushed(g: number): Promise<string[]> {
    const notes = await withTimeout(this.redis.hgetall(this.keys.flushed), this.timeoutMs, 'flush notes');
    const before = Object.entries(notes)
      .map(([node, v]) => [node, Number(v)] as const)
      .filter(([, v]) => v < g);
    const last = Math.max(-1, ...before.map(([, v]) => v));
    const gone = before.filter(([, v]) => v < last).map(([node]) => node);
    if (gone.length > 0)
      void withTimeout(this.redis.hdel(this.keys.flushed, ...gone), this.timeoutMs, 'old flush notes').catch(() => {});
    return before.filter(([, v]) => v === last).map(([node]) => node);
  }
}
