import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import type { ClusterStatus } from '@muster/api';
import { ArrivalClock } from './api/arrival-clock.js';
import { GrpcServer } from './api/grpc/grpc-server.js';
import { AccessTokenService } from './auth/access-token-service.js';
import { AuditLog } from './auth/audit-log.js';
import { Guard } from './auth/guard.js';
import { RateLimits } from './auth/rate-limits.js';
import { buildHttpServer } from './api/http/http-server.js';
import { buildConsulServer } from './api/consul/consul-server.js';
import type { HttpDeps } from './api/http/context.js';
import { WriteBatcher } from './batch/write-batcher.js';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import { ConfigError, onlyThisHost, type MusterConfig } from './config/config.js';
import { makePrivateDir, PRIVATE_FILE_MODE, widerThanPrivate } from './config/data-dir.js';
import { readTlsFiles, type ServerTls } from './config/tls-files.js';
import { ClusterClock } from './cluster/cluster-clock.js';
import { ClusterMode } from './cluster/cluster-mode.js';
import { EventPruning } from './events/event-pruning.js';
import { HealthChecker } from './health/health-checker.js';
import { UnflushedHeartbeats } from './health/unflushed-heartbeats.js';
import { AppliedRevision } from './index/applied-revision.js';
import { RegistryIndex } from './index/registry-index.js';
import { Metrics } from './metrics/metrics.js';
import { RateHistory } from './metrics/rate-history.js';
import { NamingService, type NamingHooks, type VerificationSink } from './naming/naming-service.js';
import { MemoryStore } from './store/memory/memory-store.js';
import { MysqlStore } from './store/mysql/mysql-store.js';
import { SqliteStore } from './store/sqlite/sqlite-store.js';
import type { DataDirLock } from './startup/data-dir-lock.js';
import { preflight } from './startup/preflight.js';
import { hasChangeLog, type Store } from './store/store.js';
import { VerificationQueue } from './verify/verification-queue.js';
import { Verifier } from './verify/verifier.js';
import { VERSION } from './version.js';
import { WatchHub } from './watch/watch-hub.js';
import { RequestPipeline } from './pipeline/request-pipeline.js';

/** Verification checks running at once at most. */
const VERIFY_CONCURRENCY = 16;
/** A failed instance that stays alive is checked again after 30 s, then 1, 2, 4... minutes, at most every 10. */
const VERIFY_RETRY_BASE_MS = 30_000;
const VERIFY_RETRY_MAX_MS = 600_000;
/**
 * Connections the kernel queues until the server accepts them (Node's default is 511; Linux caps
 * it at net.core.somaxconn). A fleet reconnecting at once while the event loop is busy overflowed
 * 511, and the overflow was reset: a thousand registrations at once failed on a loaded machine.
 */
const LISTEN_BACKLOG = 4096;
/** The admin token made at first start, in the data directory. */
const ADMIN_TOKEN_FILE = 'admin.token';
/** How often old events are pruned (events.maxCount, events.maxAge). */
const EVENT_PRUNE_INTERVAL_MS = 60_000;

export interface MusterOptions {
  logger?: Logger;
  clock?: Clock;
  /** Use this store instead of the one the config names (tests share one across restarts). */
  store?: Store;
  /**
   * Where the note that the admin token was made goes, at first start (default: standard error,
   * and only when it is a terminal: a log collector gets the JSON log line instead). Never the token.
   */
  announce?: (text: string) => void;
}

/** What of a cluster node the naming service is wired to. */
export type ClusterHooks = Pick<ClusterMode, 'recordHeartbeat' | 'fetchInstance'>;

/**
 * Where the naming service's news goes, decided here and nowhere else. A single node writes
 * heartbeats to its own store (the health checker's flush of `unflushed`) and has indexed every
 * write it committed. A cluster node sends heartbeats to Redis only, where the node holding the
 * sweep lease reads every node's, and asks the store for an instance it has not indexed yet
 * (registered through another node a moment ago) before it answers NOT_FOUND.
 */
export function namingHooks(
  cluster: ClusterHooks | undefined,
  unflushed: UnflushedHeartbeats,
  verification: VerificationSink,
): NamingHooks {
  if (!cluster) return { heartbeats: unflushed.note, verification };
  return {
    heartbeats: (id, at) => cluster.recordHeartbeat(id, at),
    verification,
    indexMiss: (id) => cluster.fetchInstance(id),
  };
}

