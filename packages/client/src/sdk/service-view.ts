import type { DiscoveredInstance, DiscoverFilter, DiscoverResponse, Location } from '@muster/api';
import type { MusterError } from '@muster/api';
import type { LoadBalancer, PickOptions } from '../balance/types.js';
import { asMusterError, WatchFallbackError } from '../errors.js';
import type { Endpoints } from '../registry/endpoints.js';
import { isTransient, type RegistryApi } from '../registry/registry-api.js';
import type { WatchEnd } from '../watch.js';
import { backoffMs } from './backoff.js';
import type { DiskCache } from './disk-cache.js';
import type { ResolvedOptions } from './options.js';
import type { Ejection, ResolvedOutlierOptions } from './outlier-detector.js';
import { ViewState, type ApplyOutcome, type DiscoveryAnswer, type StaleReason, type ViewSource } from './view-state.js';

export type { DiscoveryAnswer, StaleReason, ViewSource } from './view-state.js';

export interface ViewEvents {
  update(ns: string, svc: string, revision: number, instances: number): void;
  stale(ns: string, svc: string, reason: StaleReason, ageMs: number): void;
  fresh(ns: string, svc: string): void;
  warn(ns: string, svc: string, error: MusterError): void;
  eject(ns: string, svc: string, ejection: Ejection): void;
}

interface ViewDeps {
  endpoints: Endpoints;
  opts: ResolvedOptions;
  disk: DiskCache | undefined;
  events: ViewEvents;
  protectionThreshold: number;
  balancer: LoadBalancer;
  self: Location;
  outliers: ResolvedOutlierOptions | false;
}

const LONG_POLL_MS = 30_000;
/** A watch that stayed open this long worked, whatever ended it. */
const WATCH_PROVEN_MS = 10_000;

/**
 * One service as this process sees it: every instance the registry has (any health), kept
 * current by a watch, else long-polling, else polling, and by failover between servers. This
 * is the sync loop; what the view holds and serves is its ViewState. Reads (`answer`, `pick`)
 * never wait: they use what the view holds and say how fresh it is.
 */
export class ServiceView {
  private readonly state: ViewState;
  private confirmTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private watch: { close(): void } | undefined;
  private wake: (() => void) | undefined;
  /** Set once the first load finished: until then `pick` has nothing to pick from. */
  loaded = false;

  constructor(
    readonly namespace: string,
    readonly service: string,
    private readonly deps: ViewDeps,
  ) {
    const { events } = deps;
    this.state = new ViewState(
      namespace,
      service,
      {
        maxHeartbeatAgeMs: deps.opts.maxHeartbeatAgeMs,
        serveStale: deps.opts.serveStale,
        emptyConfirmMs: deps.opts.emptyConfirmMs,
        protectionThreshold: deps.protectionThreshold,
        balancer: deps.balancer,
        self: deps.self,
        outliers: deps.outliers,
      },
      {
        update: (revision, instances) => events.update(namespace, service, revision, instances),
        stale: (reason, ageMs) => events.stale(namespace, service, reason, ageMs),
        fresh: () => events.fresh(namespace, service),
        eject: (e) => events.eject(namespace, service, e),
      },
    );
  }

