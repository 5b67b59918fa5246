import { EventEmitter } from 'node:events';
import type { DiscoveredInstance, DiscoverFilter } from '@muster/api';
import { MusterError } from '@muster/api';
import { weightedRandom } from '../balance/index.js';
import type { PickOptions } from '../balance/types.js';
import { Endpoints } from '../registry/endpoints.js';
import { GrpcRegistry } from '../registry/grpc-registry.js';
import { HttpRegistry } from '../registry/http-registry.js';
import type { RegistryApi } from '../registry/registry-api.js';
import { ReadYourWrites } from '../read-your-writes.js';
import { normalizeServer } from '../transport.js';
import { emitSafely } from './emit-safely.js';
import { DiskCache } from './disk-cache.js';
import { deregisterOnExit } from './exit-hook.js';
import { HeartbeatBatcher } from './heartbeat-batcher.js';
import { outlierOptionsOf, resolveOptions, type MusterClientOptions, type ResolvedOptions } from './options.js';
import { isFailedCall } from './call-outcome.js';
import type { Ejection } from './outlier-detector.js';
import { Registration, type RegistrationInput } from './registration.js';
import { ServiceView, type DiscoveryAnswer, type StaleReason } from './service-view.js';
import { ClientClosedError, DiskCacheError, InvalidOptionError, NoInstanceError } from '../errors.js';

export interface ServiceRef {
  namespace: string;
  service: string;
}

export interface ClientEvents {
  /** Calls moved from one registry server to another after `error`. */
  failover: [from: string, to: string, error: MusterError];
  /** A service's answers are stale from now on: no registry reachable, served from disk, an empty update awaits confirmation, or the node that answered cannot read its shared database. */
  stale: [ref: ServiceRef & { reason: StaleReason; ageMs: number }];
  /** A service's answers are current again. */
  fresh: [ref: ServiceRef];
  /** A service's instance list changed. */
  update: [ref: ServiceRef & { revision: number; instances: number }];
  /** Something the SDK worked around but the operator may want to know (a watch that keeps failing, a cache it could not write). */
  warning: [error: MusterError];
  /** Calls to an instance failed in a row: `pick` leaves it out for `ejectedForMs`. */
  eject: [ejection: ServiceRef & Ejection];
}

export interface DiscoverOptions extends DiscoverFilter {
  namespace?: string;
}

export interface ClientPickOptions extends PickOptions {
  namespace?: string;
}

export interface CallOptions extends ClientPickOptions {
  /**
   * Instances to try, each a different one while there are: a failed attempt moves on to the
   * next. Default 1 (no retry): retry only calls that are safe to repeat.
   */
  attempts?: number;
  /**
   * Whether an outcome counts as a failure of the instance. Default: a thrown error, except a
   * gRPC status that is the caller's own doing (INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED
   * and the like), and an HTTP response with a 5xx status.
   */
  isFailure?: (outcome: { result?: unknown; error?: unknown }) => boolean;
}

/**
 * The Muster SDK. Providers `register` and are kept alive; consumers `discover` and `pick`
 * from a local view of each service that the SDK keeps current, across registry restarts,
 * failover between servers, and outages (see docs/sdk.md).
 */
export class MusterClient extends EventEmitter<ClientEvents> {
  readonly options: ResolvedOptions;
  private readonly endpoints: Endpoints;
  private readonly beats: HeartbeatBatcher;
  private readonly disk: DiskCache | undefined;
  /** namespace -> service -> view; two maps so `pick` looks up without building a key. */
  private readonly views = new Map<string, Map<string, ServiceView>>();
  private readonly loading = new Map<ServiceView, Promise<ServiceView>>();
  private readonly registrations = new Set<Registration>();
  private closed = false;