export function openStore(config: MusterConfig): Store {
  if (config.store.type === 'memory') return new MemoryStore();
  if (config.store.type === 'mysql') {
    return new MysqlStore({
      url: config.store.url,
      poolSize: config.store.mysql.poolSize,
      writeTimeoutMs: config.store.mysql.writeTimeout,
    });
  }
  return new SqliteStore({
    file: path.resolve(config.dataDir, 'muster.db'),
    synchronous: config.store.sqlite.synchronous,
  });
}

/**
 * One Muster server: the layers of DESIGN.md wired together. `start` opens the store, loads the
 * index and listens; `stop` is the graceful shutdown (stop accepting, answer watchers, flush
 * heartbeats and the batcher, close the store).
 */
export class Muster {
  readonly log: Logger;
  readonly store: Store;
  readonly index: RegistryIndex;
  readonly metrics: Metrics;
  /** Request rates of the last minutes, for the console (GET /v1/stats). */
  readonly rates: RateHistory;
  readonly hub = new WatchHub();
  readonly batcher: WriteBatcher;
  readonly naming: NamingService;
  readonly health: HealthChecker;
  readonly tokens: AccessTokenService;
  readonly guard: Guard;
  readonly audit: AuditLog;
  readonly limits: RateLimits;
  /** Auth, limits, audit and long-poll for every request of every protocol. */
  readonly pipeline: RequestPipeline;
  private readonly announce: (text: string) => void;
  /** Verified registration: the checks of instances of services that require it. */
  readonly verifier: Verifier;
  readonly verification: VerificationQueue;
  /** Set in cluster mode (cluster.redis): this node shares its store with others. */
  readonly cluster: ClusterMode | undefined;
  /** How far the index has got in the change sequence (read-your-writes). */
  readonly applied: AppliedRevision;
  /** When requests arrived, allowing for stalls of the process. */
  private readonly arrivals = new ArrivalClock();
  private http: FastifyInstance | undefined;
  /** Consul's API on its own port (consul.port), when served. */
  private consul: FastifyInstance | undefined;
  private grpc: GrpcServer | undefined;
  private readonly pruning: EventPruning;
  private stopping: Promise<void> | undefined;
  /** Every listener is bound: HTTP and gRPC. */
  private started = false;
  private readonly startedAt = Date.now();
  /** This node's name in logs and in GET /v1/cluster. */
  readonly nodeId: string;
  /** The certificate both APIs serve; undefined: plain text. */
  private readonly tls: ServerTls | undefined;
  private dataDirLock: DataDirLock | undefined;

