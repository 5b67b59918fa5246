import type { DiscoveredInstance, DiscoverFilter, DiscoverResponse, Location } from '@muster/api';
import { isDefaultFilter, matchesFilter, MISSED_HEARTBEATS, MusterError } from '@muster/api';
import type { LoadBalancer, Picker, PickOptions } from '../balance/types.js';
import type { Endpoints } from '../registry/endpoints.js';
import { isTransient, type RegistryApi } from '../registry/registry-api.js';
import type { WatchEnd } from '../watch.js';
import { backoffMs } from './backoff.js';
import type { CachedAnswer, DiskCache } from './disk-cache.js';
import type { ResolvedOptions } from './options.js';
import { OutlierDetector, type Ejection, type ResolvedOutlierOptions } from './outlier-detector.js';

/** How the view is kept current. `disk`: loaded from the cache directory, no registry has answered yet. */
export type ViewSource = 'watch' | 'long-poll' | 'poll' | 'disk';
/** Why an answer is stale: no registry answers, the list came from disk, or an empty update is unconfirmed. */
export type StaleReason = 'unreachable' | 'disk-cache' | 'empty-unconfirmed';

export interface DiscoveryAnswer {
  namespace: string;
  service: string;
  revision: number;
  instances: DiscoveredInstance[];
  /** True when the registry could not confirm this list just now: see `staleReason` and `ageMs`. */
  stale: boolean;
  staleReason?: StaleReason;
  /** How long ago the registry last confirmed this list; 0 while a watch is connected. */
  ageMs: number;
  source: ViewSource;
}

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
 * current by a watch, else long-polling, else polling, and by failover between servers. Reads
 * (`answer`, `pick`) never wait: they use what the view holds and say how fresh it is.
 */
export class ServiceView {
  private all: DiscoveredInstance[] = [];
  private revision: number | undefined;
  /** Which server the revision came from: revisions of independent servers do not compare. */
  private revisionFrom: RegistryApi | undefined;
  private receivedAt = 0;
  private confirmedAt = 0;
  private live = false;
  private staleReason: StaleReason | undefined;
  private source: ViewSource = 'poll';
  private emptySince: number | undefined;
  private confirmTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private watch: { close(): void } | undefined;
  private wake: (() => void) | undefined;

  /** The default answer (healthy, not isolated, protection applied) and pickers built on it. */
  private serving: DiscoveredInstance[] | undefined;
  private servingAt = 0;
  private servingVersion = 0;
  private picker: Picker | undefined;
  private pickerVersion = -1;
  /** Calls reported failed take instances out of `pick` for a while (undefined: turned off). */
  private readonly outliers: OutlierDetector | undefined;
  private pickerOutliers = 0;
  /** The ids of `all`, built when a report needs them. */
  private idSet: Set<string> | undefined;
  /** Set once the first load finished: until then `pick` has nothing to pick from. */
  loaded = false;

  constructor(readonly namespace: string, readonly service: string, private readonly deps: ViewDeps) {
    if (deps.outliers) this.outliers = new OutlierDetector(deps.outliers);
  }