  constructor(options: MusterClientOptions = {}) {
    super();
    this.options = resolveOptions(options);
    const { transport, timeoutMs, tls, token } = this.options;
    // One for all servers: whichever answers next has applied this client's own writes.
    const session = new ReadYourWrites();
    const apis: RegistryApi[] = this.options.servers.map((s) =>
      transport === 'grpc'
        ? new GrpcRegistry(checkGrpcAddress(s, tls !== undefined), timeoutMs, tls, token, session)
        : new HttpRegistry(normalizeServer(s), timeoutMs, tls, token, session),
    );
    this.endpoints = new Endpoints(apis, {
      backoffBaseMs: this.options.backoffBaseMs,
      backoffMaxMs: this.options.backoffMaxMs,
      onSwitch: (from, to, err) => emitSafely(this, 'failover', from, to, err),
    });
    this.beats = new HeartbeatBatcher(this.endpoints);
    if (this.options.cacheDir) {
      this.disk = new DiskCache(this.options.cacheDir, (err) => emitSafely(this, 'warning', new DiskCacheError(err)));
    }
  }

  // ---- provider -----------------------------------------------------------------------------

  /**
   * Registers an instance and keeps it alive until `deregister()` or `close()`. Rejects only
   * when retrying cannot help (invalid input, unknown namespace, denied). When no registry is
   * reachable it resolves in state `retrying` and registers as soon as one answers.
   */
  async register(input: RegistrationInput): Promise<Registration> {
    this.checkOpen();
    const reg = new Registration(input, this.options.namespace, {
      endpoints: this.endpoints,
      beats: this.beats,
      backoffBaseMs: this.options.backoffBaseMs,
      backoffMaxMs: this.options.backoffMaxMs,
    });
    this.registrations.add(reg);
    reg.once('deregistered', () => this.registrations.delete(reg));
    // Hooked before the first attempt: a signal during it must still deregister.
    if (input.deregisterOnExit) deregisterOnExit(reg, this.options.timeoutMs);
    await reg.start();
    return reg;
  }

  // ---- consumer -----------------------------------------------------------------------------

  /**
   * The service's instances (healthy and not isolated unless the filter says otherwise). The
   * first call for a service loads it (from the registry, else from the cache directory); later
   * calls answer at once from the view the SDK keeps current.
   */
  async discover(service: string, filter: DiscoverOptions = {}): Promise<DiscoveryAnswer> {
    const { namespace, ...f } = filter;
    const view = await this.view(namespace ?? this.options.namespace, service);
    return view.answer(f);
  }

  /**
   * One instance of the service, chosen by its balancer (weighted random unless configured).
   * Synchronous and without I/O: a service not yet loaded answers undefined and starts loading,
   * so call `discover` (or `ready`) once at startup.
   */
  pick(service: string, opts?: ClientPickOptions): DiscoveredInstance | undefined {
    const namespace = opts?.namespace ?? this.options.namespace;
    const view = this.views.get(namespace)?.get(service);
    if (view?.loaded) return view.pick(opts);
    if (!view && !this.closed) this.view(namespace, service).catch(() => undefined);
    return undefined;
  }

  /**
   * Tells the SDK how a call to an instance went. Failed calls in a row eject the instance from
   * `pick` for a backoff that grows with each ejection; after it the instance is picked again and
   * one more failure ejects it again, a success clears it. Never more than `maxEjectedShare` of a
   * service is ejected. An instance the client does not hold (any more) is ignored.
   */
  report(instance: DiscoveredInstance | string, ok: boolean): void {
    const id = typeof instance === 'string' ? instance : instance.id;
    for (const byName of this.views.values()) for (const v of byName.values()) if (v.report(id, ok)) return;
  }

  /**
   * Picks an instance of the service, runs `fn` on it and reports the outcome (see `report`):
   * the automatic form of outlier ejection for HTTP and gRPC calls. Resolves with what `fn`
   * resolved (a 5xx response too: it is counted, not thrown); rejects with `fn`'s error of the
   * last attempt, or UNAVAILABLE when the service has no instance to pick.
   */
  async call<T>(service: string, fn: (instance: DiscoveredInstance) => Promise<T>, opts: CallOptions = {}): Promise<T> {
    const { attempts = 1, isFailure = isFailedCall, ...pickOpts } = opts;
    await this.ready(service, pickOpts.namespace ?? this.options.namespace);
    const tried = new Set<string>();
    let lastError: unknown;
    for (let attempt = 0; attempt < Math.max(1, attempts); attempt++) {
      const instance = this.pickUntried(service, pickOpts, tried);
      if (!instance) break;
      tried.add(instance.id);
      let result: T;
      try {
        result = await fn(instance);
      } catch (error) {
        const failed = isFailure({ error });
        this.report(instance, !failed);
        if (!failed) throw error;
        lastError = error;
        continue;
      }
      this.report(instance, !isFailure({ result }));
      return result;
    }
    if (lastError !== undefined) throw lastError;
    throw new NoInstanceError(service);
  }