  /** Throws a ConfigError when a tls.* file cannot be used, before anything is opened. */
  constructor(
    readonly config: MusterConfig,
    opts: MusterOptions = {},
  ) {
    this.tls = readTlsFiles(config.tls);
    this.nodeId = config.cluster.nodeId || `${os.hostname()}-${process.pid}-${crypto.randomBytes(2).toString('hex')}`;
    this.log = opts.logger ?? pino({ level: config.log.level, base: { service: 'muster' } });
    const clustered = config.cluster.redis !== '';
    const clusterLog = this.log.child({ node: this.nodeId });
    // In a cluster every node stamps times on one clock, Redis's, never its own machine's.
    const clock = clustered
      ? new ClusterClock(opts.clock ?? systemClock, { log: clusterLog })
      : (opts.clock ?? systemClock);
    this.applied = new AppliedRevision(clustered ? () => this.cluster!.catchUp() : undefined);
    this.store = opts.store ?? openStore(config);
    this.index = new RegistryIndex(config.discovery.cacheTtl);
    this.metrics = new Metrics(() => {
      let healthy = 0,
        unhealthy = 0,
        isolated = 0;
      for (const i of this.index.instances.values()) {
        if (i.healthy) healthy++;
        else unhealthy++;
        if (i.isolate) isolated++;
      }
      return { healthy, unhealthy, isolated };
    });
    this.rates = new RateHistory(this.metrics);
    this.index.onServiceChanged((ns, svc, rev) => this.hub.notify(ns, svc, rev));
    const inFlight = config.store.type === 'mysql' ? config.store.mysql.commitsInFlight : 1;
    this.batcher = new WriteBatcher(
      this.store,
      { ...config.batch, inFlight },
      {
        onCommitted: (changes) => {
          this.index.apply(changes);
          // A single node has applied every change it committed; a cluster's follower says how far it got.
          if (!this.cluster) for (const c of changes) if (c.kind === 'event') this.applied.advance(c.id);
          for (const c of changes) if (c.kind === 'token') this.tokens.apply(c.rec);
          this.cluster?.committed(changes);
        },
        onBatch: (size, seconds) => {
          this.metrics.batchSize.observe(size);
          this.metrics.storeCommitSeconds.observe(seconds);
        },
      },
      this.log,
    );
    const { allowLinkLocal, allowLoopback, allowPrivate } = config.verification;
    const addressRules = { allowLinkLocal, allowLoopback, allowPrivate };
    this.tokens = new AccessTokenService(this.batcher, this.store, clock);
    this.guard = new Guard(
      {
        enabled: config.auth.enabled,
        clientsRequired:
          config.auth.clients === 'required' || (config.auth.clients === 'auto' && !onlyThisHost(config)),
      },
      this.tokens,
    );
    this.audit = new AuditLog(this.batcher, clock, this.log, {
      refusedPerSecond: config.audit.refusedPerSecond,
      flushMs: 200,
    });
    this.limits = new RateLimits({
      perAddress: config.limits.writesPerAddress,
      perToken: config.limits.writesPerToken,
      watchesPerClient: config.limits.watchesPerClient,
      ipv6Prefix: config.limits.ipv6Prefix,
    });
    this.pipeline = new RequestPipeline({
      guard: this.guard,
      limits: this.limits,
      audit: this.audit,
      hub: this.hub,
      metrics: this.metrics,
      applied: this.applied,
      writeWaitMs: config.limits.writeWait,
      revisionWaitMs: config.cluster.revisionWait,
      revisionOf: (ns, svc) => this.naming.resolveService(ns, svc).rec.revision,
    });
    this.announce = opts.announce ?? ((text) => void (process.stderr.isTTY && process.stderr.write(text)));
    if (clock instanceof ClusterClock) {
      // The nodes learn each other's commits from the store's change log.
      if (!hasChangeLog(this.store))
        throw new ConfigError(
          `cluster.redis needs a store with a change log (store.type mysql), not ${this.store.kind}`,
        );
      this.cluster = new ClusterMode(config, this.nodeId, {
        store: this.store,
        index: this.index,
        clock,
        applied: this.applied,
        log: clusterLog,
        tokensChanged: () =>
          this.tokens
            .reload()
            .catch((err: unknown) =>
              clusterLog.warn({ err }, 'reloading access tokens failed; the next token event retries'),
            ),
      });
    }
    this.verifier = new Verifier({ timeoutMs: config.verification.timeout, ...addressRules });
    // The queue writes each outcome through the naming service, which queues the checks its own
    // writes make due: the queue, built first, reaches the naming service through this closure.
    this.verification = new VerificationQueue(
      this.index,
      {
        completeVerification: (id, checked, outcome) => this.naming.completeVerification(id, checked, outcome),
      },
      this.verifier,
      clock,
      this.metrics,
      this.log,
      {
        concurrency: VERIFY_CONCURRENCY,
        maxPendingPerCaller: config.verification.maxPendingPerCaller,
        sweepIntervalMs: config.health.sweepInterval,
        // A check ends within its timeout: pending well past that, nobody is checking it.
        stalePendingMs: 5 * config.verification.timeout,
        retryBaseMs: VERIFY_RETRY_BASE_MS,
        retryMaxMs: VERIFY_RETRY_MAX_MS,
      },
      this.cluster,
    );
    const unflushed = new UnflushedHeartbeats();
    this.naming = new NamingService(
      this.index,
      this.batcher,
      this.store,
      clock,
      this.metrics,
      {
        autoCreateService: config.autoCreateService,
        verification: addressRules,
      },
      namingHooks(this.cluster, unflushed, this.verification),
    );
    this.health = new HealthChecker(
      this.index,
      this.naming,
      unflushed,
      clock,
      this.metrics,
      {
        sweepIntervalMs: config.health.sweepInterval,
        cleanupAfterMs: config.health.cleanupAfter,
        protectRatio: config.health.protectRatio,
        protectMin: config.health.protectMin,
        flushIntervalMs: config.health.flushInterval,
      },
      this.log,
      this.cluster,
    );
    const cluster = this.cluster;
    this.pruning = new EventPruning(
      this.naming.events,
      {
        keep: config.events.maxCount,
        maxAgeMs: config.events.maxAge,
        intervalMs: EVENT_PRUNE_INTERVAL_MS,
        // One node prunes for all: the one holding the sweep lease.
        ...(cluster ? { holdsLease: () => cluster.holdsLease() } : {}),
      },
      this.log,
    );
  }