  /**
   * Loads the view once: from the registry, else (none reachable) from the disk cache, else it
   * rejects with the registry's error. Then keeps it current in the background.
   */
  async start(): Promise<void> {
    try {
      let used: RegistryApi | undefined;
      const r = await this.deps.endpoints.call((api) =>
        api.discover(this.namespace, this.service, {}).then((x) => ((used = api), x)),
      );
      if (!r.notModified) this.apply(r, 'poll', used);
    } catch (err) {
      const e = asMusterError(err);
      if (e.code === 'NOT_FOUND') this.applyMissing(undefined);
      else if (!isTransient(e.code) || !(await this.loadFromDisk())) throw e;
    }
    this.loaded = true;
    void this.run();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.confirmTimer);
    this.watch?.close();
    this.wake?.();
  }

  answer(filter: DiscoverFilter = {}): DiscoveryAnswer {
    return this.state.answer(filter);
  }

  pick(opts?: PickOptions): DiscoveredInstance | undefined {
    return this.state.pick(opts);
  }

  /** A call's outcome on one of this service's instances (false: not one of them); see ViewState.report. */
  report(id: string, ok: boolean): boolean {
    return this.state.report(id, ok);
  }

  // ---- keeping current ----------------------------------------------------------------------

  private async run(): Promise<void> {
    let mode: 'watch' | 'long-poll' | 'poll' = 'watch';
    let fellBackAt = 0;
    let failures = 0;
    while (!this.closed) {
      if (mode !== 'watch' && Date.now() - fellBackAt >= this.deps.opts.watchRetryMs) mode = 'watch';
      const api = this.deps.endpoints.current();
      if (mode === 'watch') {
        const t0 = Date.now();
        const end = await this.watchOnce(api);
        if (this.closed) break;
        if (Date.now() - t0 > WATCH_PROVEN_MS) failures = 0;
        if (end.reason === 'closed') continue; // we ended it, to move back to the first server
        if (end.reason === 'server-close') {
          // Shutdown or slow-consumer: reconnect at once, but not in a tight loop.
          if (Date.now() - t0 < 1000)
            await this.sleep(backoffMs(++failures, this.deps.opts.backoffBaseMs, this.deps.opts.backoffMaxMs));
          continue;
        }
        const err = end.error;
        if (err.code === 'NOT_FOUND') {
          this.applyMissing(api);
          await this.sleep(this.deps.opts.pollIntervalMs);
          continue;
        }
        failures++;
        if (isTransient(err.code)) this.deps.endpoints.failed(api, err);
        // Is it the server, or only its stream? A plain request tells, and refreshes the view.
        if (await this.fetchOnce('poll', undefined)) {
          if (failures >= 2) {
            mode = this.state.source = 'long-poll';
            fellBackAt = Date.now();
            this.deps.events.warn(this.namespace, this.service, new WatchFallbackError(this.service, err));
          }
        } else await this.sleep(backoffMs(failures, this.deps.opts.backoffBaseMs, this.deps.opts.backoffMaxMs));
      } else if (await this.fetchOnce(mode, mode === 'long-poll' ? LONG_POLL_MS : undefined)) {
        failures = 0;
        if (mode === 'poll') await this.sleep(this.deps.opts.pollIntervalMs);
      } else {
        failures++;
        if (mode === 'long-poll' && failures >= 2) mode = this.state.source = 'poll';
        await this.sleep(backoffMs(failures, this.deps.opts.backoffBaseMs, this.deps.opts.backoffMaxMs));
      }
    }
  }

  /** One watch stream, until it ends. A stream on a server that is not the first choice is ended after a while, to move back. */
  private async watchOnce(api: RegistryApi): Promise<WatchEnd> {
    let opened = false;
    const w = api.watch(this.namespace, this.service, this.state.revisionFor(api), (s) => {
      if (!opened) ((opened = true), this.deps.endpoints.succeeded(api));
      this.apply(s, 'watch', api);
    });
    this.watch = w;
    // A gRPC watch that starts at the current revision sends nothing: it is live once it stays up.
    const liveTimer = setTimeout(() => {
      if (!opened) ((opened = true), this.state.watching());
    }, 1000);
    const back = setInterval(() => {
      if (!this.deps.endpoints.isPreferred(api)) w.close();
    }, this.deps.opts.preferPrimaryAfterMs);
    back.unref();
    try {
      return await w.ended;
    } finally {
      clearTimeout(liveTimer);
      clearInterval(back);
      this.watch = undefined;
      if (!this.closed) this.state.streamEnded();
    }
  }

  /** One discovery request (long-polling with `waitMs`); false when no server answered. */
  private async fetchOnce(source: ViewSource, waitMs: number | undefined): Promise<boolean> {
    try {
      let used: RegistryApi | undefined;
      const r = await this.deps.endpoints.call((api) => {
        used = api;
        const rev = this.state.revisionFor(api);
        return api.discover(
          this.namespace,
          this.service,
          rev === undefined ? {} : waitMs === undefined ? { revision: rev } : { revision: rev, waitMs },
        );
      });
      if (r.notModified) this.state.unchanged(source, r.staleReason !== undefined);
      else this.apply(r, source, used);
      return true;
    } catch (err) {
      const e = asMusterError(err);
      if (e.code === 'NOT_FOUND') {
        this.applyMissing(this.deps.endpoints.current());
        return true;
      }
      if (!isTransient(e.code)) this.deps.events.warn(this.namespace, this.service, e);
      this.state.unreachable();
      return false;
    }
  }

  // ---- applying answers ---------------------------------------------------------------------

  /** Gives an answer to the state; asks again for an empty one it holds back, saves one it took. */
  private apply(s: DiscoverResponse, source: ViewSource, from: RegistryApi | undefined): void {
    if (this.closed) return;
    this.settle(this.state.apply(s, source, from));
  }

  /** The server does not know the service (deleted, or a registry that lost its data): an empty list. */
  private applyMissing(from: RegistryApi | undefined): void {
    if (this.closed) return;
    this.settle(this.state.applyMissing(from));
  }

  private settle(outcome: ApplyOutcome): void {
    if (outcome.kind === 'held') {
      if (outcome.first) this.scheduleConfirm();
      return;
    }
    clearTimeout(this.confirmTimer);
    this.deps.disk?.save(this.state.cached());
  }

  private scheduleConfirm(): void {
    clearTimeout(this.confirmTimer);
    this.confirmTimer = setTimeout(() => {
      void this.deps.endpoints
        .call((api) => api.discover(this.namespace, this.service, {}).then((r) => ({ r, api })))
        .then(
          ({ r, api }) => !r.notModified && this.apply(r, this.state.source, api),
          (err) => {
            const e = asMusterError(err);
            if (e.code === 'NOT_FOUND') this.applyMissing(this.deps.endpoints.current());
            else if (this.state.awaitingEmpty) this.scheduleConfirm();
          },
        );
    }, this.deps.opts.emptyConfirmMs);
    this.confirmTimer.unref();
  }

  private async loadFromDisk(): Promise<boolean> {
    const a = await this.deps.disk?.load(this.namespace, this.service);
    if (!a) return false;
    this.state.loadCached(a);
    return true;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => ((this.wake = undefined), resolve()), ms);
      this.wake = () => (clearTimeout(t), resolve());
    });
  }
}
