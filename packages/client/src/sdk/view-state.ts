import type { DiscoveredInstance, DiscoverFilter, DiscoverResponse, Location } from '@muster/api';
import { isDefaultFilter, matchesFilter, MISSED_HEARTBEATS } from '@muster/api';
import type { LoadBalancer, Picker, PickOptions } from '../balance/types.js';
import type { CachedAnswer } from './disk-cache.js';
import { OutlierDetector, type Ejection, type ResolvedOutlierOptions } from './outlier-detector.js';

/** How the view is kept current. `disk`: loaded from the cache directory, no registry has answered yet. */
export type ViewSource = 'watch' | 'long-poll' | 'poll' | 'disk';
/**
 * Why an answer is stale: no registry answers (`unreachable`), the list came from disk
 * (`disk-cache`), an empty update awaits confirmation (`empty-unconfirmed`), or the registry
 * node that answered says it cannot read its shared database (`registry-stale`, cluster mode).
 */
export type StaleReason = 'unreachable' | 'disk-cache' | 'empty-unconfirmed' | 'registry-stale';

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

/** What the state tells: the view's events, without I/O of its own. */
export interface ViewListener {
  update(revision: number, instances: number): void;
  stale(reason: StaleReason, ageMs: number): void;
  fresh(): void;
  eject(ejection: Ejection): void;
}

export interface ViewStateOptions {
  /** While not live, an instance whose heartbeat may be older than this is not served (see `serveStale`). */
  maxHeartbeatAgeMs: number;
  /** Serve the old ones anyway when none is fresh enough. */
  serveStale: boolean;
  /** How long an empty answer that would empty the view is held back, awaiting the registry's confirmation. */
  emptyConfirmMs: number;
  protectionThreshold: number;
  balancer: LoadBalancer;
  self: Location;
  outliers: ResolvedOutlierOptions | false;
}

/**
 * What became of an answer given to `apply`: taken (`applied`), or held back because it would
 * empty the view (`held`; `confirmAt` is when an answer saying it again is taken, and `first`
 * tells the first answer of a hold, on which the sync loop asks again).
 */
export type ApplyOutcome = { kind: 'applied'; changed: boolean } | { kind: 'held'; first: boolean; confirmAt: number };

/**
 * One service as this process holds it, and nothing else: the instances, their revision, how
 * fresh they are, what is served and picked. Time comes from the injected clock and answers
 * from the caller (the sync loop of ServiceView): no timers, no I/O, so every rule here is
 * tested by moving a clock.
 */
export class ViewState {
  private all: DiscoveredInstance[] = [];
  private revision: number | undefined;
  /** Which server the revision came from: revisions of independent servers do not compare. */
  private revisionFrom: unknown;
  private receivedAt = 0;
  private confirmedAt = 0;
  private live = false;
  private staleReason: StaleReason | undefined;
  private currentSource: ViewSource = 'poll';
  private emptySince: number | undefined;

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

  constructor(
    readonly namespace: string,
    readonly service: string,
    private readonly opts: ViewStateOptions,
    private readonly listener: ViewListener,
    private readonly now: () => number = Date.now,
  ) {
    if (opts.outliers) this.outliers = new OutlierDetector(opts.outliers, now);
  }

  get source(): ViewSource {
    return this.currentSource;
  }

  /** The sync loop changed how it keeps the view current (a fallback to long-polling or polling). */
  set source(s: ViewSource) {
    this.currentSource = s;
  }

  /** True while an empty answer is held back, awaiting its confirmation. */
  get awaitingEmpty(): boolean {
    return this.emptySince !== undefined;
  }

  /** The revision to send `from` (a server): only the one it gave, since revisions of independent servers do not compare. */
  revisionFor(from: unknown): number | undefined {
    return from === this.revisionFrom ? this.revision : undefined;
  }