  async start(): Promise<this> {
    const t0 = Date.now();
    this.dataDirLock = await preflight(this.config, this.store.kind);
    await this.store.open();
    const loadStartedAt = performance.now();
    const snapshot = await this.store.load();
    this.index.load(snapshot);
    if (!this.cluster) this.applied.advance(snapshot.lastEventId);
    this.tokens.load(snapshot.tokens);
    // Before anything is served: the heartbeats and index misses routed to the cluster (namingHooks) find its clock, relay and change follower running.
    await this.cluster?.start(snapshot.lastEventId, loadStartedAt);
    await this.naming.ensureDefaultNamespace();
    await this.bootstrapAuth();
    this.warnWidePermissions();
    this.health.start();
    this.verification.start();
    this.arrivals.start();
    const httpDeps: HttpDeps = {
      naming: this.naming,
      hub: this.hub,
      metrics: this.metrics,
      config: this.config,
      pipeline: this.pipeline,
      tokens: this.tokens,
      arrivals: this.arrivals,
      applied: this.applied,
      readiness: () => this.readiness(),
      cluster: () => this.clusterStatus(),
      staleness: () => this.cluster?.staleness(),
      rates: this.rates,
      ...(this.store.backup ? { backup: (file: string) => this.store.backup!(file) } : {}),
    };
    this.http = await buildHttpServer(httpDeps, this.log, this.tls);
    await this.http.listen({ host: this.config.host, port: this.config.httpPort, backlog: LISTEN_BACKLOG });
    try {
      this.grpc = await GrpcServer.create({
        naming: this.naming,
        hub: this.hub,
        metrics: this.metrics,
        config: this.config,
        log: this.log,
        pipeline: this.pipeline,
        arrivals: this.arrivals,
        applied: this.applied,
        staleness: () => this.cluster?.staleness(),
      });
      await this.grpc.listen(this.config.host, this.config.grpcPort, this.tls);
    } catch (err) {
      // The gRPC port is taken (or bad): do not leave the HTTP port bound behind a failed start.
      await this.http.close();
      throw err;
    }
    if (this.config.consul.port >= 0) await this.listenConsul(httpDeps);
    this.rates.start();
    this.pruning.start();
    this.cluster?.announce({ httpAddress: this.url, grpcAddress: this.grpcAddress, startedAt: this.startedAt });
    this.started = true;
    this.log.info(
      {
        http: this.url,
        grpc: this.grpcAddress,
        ...(this.consul ? { consul: this.consulAddress } : {}),
        store: this.store.kind,
        dataDir: this.store.kind === 'sqlite' ? path.resolve(this.config.dataDir) : undefined,
        instances: this.index.instances.size,
        startMs: Date.now() - t0,
      },
      'muster is ready',
    );
    return this;
  }

  /** The base URL of the HTTP API, e.g. http://127.0.0.1:8090 (https:// with TLS). */
  get url(): string {
    const addr = this.http?.server.address() as AddressInfo | null | undefined;
    if (!addr) throw new Error('server is not listening');
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    return `${this.tls ? 'https' : 'http'}://${host}:${addr.port}`;
  }

