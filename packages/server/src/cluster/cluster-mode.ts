import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ClusterStatus } from '@muster/api';
import { MusterError } from '@muster/api';
import type { Change } from '../batch/changes.js';
import type { MusterConfig } from '../config/config.js';
import type { SweepGate } from '../health/health-checker.js';
import type { AppliedRevision } from '../index/applied-revision.js';
import { ChangeFollower } from './change-follower.js';
import { serviceKey, type RegistryIndex } from '../index/registry-index.js';
import type { SharedStore } from '../store/store.js';
import { VERSION } from '../version.js';
import { ChangeBus, type ClusterChange } from './change-bus.js';
import type { ClusterClock } from './cluster-clock.js';
import { FlushBarrier } from './flush-barrier.js';
import { HeartbeatRelay } from './heartbeat-relay.js';
import { NodeDirectory } from './node-directory.js';
import { Lease } from './redis-lease.js';
import { DEFAULT_COMMAND_TIMEOUT_MS, withTimeout } from './redis-common.js';

export interface ClusterDeps {
  store: SharedStore;
  index: RegistryIndex;
  /** The node's clock: ClusterMode keeps it on Redis's. */
  clock: ClusterClock;
  /** Moved by the change follower: read-your-writes waits on it. */
  applied: AppliedRevision;
  log: Logger;
  /** Another node created or revoked an access token; the returned promise settles once they are reloaded. */
  tokensChanged: () => Promise<void>;
}

/** How often a node measures its clock against Redis's. */
const CLOCK_SYNC_MS = 1000;
/**
 * The most a new holder of the sweep lease waits for the other nodes to flush what they held: a
 * node whose Redis connection is back flushes within its reconnect backoff (2 s at most) and one
 * flush interval (0.5 s).
 */
const FLUSH_WAIT_MS = 5000;

/**
 * What makes a node one of several (DESIGN, cluster mode): the store is shared, and Redis
 * carries what must cross nodes at once.
 * - Heartbeats a node takes go to Redis (HeartbeatRelay), so the sweeping node sees them all.
 * - Every commit is announced on the change bus; the other nodes then read the change log
 *   (ChangeFollower), which they also read every `cluster.pollInterval` in case a message is lost.
 * - One node holds the sweep lease and is the only one that expires and cleans up instances.
 * - Every node writes its directory entry, for GET /v1/cluster.
 * - Every time stamped on the node is on one clock, Redis's (ClusterClock).
 * Redis being out costs freshness, never correctness: heartbeats wait in memory, nobody holds
 * the lease (so nobody expires anyone), and the change log is still read on the timer. The next
 * holder of the lease sweeps only once every node has flushed what it held (FlushBarrier).
 */