  answer(filter: DiscoverFilter = {}): DiscoveryAnswer {
    const instances = isDefaultFilter(filter)
      ? this.servingSet().slice()
      : this.all.filter((i) => matchesFilter(i, filter));
    const a: DiscoveryAnswer = {
      namespace: this.namespace,
      service: this.service,
      revision: this.revision ?? 0,
      instances,
      stale: this.staleReason !== undefined,
      ageMs: this.live ? 0 : Math.max(0, this.now() - this.confirmedAt),
      source: this.currentSource,
    };
    if (this.staleReason) a.staleReason = this.staleReason;
    return a;
  }

  pick(opts?: PickOptions): DiscoveredInstance | undefined {
    const serving = this.servingSet();
    const o = this.outliers;
    // The clock is read only while something is ejected: picking stays free of it otherwise.
    if (o && o.ejected > 0) o.expire();
    if (this.pickerVersion !== this.servingVersion || !this.picker || (o && this.pickerOutliers !== o.version)) {
      this.picker = this.opts.balancer.build(
        preferredTier(o && o.ejected > 0 ? this.withoutEjected(o, serving) : serving),
        this.opts.self,
      );
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
    if (e) this.listener.eject(e);
    return true;
  }

  // ---- answers ------------------------------------------------------------------------------

  /**
   * A new list from `from`. One that empties a service that had instances is held back until
   * the registry says it again `emptyConfirmMs` later: one bad push must not empty a consumer's
   * view. An answer the server marks stale is taken (it is the newest there is) but confirms
   * nothing: the view is marked `registry-stale` and keeps ageing.
   */
  apply(s: DiscoverResponse, source: ViewSource, from: unknown): ApplyOutcome {
    const now = this.now();
    if (s.instances.length === 0 && this.all.length > 0) {
      if (this.emptySince === undefined) {
        this.emptySince = now;
        this.markStale('empty-unconfirmed');
        return { kind: 'held', first: true, confirmAt: now + this.opts.emptyConfirmMs };
      }
      if (now - this.emptySince < this.opts.emptyConfirmMs)
        return { kind: 'held', first: false, confirmAt: this.emptySince + this.opts.emptyConfirmMs };
    }
    this.emptySince = undefined;
    const changed =
      s.revision !== this.revision || from !== this.revisionFrom || this.all.length !== s.instances.length;
    this.all = s.instances;
    this.idSet = undefined;
    this.outliers?.retain(this.ids());
    this.revision = s.revision;
    this.revisionFrom = from;
    this.receivedAt = now;
    if (s.stale === true) this.markBehind(source);
    else this.markLive(source);
    this.invalidate();
    if (changed) this.listener.update(s.revision, s.instances.length);
    return { kind: 'applied', changed };
  }

  /** The server does not know the service (deleted, or a registry that lost its data): an empty list. */
  applyMissing(from: unknown): ApplyOutcome {
    return this.apply(
      { namespace: this.namespace, service: this.service, revision: 0, instances: [] },
      this.currentSource,
      from,
    );
  }

  /** The server says the revision held is current; `stale` when it says so from an index it cannot keep current. */
  unchanged(source: ViewSource, stale: boolean): void {
    if (stale) this.markBehind(source);
    else this.markLive(source);
  }

  /** A watch stream is up and has said nothing (it starts at the revision held): that is an answer too. */
  watching(): void {
    this.markLive('watch');
  }

  /** The last good answer from disk: served, marked stale, until a registry answers. */
  loadCached(a: CachedAnswer): void {
    this.all = a.instances;
    this.idSet = undefined;
    this.revision = a.revision;
    this.revisionFrom = undefined;
    this.receivedAt = a.receivedAt;
    this.confirmedAt = a.confirmedAt;
    this.currentSource = 'disk';
    this.live = false;
    this.invalidate();
    this.markStale('disk-cache');
  }

  /** What the disk cache keeps of the list applied last. */
  cached(): CachedAnswer {
    return {
      namespace: this.namespace,
      service: this.service,
      revision: this.revision ?? 0,
      confirmedAt: this.confirmedAt,
      receivedAt: this.receivedAt,
      instances: this.all,
    };
  }

  /** No registry answered. */
  unreachable(): void {
    this.markStale('unreachable');
  }

  /** The stream ended: what we hold was current then, and ages from now on. */
  streamEnded(): void {
    if (this.live) this.confirmedAt = this.now();
    this.live = false;
    this.invalidate();
  }

  // ---- freshness ----------------------------------------------------------------------------

  private markLive(source: ViewSource): void {
    this.currentSource = source;
    this.confirmedAt = this.now();
    this.live = source === 'watch';
    if (this.emptySince !== undefined) return; // still waiting for an empty list to be confirmed
    if (this.staleReason !== undefined) {
      this.staleReason = undefined;
      this.invalidate();
      this.listener.fresh();
    }
  }

  /** The server answered from an index it cannot keep current: not a confirmation. */
  private markBehind(source: ViewSource): void {
    this.currentSource = source;
    this.markStale('registry-stale');
  }

  private markStale(reason: StaleReason): void {
    this.live = false;
    this.invalidate();
    if (this.staleReason === reason || (this.staleReason === 'disk-cache' && reason === 'unreachable')) return;
    this.staleReason = reason;
    this.listener.stale(reason, this.now() - this.confirmedAt);
  }

  // ---- what is served -----------------------------------------------------------------------

  /**
   * Healthy and not isolated; all non-isolated ones when too few are healthy (protection); and
   * while the view is not live, only instances whose heartbeat is recent enough, unless none is
   * (then all, the answer being marked stale).
   */
  private servingSet(): DiscoveredInstance[] {
    const now = this.now();
    if (this.serving && (this.live || now - this.servingAt < 1000)) return this.serving;
    const visible = this.all.filter((i) => !i.isolate);
    let out = visible.filter((i) => i.healthy);
    const threshold = this.opts.protectionThreshold;
    if (threshold > 0 && visible.length > 0 && out.length / visible.length < threshold) out = visible;
    if (!this.live) {
      const fresh = out.filter((i) => this.heartbeatAgeBound(i, now) <= this.opts.maxHeartbeatAgeMs);
      if (fresh.length > 0 || !this.opts.serveStale) out = fresh;
    }
    if (!this.serving || !sameIds(this.serving, out)) this.servingVersion++;
    this.serving = out;
    this.servingAt = now;
    return out;
  }

  /**
   * How old the instance's last heartbeat can be now, at most. Heartbeats do not move the
   * revision, so the age in the answer only grows here; but until `confirmedAt` the registry
   * vouched for the list, and it expires a healthy instance after 3 × ttl without a heartbeat.
   */
  private heartbeatAgeBound(i: DiscoveredInstance, now: number): number {
    const atConfirm = i.lastHeartbeatAgeMs + (this.confirmedAt - this.receivedAt);
    const vouched = i.healthy ? Math.min(atConfirm, MISSED_HEARTBEATS * i.healthCheck.ttl * 1000) : atConfirm;
    return vouched + (now - this.confirmedAt);
  }

  /** The served instances less the ejected ones, never more of them than the share allows (the served set may have shrunk since). */
  private withoutEjected(o: OutlierDetector, serving: DiscoveredInstance[]): DiscoveredInstance[] {
    const max = Math.floor((this.opts.outliers as ResolvedOutlierOptions).maxEjectedShare * serving.length);
    const out = new Set(o.ejectedOrder(serving.map((i) => i.id)).slice(0, max));
    return out.size === 0 ? serving : serving.filter((i) => !out.has(i.id));
  }

  private ids(): Set<string> {
    return (this.idSet ??= new Set(this.all.map((i) => i.id)));
  }

  private invalidate(): void {
    this.serving = undefined;
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