  /** host:port of Consul's API (consul.port); throws when it is not served. */
  get consulAddress(): string {
    const addr = this.consul?.server.address() as AddressInfo | null | undefined;
    if (!addr) throw new Error("Consul's API is not served");
    return `${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  }

  get port(): number {
    return (this.http?.server.address() as AddressInfo).port;
  }

  /** The port of the gRPC API. */
  get grpcPort(): number {
    if (!this.grpc) throw new Error('server is not listening');
    return this.grpc.port;
  }

  /**
   * Where a gRPC client connects, e.g. 127.0.0.1:8091; with TLS grpcs://127.0.0.1:8091, which
   * the SDK takes as is, so the log line and GET /v1/cluster say how to connect.
   */
  get grpcAddress(): string {
    const host = this.config.host.includes(':') ? `[${this.config.host}]` : this.config.host;
    return `${this.tls ? 'grpcs://' : ''}${host}:${this.grpcPort}`;
  }

  /** GET /v1/cluster: the nodes sharing this registry; a single node lists itself. */
  async clusterStatus(): Promise<ClusterStatus> {
    if (this.cluster) return this.cluster.status();
    const now = Date.now();
    return {
      mode: 'single',
      leaseHolder: this.nodeId,
      nodes: [
        {
          id: this.nodeId,
          httpAddress: this.url,
          grpcAddress: this.grpcAddress,
          version: VERSION,
          startedAt: new Date(this.startedAt).toISOString(),
          lastSeen: new Date(now).toISOString(),
          lastSeenAgoMs: 0,
          stale: false,
          leaseHolder: true,
          self: true,
        },
      ],
    };
  }

  async readiness(): Promise<{ ready: boolean; checks: Record<string, string> }> {
    const checks: Record<string, string> = { index: this.index.loaded ? 'loaded' : 'loading' };
    try {
      await this.store.ping();
      checks['store'] = 'ok';
    } catch (err) {
      checks['store'] = `unreachable: ${(err as Error).message}`;
    }
    if (this.cluster) Object.assign(checks, this.cluster.checks());
    // /readyz answers as soon as HTTP listens; the gRPC port binds after it.
    if (!this.started) checks['server'] = 'starting';
    if (this.stopping) checks['server'] = 'stopping';
    return {
      ready: checks['index'] === 'loaded' && checks['store'] === 'ok' && this.started && !this.stopping,
      checks,
    };
  }

  /**
   * Auth on: at first start, the admin token, kept only in <dataDir>/admin.token (0600). It is
   * never printed: standard output and standard error are where journald, Docker and kubectl
   * take logs from, so the log and the banner say where the file is, not what it holds.
   * Auth off: a warning at every start, so it is never off by accident.
   */
  private async bootstrapAuth(): Promise<void> {
    if (!this.config.auth.enabled) {
      this.log.warn(
        { host: this.config.host },
        'auth is off (auth.enabled: false): anyone who reaches this server can change the registry; for local development only',
      );
      return;
    }
    const secret = await this.tokens.bootstrapAdmin();
    if (secret === undefined) return;
    const file = path.resolve(this.config.dataDir, ADMIN_TOKEN_FILE);
    makePrivateDir(path.dirname(file));
    fs.writeFileSync(file, `${secret}\n`, { mode: PRIVATE_FILE_MODE });
    // writeFile's mode applies only to a new file: an old one keeps its own without this.
    fs.chmodSync(file, PRIVATE_FILE_MODE);
    this.log.info(
      { file },
      'created the admin access token; it is only in this file (mode 0600), never printed or logged',
    );
    this.announce(
      `\nMuster created the admin access token. It is kept only in ${file} (mode 0600); it is never printed or logged.\n` +
        `Use it as: MUSTER_TOKEN="$(cat ${file})" muster tokens create --name ci --allow "write:prod/*"\n\n`,
    );
  }

  /** The data directory and its files should be the server user's alone: say so at every start when they are not. */
  private warnWidePermissions(): void {
    const files =
      this.store.kind === 'sqlite'
        ? ['muster.db', 'muster.db-wal', 'muster.db-shm', ADMIN_TOKEN_FILE]
        : [ADMIN_TOKEN_FILE];
    for (const w of widerThanPrivate(path.resolve(this.config.dataDir), files)) {
      this.log.warn(
        w,
        `${w.path} is open to other users of this machine (mode ${w.mode}); it holds secrets of the registry: chmod ${w.expected.slice(1)} it`,
      );
    }
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.log.info('shutting down: no new requests; answering watchers, flushing writes');
    this.pruning.stop();
    this.rates.stop();
    this.hub.close();
    const deadline = this.config.shutdownTimeout;
    // Both adapters drain at once, and before the batcher closes: their last calls still write.
    await Promise.all([this.stopHttp(deadline), this.grpc?.stop(deadline), this.consul?.close()]);
    await this.verification.stop();
    await this.health.stop();
    await this.cluster?.stop();
    await this.audit.flush(true);
    await this.batcher.close();
    await this.store.close();
    this.arrivals.stop();
    this.dataDirLock?.release();
    this.log.info('stopped');
  }

  /** Consul's API on its own port; a failure to bind it leaves none of the other ports bound. */
  private async listenConsul(deps: HttpDeps): Promise<void> {
    try {
      this.consul = await buildConsulServer(deps, this.log, () => this.consulAddress, this.tls);
      await this.consul.listen({ host: this.config.host, port: this.config.consul.port, backlog: LISTEN_BACKLOG });
    } catch (err) {
      await this.consul?.close();
      await this.grpc?.stop(0);
      await this.http?.close();
      throw err;
    }
  }

  private async stopHttp(deadline: number): Promise<void> {
    if (!this.http) return;
    const closing = this.http.close();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      closing.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), deadline))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.log.warn({ timeoutMs: deadline }, 'in-flight requests did not finish in time; closing their connections');
      this.http.server.closeAllConnections();
    }
  }
}