export class ClusterMode implements SweepGate {
  private readonly redis: Redis;
  private readonly lease: Lease;
  private readonly relay: HeartbeatRelay;
  private readonly barrier: FlushBarrier;
  private readonly bus: ChangeBus;
  readonly follower: ChangeFollower;
  private directory: NodeDirectory | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly config: MusterConfig,
    readonly nodeId: string,
    private readonly deps: ClusterDeps,
  ) {
    const { log } = deps;
    const prefix = `${config.cluster.prefix}:`;
    this.redis = new Redis(config.cluster.redis, {
      // Commands wait for a reconnect only briefly; the modules bound every call anyway.
      maxRetriesPerRequest: 1,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
      connectionName: `muster:${nodeId}`,
    });
    // ioredis reports every failed reconnect as an 'error' event: the modules log the outage once.
    this.redis.on('error', () => {});
    const common = { redis: this.redis, prefix, log };
    this.lease = new Lease({ ...common, nodeId, ttlMs: config.cluster.leaseTtl });
    this.relay = new HeartbeatRelay({ ...common, node: nodeId });
    this.barrier = new FlushBarrier({ ...common, waitMs: FLUSH_WAIT_MS });
    this.bus = new ChangeBus({ ...common, node: nodeId });
    this.follower = new ChangeFollower(
      deps.store,
      deps.index,
      {
        pollIntervalMs: config.cluster.pollInterval,
        gapTimeoutMs: 10_000,
        pageSize: 1000,
        onTokenEvents: deps.tokensChanged,
        onApplied: (revision) => deps.applied.advance(revision),
      },
      log,
    );
    this.lease.onChange((held) => {
      if (held) this.barrier.arm();
      else this.barrier.disarm();
      log.info(
        { node: nodeId },
        held
          ? 'this node holds the sweep lease: it expires and cleans up instances'
          : 'this node no longer holds the sweep lease',
      );
    });
  }

  /**
   * Before the node listens: sets its clock by Redis's, then follows the change log from the
   * snapshot the index was loaded from (its reading started at performance.now() `loadStartedAt`),
   * first replaying what writes in flight at that moment may have logged below its newest id: a
   * write lasts at most store.mysql.writeTimeout.
   */
  async start(lastEventId: number, loadStartedAt: number): Promise<void> {
    const { clock } = this.deps;
    await clock.start(() => this.redisTime(), CLOCK_SYNC_MS);
    const loadedAt = clock.now() - (performance.now() - loadStartedAt);
    await this.follower.replay(loadedAt - 2 * this.config.store.mysql.writeTimeout);
    this.follower.start(lastEventId);
    this.unsubscribe = this.bus.subscribe(() => this.follower.poke());
    // Pub/sub drops what is published while the connection is down: catch up when it is back.
    this.bus.onConnection((up) => up && this.follower.poke());
    this.relay.start();
    this.lease.start();
  }

  /** Once the node listens: it joins the directory with the addresses clients use. */
  announce(self: { httpAddress: string; grpcAddress: string; startedAt: number }): void {
    this.directory = new NodeDirectory({
      redis: this.redis,
      prefix: `${this.config.cluster.prefix}:`,
      log: this.deps.log,
      self: { id: this.nodeId, version: VERSION, ...self },
      // The machine's own clock, not the cluster's: how far it is off is what the directory reports.
      wallClock: () => this.deps.clock.machineNow(),
    });
    this.directory.start();
  }

  /**
   * After a local commit: tell the other nodes (a service once per batch, at its newest
   * revision), let the follower skip reading these changes back, and forget heartbeat times of
   * removed instances.
   */
  committed(changes: readonly Change[]): void {
    const gone: string[] = [];
    const events: number[] = [];
    const services = new Map<string, ClusterChange>();
    for (const c of changes) {
      if (c.kind === 'event') events.push(c.id);
      else if (c.kind === 'service' && c.rec)
        services.set(serviceKey(c.namespace, c.name), {
          eventId: c.rec.revision,
          namespace: c.namespace,
          service: c.name,
          node: this.nodeId,
        });
      else if (c.kind === 'namespace') this.bus.publish({ eventId: 0, namespace: c.name, node: this.nodeId });
      else if (c.kind === 'instance' && !c.rec) gone.push(c.id);
      // Revocation takes effect on every node at once: the token events wake their followers now.
      else if (c.kind === 'token') this.bus.publish({ eventId: 0, namespace: '*', node: this.nodeId });
    }
    for (const change of services.values()) this.bus.publish(change);
    if (gone.length > 0) void this.relay.forget(gone);
    this.follower.committedHere(events);
  }

  /**
   * A heartbeat this node took: to Redis (at the relay's next flush), where the node holding the
   * sweep lease reads every node's. The composition root makes it the naming service's heartbeat sink.
   */
  recordHeartbeat(id: string, at: number): void {
    this.relay.record(id, at);
  }

  /**
   * An instance this node has not indexed may have been registered through another node a moment
   * ago: brought in from the store (true when it is indexed now). The naming service's index miss.
   */
  fetchInstance(id: string): Promise<boolean> {
    return this.follower.fetchInstance(id);
  }

  holdsLease(): boolean {
    return this.lease.held;
  }

  /** Unknowable (undefined) until every node has flushed what it held when this node took the lease. */
  async latestHeartbeats(ids: string[]): Promise<Map<string, number> | undefined> {
    if (!(await this.barrier.passed())) return undefined;
    return this.relay.times(ids);
  }

  /**
   * Read-your-writes: reads the change log now and answers the newest change number it held;
   * rejects when it could not be read.
   */
  async catchUp(): Promise<number> {
    await this.follower.catchUp();
    if (this.follower.lastError) throw this.follower.lastError;
    return this.follower.newestSeen;
  }

  /** Why this node's answers may miss other nodes' writes: the change log cannot be read. */
  staleness(): string | undefined {
    const err = this.follower.lastError;
    return err
      ? `this node cannot read the shared store (${err.message}); answers may miss changes made through other nodes`
      : undefined;
  }

  /** What /readyz shows of the cluster; none of it makes the node unready by itself. */
  checks(): Record<string, string> {
    return {
      redis: this.relay.available ? 'ok' : 'unreachable: heartbeats wait in memory, nobody expires',
      changeLog: this.follower.lastError ? `failing: ${this.follower.lastError.message}` : 'ok',
      sweepLease: this.lease.held ? 'held by this node' : 'held elsewhere or by nobody',
    };
  }

  async status(): Promise<ClusterStatus> {
    const snap = await this.directory?.snapshot();
    if (!snap)
      throw new MusterError('UNAVAILABLE', 'Redis is not reachable: the cluster membership is unknown right now');
    return {
      mode: 'cluster',
      leaseHolder: snap.leaseHolder,
      nodes: snap.nodes.map((n) => ({
        id: n.id,
        httpAddress: n.httpAddress,
        grpcAddress: n.grpcAddress,
        version: n.version,
        startedAt: new Date(n.startedAt).toISOString(),
        lastSeen: new Date(n.lastSeen).toISOString(),
        lastSeenAgoMs: n.lastSeenAgoMs,
        stale: n.stale,
        leaseHolder: n.leaseHolder,
        self: n.id === this.nodeId,
        ...(n.clockOffsetMs !== undefined ? { clockOffsetMs: n.clockOffsetMs } : {}),
      })),
    };
  }

  /** Hands the lease on and leaves the directory; heartbeats still in memory go to Redis first. */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.deps.clock.stop();
    await this.follower.stop();
    await Promise.allSettled([
      this.relay.stop(),
      this.lease.stop({ release: true }),
      this.directory?.stop({ remove: true }),
      this.bus.stop(),
    ]);
    this.redis.disconnect();
  }

  /** Redis's clock, ms since the epoch. */
  private async redisTime(): Promise<number> {
    const [s, us] = await withTimeout(this.redis.time(), DEFAULT_COMMAND_TIMEOUT_MS, 'clock');
    return Number(s) * 1000 + Number(us) / 1000;
  }
}