  /**
   * Loads the view once: from the registry, else (none reachable) from the disk cache, else it
   * rejects with the registry's error. Then keeps it current in the background.
   */
  async start(): Promise<void> {
    try {
      let used: RegistryApi | undefined;
      const r = await this.deps.endpoints.call((api) => api.discover(this.namespace, this.service, {}).then((x) => ((used = api), x)));
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
    const instances = isDefaultFilter(filter) ? this.servingSet().slice() : this.all.filter((i) => matchesFilter(i, filter));
    return this.describe(instances);
  }

  pick(opts?: PickOptions): DiscoveredInstance | undefined {
    const serving = this.servingSet();
    const o = this.outliers;
    // The clock is read only while something is ejected: picking stays free of it otherwise.
    if (o && o.ejected > 0) o.expire();
    if (this.pickerVersion !== this.servingVersion || !this.picker || (o && this.pickerOutliers !== o.version)) {
      this.picker = this.deps.balancer.build(preferredTier(o && o.ejected > 0 ? this.withoutEjected(o, serving) : serving), this.deps.self);
      this.pickerVersion = this.servingVersion;
      this.pickerOutliers = o?.version ?? 0;
    }
    return this.picker.pick(opts);
  }

  /**
   * A call's outcome on one of this service's instances (false: not one of them). Failures in a
   * row eject it from `pick` for a while; see OutlierDetector.
   */
  report(id: string, ok: boolean): boolean {
    if (!this.ids().has(id)) return false;
    const e = this.outliers?.report(id, ok, this.servingSet().length);
    if (e) this.deps.events.eject(this.namespace, this.service, e);
    return true;
  }

  /** The served instances less the ejected ones, never more of them than the share allows (the served set may have shrunk since). */
  private withoutEjected(o: OutlierDetector, serving: DiscoveredInstance[]): DiscoveredInstance[] {
    const max = Math.floor((this.deps.outliers as ResolvedOutlierOptions).maxEjectedShare * serving.length);
    const out = new Set(o.ejectedOrder(serving.map((i) => i.id)).slice(0, max));
    return out.size === 0 ? serving : serving.filter((i) => !out.has(i.id));
  }

  private ids(): Set<string> {
    return (this.idSet ??= new Set(this.all.map((i) => i.id)));
  }

  private describe(instances: DiscoveredInstance[]): DiscoveryAnswer {
    const a: DiscoveryAnswer = {
      namespace: this.namespace, service: this.service, revision: this.revision ?? 0, instances,
      stale: this.staleReason !== undefined, ageMs: this.live ? 0 : Math.max(0, Date.now() - this.confirmedAt), source: this.source,
    };
    if (this.staleReason) a.staleReason = this.staleReason;
    return a;
  }

  /**
   * Healthy and not isolated; all non-isolated ones when too few are healthy (protection); and
   * while the registry is out of reach, only instances whose heartbeat is recent enough, unless
   * none is (then all, the answer being marked stale).
   */
  private servingSet(): DiscoveredInstance[] {
    if (this.serving && (this.live || Date.now() - this.servingAt < 1000)) return this.serving;
    const visible = this.all.filter((i) => !i.isolate);
    let out = visible.filter((i) => i.healthy);
    const threshold = this.deps.protectionThreshold;
    if (threshold > 0 && visible.length > 0 && out.length / visible.length < threshold) out = visible;
    if (!this.live) {
      const fresh = out.filter((i) => this.heartbeatAgeBound(i) <= this.deps.opts.maxHeartbeatAgeMs);
      if (fresh.length > 0 || !this.deps.opts.serveStale) out = fresh;
    }
    if (!this.serving || !sameIds(this.serving, out)) this.servingVersion++;
    this.serving = out;
    this.servingAt = Date.now();
    return out;
  }

  /**
   * How old the instance's last heartbeat can be now, at most. Heartbeats do not move the
   * revision, so the age in the answer only grows here; but until `confirmedAt` the registry
   * vouched for the list, and it expires a healthy instance after 3 × ttl without a heartbeat.
   */
  private heartbeatAgeBound(i: DiscoveredInstance): number {
    const atConfirm = i.lastHeartbeatAgeMs + (this.confirmedAt - this.receivedAt);
    const vouched = i.healthy ? Math.min(atConfirm, MISSED_HEARTBEATS * i.healthCheck.ttl * 1000) : atConfirm;
    return vouched + (Date.now() - this.confirmedAt);
  }

  private invalidate(): void {
    this.serving = undefined;
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
          if (Date.now() - t0 < 1000) await this.sleep(backoffMs(++failures, this.deps.opts.backoffBaseMs, this.deps.opts.backoffMaxMs));
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
            mode = this.source = 'long-poll';
            fellBackAt = Date.now();
            this.deps.events.warn(this.namespace, this.service, new MusterError(err.code, `watching ${this.service} keeps failing (${err.message}); long-polling instead`));
          }
        } else await this.sleep(backoffMs(failures, this.deps.opts.backoffBaseMs, this.deps.opts.backoffMaxMs));
      } else if (await this.fetchOnce(mode, mode === 'long-poll' ? LONG_POLL_MS : undefined)) {
        failures = 0;
        if (mode === 'poll') await this.sleep(this.deps.opts.pollIntervalMs);
      } else {
        failures++;
        if (mode === 'long-poll' && failures >= 2) mode = this.source = 'poll';
        await this.sleep(backoffMs(failures, this.deps.opts.backoffBaseMs, this.deps.opts.backoffMaxMs));
      }
    }
  }

  /** One watch stream, until it ends. A stream on a server that is not the first choice is ended after a while, to move back. */
  private async watchOnce(api: RegistryApi): Promise<WatchEnd> {
    let opened = false;
    const w = api.watch(this.namespace, this.service, this.revisionFor(api), (s) => {
      if (!opened) (opened = true), this.deps.endpoints.succeeded(api);
      this.apply(s, 'watch', api);
    });
    this.watch = w;
    // A gRPC watch that starts at the current revision sends nothing: it is live once it stays up.
    const liveTimer = setTimeout(() => {
      if (!opened) (opened = true), this.markLive('watch');
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
      if (!this.closed) this.markUnconfirmed();
    }
  }

  /** One discovery request (long-polling with `waitMs`); false when no server answered. */
  private async fetchOnce(source: ViewSource, waitMs: number | undefined): Promise<boolean> {
    try {
      let used: RegistryApi | undefined;
      const r = await this.deps.endpoints.call((api) => {
        used = api;
        const rev = this.revisionFor(api);
        return api.discover(this.namespace, this.service, rev === undefined ? {} : waitMs === undefined ? { revision: rev } : { revision: rev, waitMs });
      });
      if (r.notModified) this.markLive(source);
      else this.apply(r, source, used);
      return true;
    } catch (err) {
      const e = asMusterError(err);
      if (e.code === 'NOT_FOUND') {
        this.applyMissing(this.deps.endpoints.current());
        return true;
      }
      if (!isTransient(e.code)) this.deps.events.warn(this.namespace, this.service, e);
      this.markStale('unreachable');
      return false;
    }
  }

  private revisionFor(api: RegistryApi): number | undefined {
    return api === this.revisionFrom ? this.revision : undefined;
  }

  // ---- applying answers ---------------------------------------------------------------------

  /**
   * A new list. One that empties a service that had instances is held back until the registry
   * says it again `emptyConfirmMs` later: one bad push must not empty a consumer's view.
   */
  private apply(s: DiscoverResponse, source: ViewSource, from: RegistryApi | undefined): void {
    if (this.closed) return;
    const now = Date.now();
    if (s.instances.length === 0 && this.all.length > 0) {
      if (this.emptySince === undefined) {
        this.emptySince = now;
        this.markStale('empty-unconfirmed');
        this.scheduleConfirm();
        return;
      }
      if (now - this.emptySince < this.deps.opts.emptyConfirmMs) return;
    }
    this.emptySince = undefined;
    clearTimeout(this.confirmTimer);
    const changed = s.revision !== this.revision || from !== this.revisionFrom || this.all.length !== s.instances.length;
    this.all = s.instances;
    this.idSet = undefined;
    this.outliers?.retain(this.ids());
    this.revision = s.revision;
    this.revisionFrom = from;
    this.receivedAt = now;
    this.markLive(source);
    this.invalidate();
    if (changed) this.deps.events.update(this.namespace, this.service, s.revision, s.instances.length);
    this.deps.disk?.save({ namespace: this.namespace, service: this.service, revision: s.revision, confirmedAt: now, receivedAt: now, instances: s.instances });
  }

  /** The server does not know the service (deleted, or a registry that lost its data): an empty list. */
  private applyMissing(from: RegistryApi | undefined): void {
    this.apply({ namespace: this.namespace, service: this.service, revision: 0, instances: [] }, this.source, from);
  }

  private scheduleConfirm(): void {
    clearTimeout(this.confirmTimer);
    this.confirmTimer = setTimeout(() => {
      void this.deps.endpoints.call((api) => api.discover(this.namespace, this.service, {}).then((r) => ({ r, api }))).then(
        ({ r, api }) => !r.notModified && this.apply(r, this.source, api),
        (err) => {
          const e = asMusterError(err);
          if (e.code === 'NOT_FOUND') this.applyMissing(this.deps.endpoints.current());
          else if (this.emptySince !== undefined) this.scheduleConfirm();
        },
      );
    }, this.deps.opts.emptyConfirmMs);
    this.confirmTimer.unref();
  }

  private async loadFromDisk(): Promise<boolean> {
    const a: CachedAnswer | undefined = await this.deps.disk?.load(this.namespace, this.service);
    if (!a) return false;
    this.all = a.instances;
    this.idSet = undefined;
    this.revision = a.revision;
    this.revisionFrom = undefined;
    this.receivedAt = a.receivedAt;
    this.confirmedAt = a.confirmedAt;
    this.source = 'disk';
    this.live = false;
    this.invalidate();
    this.markStale('disk-cache');
    return true;
  }

  private markLive(source: ViewSource): void {
    this.source = source;
    this.confirmedAt = Date.now();
    this.live = source === 'watch';
    if (this.emptySince !== undefined) return; // still waiting for an empty list to be confirmed
    if (this.staleReason !== undefined) {
      this.staleReason = undefined;
      this.invalidate();
      this.deps.events.fresh(this.namespace, this.service);
    }
  }

  /** The stream ended: what we hold was current then, and ages from now on. */
  private markUnconfirmed(): void {
    if (this.live) this.confirmedAt = Date.now();
    this.live = false;
    this.invalidate();
  }

  private markStale(reason: StaleReason): void {
    this.live = false;
    this.invalidate();
    if (this.staleReason === reason || (this.staleReason === 'disk-cache' && reason === 'unreachable')) return;
    this.staleReason = reason;
    this.deps.events.stale(this.namespace, this.service, reason, Date.now() - this.confirmedAt);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => ((this.wake = undefined), resolve()), ms);
      this.wake = () => (clearTimeout(t), resolve());
    });
  }
}

/** The pickable instances of the best (lowest) priority: the others are picked only when none of these is served. */
function preferredTier(list: DiscoveredInstance[]): DiscoveredInstance[] {
  let best = Infinity;
  for (const i of list) if (i.weight > 0 && i.priority < best) best = i.priority;
  return list.some((i) => i.priority !== best) ? list.filter((i) => i.priority === best) : list;
}

function sameIds(a: DiscoveredInstance[], b: DiscoveredInstance[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function asMusterError(err: unknown): MusterError {
  return err instanceof MusterError ? err : new MusterError('INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
}