  /** A pick not yet tried in this call, while the balancer offers one within a few picks. */
  private pickUntried(
    service: string,
    opts: ClientPickOptions,
    tried: ReadonlySet<string>,
  ): DiscoveredInstance | undefined {
    let p = this.pick(service, opts);
    for (let i = 0; i < 16 && p && tried.has(p.id); i++) p = this.pick(service, opts);
    return p;
  }

  /** Loads the service's view (like a first `discover`) so that `pick` has it. */
  async ready(service: string, namespace = this.options.namespace): Promise<void> {
    await this.view(namespace, service);
  }

  /** Deregisters what this client registered, stops every watch and closes connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.registrations].map((r) => r.deregister()));
    for (const byName of this.views.values()) for (const v of byName.values()) v.close();
    this.views.clear();
    await this.disk?.flush();
    this.endpoints.close();
  }

  private view(namespace: string, service: string): Promise<ServiceView> {
    this.checkOpen();
    let byName = this.views.get(namespace);
    const existing = byName?.get(service);
    if (existing) return this.loading.get(existing) ?? Promise.resolve(existing);
    if (!byName) this.views.set(namespace, (byName = new Map()));
    const settings = { ...this.options.services[service], ...this.options.services[`${namespace}/${service}`] };
    const view = new ServiceView(namespace, service, {
      endpoints: this.endpoints,
      opts: this.options,
      disk: this.disk,
      self: this.options.location,
      protectionThreshold: settings.protectionThreshold ?? this.options.protectionThreshold,
      balancer: settings.balancer ?? this.options.balancer ?? weightedRandom,
      outliers: outlierOptionsOf(this.options, settings),
      events: {
        update: (ns, svc, revision, instances) =>
          emitSafely(this, 'update', { namespace: ns, service: svc, revision, instances }),
        stale: (ns, svc, reason, ageMs) => emitSafely(this, 'stale', { namespace: ns, service: svc, reason, ageMs }),
        fresh: (ns, svc) => emitSafely(this, 'fresh', { namespace: ns, service: svc }),
        warn: (_ns, _svc, error) => emitSafely(this, 'warning', error),
        eject: (ns, svc, e) => emitSafely(this, 'eject', { namespace: ns, service: svc, ...e }),
      },
    });
    byName.set(service, view);
    const loading = view.start().then(
      () => {
        this.loading.delete(view);
        return view;
      },
      (err: unknown) => {
        // Nothing to serve: forget the view so the next call tries again.
        this.loading.delete(view);
        if (byName.get(service) === view) byName.delete(service);
        view.close();
        throw err;
      },
    );
    this.loading.set(view, loading);
    return loading;
  }

  private checkOpen(): void {
    if (this.closed) throw new ClientClosedError();
  }
}

function checkGrpcAddress(s: string, tls: boolean): string {
  if (!/^(grpcs?:\/\/)?[^\s/]+:\d{1,5}$/.test(s)) {
    throw new InvalidOptionError(
      'servers',
      `a gRPC server is host:port or grpcs://host:port, not ${JSON.stringify(s)} (use transport: "http" for URLs)`,
    );
  }
  // grpc:// says plain text: tls settings must not be dropped silently, nor override it.
  if (tls && s.startsWith('grpc://'))
    throw new InvalidOptionError(
      'servers',
      `tls is set but the server ${s} says grpc:// (plain text): use host:port or grpcs://`,
    );
  return s;
}
