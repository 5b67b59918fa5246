import type { Logger } from 'pino';
import { MISSED_HEARTBEATS } from '@muster/api';
import type { Clock } from '../clock.js';
import type { RegistryIndex } from '../index/registry-index.js';
import type { Metrics } from '../metrics/metrics.js';
import type { NamingService } from '../naming/naming-service.js';
import { RepeatedWarning } from '../repeated-warning.js';
import type { UnflushedHeartbeats } from './unflushed-heartbeats.js';

/** What the checker writes through the naming service: transitions, removals, heartbeat times. */
export type HealthWrites = Pick<NamingService, 'setHealth' | 'cleanup' | 'flushHeartbeats'>;

export interface HealthOptions {
  sweepIntervalMs: number;
  /** Remove instances unhealthy for longer than this; 0 keeps them forever. */
  cleanupAfterMs: number;
  /** Self-preservation: never expire more than this share of healthy instances in one sweep... */
  protectRatio: number;
  /** ...when at least this many would expire. */
  protectMin: number;
  /** How often in-memory heartbeats are written to the store. */
  flushIntervalMs: number;
}

/**
 * What a cluster adds to the sweep (DESIGN, cluster mode): only the node holding the lease
 * expires anyone, and it judges by the newest heartbeat any node took, not only its own.
 */
export interface SweepGate {
  /** True while this node holds the sweep lease. */
  holdsLease(): boolean;
  /** The newest heartbeat time any node took for each id; undefined when that is unknowable now (then nobody expires). */
  latestHeartbeats(ids: string[]): Promise<Map<string, number> | undefined>;
}

/**
 * Heartbeat clocks. Expiry is judged from memory; transitions and removals go through the
 * naming service (and so the batcher and the event log). After a start every instance gets a
 * full 3 × ttl window, counted from `startedAt`, before it can expire.
 */
export class HealthChecker {
  private sweepTimer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private sweeping = false;
  private startedAt: number;
  protecting = false;
  // While the store is out, these fail at every flush and sweep.
  private readonly flushing: RepeatedWarning;
  private readonly expiring: RepeatedWarning;
  private readonly cleaning: RepeatedWarning;

  constructor(
    private readonly index: RegistryIndex,
    private readonly naming: HealthWrites,
    /** What `flush` writes: fed by the naming service's heartbeat sink on a single node, empty in a cluster. */
    private readonly unflushed: UnflushedHeartbeats,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    private readonly opts: HealthOptions,
    private readonly log: Logger,
    private readonly gate?: SweepGate,
  ) {
    this.startedAt = clock.now();
    this.flushing = new RepeatedWarning(log, 'heartbeat flush failed; will retry', 'heartbeat flush works again');
    this.expiring = new RepeatedWarning(
      log,
      'could not mark instance unhealthy; will retry',
      'marking instances unhealthy works again',
    );
    this.cleaning = new RepeatedWarning(
      log,
      'could not remove expired instance; will retry',
      'removing expired instances works again',
    );
  }

  start(): void {
    // Counted from here, on the clock as it is once the node runs (a cluster node's is Redis's by now).
    this.startedAt = this.clock.now();
    this.sweepTimer = setInterval(() => void this.sweep(), this.opts.sweepIntervalMs);
    this.flushTimer = setInterval(() => void this.flush(), this.opts.flushIntervalMs);
    this.sweepTimer.unref();
    this.flushTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.sweepTimer);
    clearInterval(this.flushTimer);
    await this.flush();
  }

  /** Writes the heartbeats received since the last flush; a failed flush is retried next time. */
  async flush(): Promise<void> {
    if (this.unflushed.size === 0) return;
    const ids = this.unflushed.take();
    try {
      await this.naming.flushHeartbeats(ids);
      this.flushing.worked();
    } catch (err) {
      this.unflushed.putBack(ids);
      this.flushing.failed({ err, instances: ids.size });
    }
  }

  /**
   * One pass over every instance. Public so tests can drive it with an injected clock.
   *
   * Self-preservation counts instances that are going silent (no heartbeat for 2 × ttl), not
   * only those crossing 3 × ttl in this pass: heartbeats run on each instance's own phase, so a
   * mass silence reaches the expiry line spread over a whole ttl, a few per sweep, and a
   * per-sweep count would let it through piecemeal.
   */
  async sweep(): Promise<void> {
    if (this.sweeping) return;
    if (this.gate && !this.gate.holdsLease()) return;
    this.sweeping = true;
    try {
      if (this.gate && !(await this.refreshFromCluster())) return;
      const now = this.clock.now();
      const expiring: Array<{ id: string; lastHeartbeat: number }> = [];
      const removable: Array<{ id: string; since: number }> = [];
      let healthy = 0;
      let silent = 0;
      for (const rec of this.index.instances.values()) {
        if (rec.healthy) {
          healthy++;
          const quietMs = now - Math.max(rec.lastHeartbeat, this.startedAt);
          if (quietMs > (MISSED_HEARTBEATS - 1) * rec.ttl * 1000) silent++;
          if (quietMs > MISSED_HEARTBEATS * rec.ttl * 1000)
            expiring.push({ id: rec.id, lastHeartbeat: rec.lastHeartbeat });
        } else if (this.opts.cleanupAfterMs > 0 && now - rec.healthChangedAt > this.opts.cleanupAfterMs) {
          removable.push({ id: rec.id, since: rec.healthChangedAt });
        }
      }
      if (expiring.length > 0 && silent >= this.opts.protectMin && silent > this.opts.protectRatio * healthy) {
        if (!this.protecting) {
          this.log.warn(
            { silent, expiring: expiring.length, healthy, protectRatio: this.opts.protectRatio },
            'self-preservation: too many instances went silent at once; assuming a network fault on our side and keeping them healthy',
          );
        }
        this.protecting = true;
        this.metrics.selfPreservation.inc();
      } else {
        if (this.protecting) this.log.info('self-preservation ended');
        this.protecting = false;
        await Promise.all(
          expiring.map((e) =>
            this.naming.setHealth(e.id, false, 'heartbeat missed', e.lastHeartbeat).then(
              () => this.expiring.worked(),
              (err: unknown) => this.expiring.failed({ err, instance: e.id }),
            ),
          ),
        );
      }
      await Promise.all(
        removable.map((r) =>
          this.naming.cleanup(r.id, r.since).then(
            () => this.cleaning.worked(),
            (err: unknown) => this.cleaning.failed({ err, instance: r.id }),
          ),
        ),
      );
    } finally {
      this.sweeping = false;
    }
  }

  /**
   * Heartbeats other nodes took are not in this node's memory: before judging, every instance
   * that looks silent here gets the newest time any node recorded. False when those times are
   * unknowable (Redis out): then this sweep expires nobody rather than everybody.
   */
  private async refreshFromCluster(): Promise<boolean> {
    const now = this.clock.now();
    const quiet: string[] = [];
    for (const rec of this.index.instances.values()) {
      if (rec.healthy && now - rec.lastHeartbeat > rec.ttl * 1000) quiet.push(rec.id);
    }
    if (quiet.length === 0) return true;
    const times = await this.gate!.latestHeartbeats(quiet);
    if (!times) return false;
    for (const [id, at] of times) this.index.noteHeartbeat(id, at);
    return this.gate!.holdsLease();
  }
}
