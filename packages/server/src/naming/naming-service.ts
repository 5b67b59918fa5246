import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type {
  DiscoverFilter, DiscoverResponse, EventType, HeartbeatBatchResponse, HeartbeatItem, Instance, InstancePatch, Namespace,
  RegisterResponse, RegistryEvent, Service,
} from '@muster/api';
import { isDefaultFilter, MISSED_HEARTBEATS } from '@muster/api';
import { checkContext, type RequestContext } from '../batch/request-context.js';
import type { WriteBatcher } from '../batch/write-batcher.js';
import type { Clock } from '../clock.js';
import { Errors, MusterError } from '../errors.js';
import type { RegistryIndex, ServiceEntry } from '../index/registry-index.js';
import type { Metrics } from '../metrics/metrics.js';
import type { InstanceRecord, InstanceVerificationRecord, ServiceRecord, ServiceVerificationSetting } from '../model/records.js';
import { sameLocation, sameMetadata, toWireInstance, toWireNamespace, toWireService, UNCHECKED } from '../model/records.js';
import type { EventFilter, Store, StoreTx, TxHints } from '../store/store.js';
import { addressRefusal, type GuardOptions } from '../verify/address-guard.js';
import { PUBLIC_REASONS, publicFailure, type CheckOutcome } from '../verify/verifier.js';
import { deriveInstanceId, hashToken, looksDerived, newToken, scopedInstanceId, tokenMatches } from './identity.js';
import {
  checkHeartbeatBatchSize, checkName, validateInstancePatch, validateNamespaceInput, validateRegistration, validateServiceInput,
} from './validate.js';

export interface NamingOptions {
  autoCreateService: boolean;
  verification: GuardOptions;
}

/** Told of every heartbeat accepted, with when it arrived, so the periodic flush knows which rows to write. */
export type HeartbeatSink = (id: string, at: number) => void;

/** Where verification checks go (the verification queue). */
export interface VerificationSink {
  /** After the commit: these instances need a check, asked for by `caller` (undefined: the registry itself). */
  checksDue(ids: readonly string[], caller?: string): void;
  /**
   * Takes a place for one more check of this caller, if it has one left (a registration without
   * one is refused); `release` gives it back once the registration is answered, its check queued.
   */
  reserve(caller: string): boolean;
  release(caller: string): void;
}

/** What a verification check looked at: its result counts only if the instance and service still match it. */
export type CheckedTarget = ServiceVerificationSetting & { host: string; port: number };

export const DEFAULT_NAMESPACE = 'default';

/** Whether a caller may act on any instance of a service: an access token's write right, from the guard. */
export type ServiceWriter = (namespace: string, service: string) => boolean;

/** What a caller brings to change an instance: its heartbeatToken, or a write right on its service. */
export interface InstanceCredentials {
  instanceToken?: string | undefined;
  writer?: ServiceWriter | undefined;
  /** Only a re-registration by the instance's owner is allowed (auth.clients required, no access token). */
  ownerOnly?: boolean;
  /** May change an instance's isolation: an operator's decision (the guard's mayIsolate). */
  mayIsolate?: boolean;
  /** Who is asking, as the verification queue shares its checks out: an access token, or a client address. */
  caller?: string;
}

/**
 * The domain: every rule of namespaces, services and instances lives here (PolarisMesh's
 * service/). Adapters call it; it validates, decides inside the batch's transaction, and reads
 * from the index. It never talks to the store outside a batched write.
 */
export class NamingService {
  private heartbeatSink: HeartbeatSink = () => {};
  private verificationSink: VerificationSink = { checksDue: () => {}, reserve: () => true, release: () => {} };
  private indexMiss: ((id: string) => Promise<boolean>) | undefined;

  constructor(
    private readonly index: RegistryIndex,
    private readonly batcher: WriteBatcher,
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    private readonly opts: NamingOptions,
  ) {}

  onHeartbeat(sink: HeartbeatSink): void {
    this.heartbeatSink = sink;
  }

  onVerificationNeeded(sink: VerificationSink): void {
    this.verificationSink = sink;
  }

  /**
   * Cluster mode: an instance missing from this node's index may have been registered through
   * another node a moment ago; `find` brings it in from the store before a heartbeat says 404.
   */
  onIndexMiss(find: (id: string) => Promise<boolean>): void {
    this.indexMiss = find;
  }

  // ---- namespaces -------------------------------------------------------------------------

  /** Makes sure the default namespace exists; called once at start. */
  async ensureDefaultNamespace(): Promise<void> {
    if (this.index.namespaces.has(DEFAULT_NAMESPACE)) return;
    await this.createNamespace({ name: DEFAULT_NAMESPACE, comment: 'created at first start' }).catch((err: unknown) => {
      if (!(err instanceof MusterError && err.code === 'ALREADY_EXISTS')) throw err;
    });
  }

  listNamespaces(): Namespace[] {
    return [...this.index.namespaces.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map(toWireNamespace);
  }

  getNamespace(name: string): Namespace & { serviceCount: number } {
    checkName('namespace', name);
    const ns = this.index.namespaces.get(name);
    if (!ns) throw Errors.namespaceNotFound(name);
    return { ...toWireNamespace(ns), serviceCount: this.index.servicesOf(name).length };
  }

  /**
   * Every write takes the context (`ctx`) of the request it serves, if any: it is not applied once that
   * request's client has gone or its deadline passed, and it learns the revision it committed.
   */
  async createNamespace(input: unknown, ctx?: RequestContext): Promise<Namespace> {
    const v = validateNamespaceInput(input);
    return this.batcher.submit(async (tx) => {
      if (await tx.getNamespace(v.name)) throw Errors.namespaceExists(v.name);
      const now = this.clock.now();
      const rec = { name: v.name, comment: v.comment, createdAt: now, updatedAt: now };
      await tx.putNamespace(rec);
      await tx.appendEvent({ type: 'namespace.created', namespace: v.name, at: now, detail: {} });
      return toWireNamespace(rec);
    }, { namespaces: [v.name] }, ctx);
  }

  async deleteNamespace(name: string, ctx?: RequestContext): Promise<void> {
    checkName('namespace', name);
    if (name === DEFAULT_NAMESPACE) throw Errors.defaultNamespace();
    await this.batcher.submit(async (tx) => {
      if (!(await tx.getNamespace(name))) throw Errors.namespaceNotFound(name);
      const services = await tx.countServices(name);
      if (services > 0) throw Errors.namespaceNotEmpty(name, services);
      await tx.deleteNamespace(name);
      await tx.appendEvent({ type: 'namespace.deleted', namespace: name, at: this.clock.now(), detail: {} });
    }, { namespaces: [name] }, ctx);
  }

  // ---- services ---------------------------------------------------------------------------

  /** `visible`: which services this caller may see (the guard's answer); the others are not counted either. */
  listServices(namespace: string, q: { offset: number; limit: number; prefix?: string; visible?: (service: string) => boolean }): { total: number; services: Service[] } {
    this.requireNamespace(namespace);
    let all = this.index.servicesOf(namespace);
    if (q.prefix) all = all.filter((e) => e.rec.name.startsWith(q.prefix!));
    if (q.visible) all = all.filter((e) => q.visible!(e.rec.name));
    return { total: all.length, services: all.slice(q.offset, q.offset + q.limit).map((e) => this.wireService(e)) };
  }

  getService(namespace: string, name: string): Service {
    return this.wireService(this.requireService(namespace, name));
  }

  async createService(namespace: string, input: unknown, ctx?: RequestContext): Promise<Service> {
    checkName('namespace', namespace);
    const v = validateServiceInput(input, true);
    const rec = await this.batcher.submit(async (tx) => {
      if (!(await tx.getNamespace(namespace))) throw Errors.namespaceNotFound(namespace);
      if (await tx.getService(namespace, v.name)) throw Errors.serviceExists(namespace, v.name);
      return this.insertService(tx, namespace, v.name, v.comment ?? '', v.metadata ?? {}, v.verification ?? null);
    }, { namespaces: [namespace], services: [[namespace, v.name]] }, ctx);
    return toWireService(rec, { instances: 0, healthy: 0, isolated: 0, pending: 0, failed: 0 });
  }

  async patchService(namespace: string, name: string, input: unknown, ctx?: RequestContext): Promise<Service> {
    checkName('namespace', namespace);
    checkName('service', name);
    const v = validateServiceInput(input, false);
    const { svc: written, toCheck } = await this.batcher.submit(async (tx) => {
      const svc = await tx.getService(namespace, name);
      if (!svc) throw this.missingService(namespace, name);
      if (v.comment !== undefined) svc.comment = v.comment;
      if (v.metadata !== undefined) svc.metadata = v.metadata;
      const before = svc.verification;
      if (v.verification !== undefined) svc.verification = v.verification;
      const turn = verificationTurn(before, svc.verification);
      const detail: Record<string, unknown> = { comment: v.comment, metadata: v.metadata };
      if (turn !== 'same') detail['verification'] = svc.verification ? { [turn]: true, path: svc.verification.path } : { disabled: true };
      const revision = await this.bump(tx, svc, 'service.updated', undefined, detail);
      return { svc, toCheck: turn === 'same' ? [] : await this.retagInstances(tx, svc, turn, revision) };
    }, { services: [[namespace, name]] }, ctx);
    if (toCheck.length > 0) this.verificationSink.checksDue(toCheck);
    // The service as this write left it: a later write of the same batch may have changed (or
    // deleted) it in the index already. Its instance counts are the index's.
    const e = this.index.service(namespace, name);
    return this.wireService({ instances: new Map(), ...e, rec: written });
  }

  /**
   * Instances as a change of the service's verification leaves them, inside the same write.
   * Turned on: every instance is pending (a service with verification has no visible instance
   * that did not prove itself). Turned off: every instance is verified, as in any service
   * without it. Secret or path changed: the verified stay verified (a rotation must not take
   * the service down); the pending and failed are checked again under the new setting.
   * Answers the ids to check after the commit.
   */
  private async retagInstances(tx: StoreTx, svc: ServiceRecord, turn: 'enabled' | 'disabled' | 'changed', revision: number): Promise<string[]> {
    const now = this.clock.now();
    const toCheck: string[] = [];
    for (const id of await tx.listInstanceIds(svc.namespace, svc.name)) {
      const cur = (await tx.getInstance(id))!;
      let verification: InstanceVerificationRecord;
      if (turn === 'enabled') verification = { state: 'pending', reason: '', at: now };
      else if (turn === 'disabled') {
        if (cur.verification.state === 'verified' && cur.verification.at === 0) continue;
        verification = { ...UNCHECKED };
      } else {
        if (cur.verification.state !== 'verified') toCheck.push(id);
        continue;
      }
      if (verification.state === 'pending') toCheck.push(id);
      await tx.putInstance({ ...cur, verification, revision, updatedAt: now }, cur);
    }
    return toCheck;
  }

  async deleteService(namespace: string, name: string, force: boolean, ctx?: RequestContext): Promise<void> {
    checkName('namespace', namespace);
    checkName('service', name);
    await this.batcher.submit(async (tx) => {
      const svc = await tx.getService(namespace, name);
      if (!svc) throw this.missingService(namespace, name);
      const ids = await tx.listInstanceIds(namespace, name);
      if (ids.length > 0 && !force) throw Errors.serviceNotEmpty(namespace, name, ids.length);
      const now = this.clock.now();
      for (const id of ids) {
        await tx.deleteInstance(id);
        await tx.appendEvent({ type: 'instance.deregistered', namespace, service: name, instanceId: id, at: now, detail: { reason: 'service deleted' } });
      }
      await tx.deleteService(namespace, name);
      await tx.appendEvent({ type: 'service.deleted', namespace, service: name, at: now, detail: { instancesRemoved: ids.length } });
    }, { services: [[namespace, name]] }, ctx);
  }

  // ---- instances --------------------------------------------------------------------------

  /**
   * Registers an instance, or updates it when its id already exists (in this service: see
   * registrationTarget). An existing instance is updated only by the holder of its
   * heartbeatToken; without it, only an instance that is no longer healthy (its owner is gone)
   * can be taken over, and the takeover issues a new token.
   */
  async register(namespace: string, service: string, input: unknown, creds: InstanceCredentials = {}, ctx?: RequestContext): Promise<RegisterResponse> {
    const presentedToken = creds.instanceToken;
    checkName('namespace', namespace);
    checkName('service', service);
    let v;
    try {
      v = validateRegistration(input);
    } catch (err) {
      this.metrics.reg.rejected.inc();
      throw err;
    }
    const derived = deriveInstanceId(namespace, service, v.host, v.port);
    const key = v.id ?? derived;
    const scoped = scopedInstanceId(namespace, service, key);
    // A place taken in the verification queue (once, however often the write runs), given back below.
    let reserved: string | undefined;
    try {
      const result = await this.batcher.submit(async (tx) => {
        if (!(await tx.getNamespace(namespace))) throw Errors.namespaceNotFound(namespace);
        const now = this.clock.now();
        const svc = (await tx.getService(namespace, service)) ?? (await this.autoCreateService(tx, namespace, service));
        const { id, prev } = await registrationTarget(tx, namespace, service, key, scoped, v.id === undefined || v.id === derived);
        // Only a proven owner keeps the token; a new instance or a takeover always gets a fresh
        // one, so a caller can never choose (or reuse another credential as) an instance's token.
        let token: string | undefined;
        if (prev) {
          // As on PATCH: the owner's registration keeps the isolation an operator set, or sets it with write.
          if (v.isolate !== undefined && v.isolate !== prev.isolate && !creds.mayIsolate) throw Errors.isolationNeedsAccessToken(id);
          if (presentedToken !== undefined && tokenMatches(presentedToken, prev.tokenHash)) token = presentedToken;
          else if (creds.ownerOnly) throw Errors.tokenWrong(id);
          // A write right on the service may take over a live instance; it gets a fresh token.
          else if (this.isAlive(prev) && !creds.writer?.(namespace, service)) throw presentedToken === undefined ? Errors.instanceAlive(id) : Errors.tokenWrong(id);
          // Another host or port is another endpoint: who may not register a new instance may not
          // point this one elsewhere either, unless verification checks the new endpoint.
          if (creds.ownerOnly && !svc.verification && (prev.host !== v.host || prev.port !== v.port)) {
            throw Errors.moveNeedsWriteRight(id, prev.host !== v.host ? 'host' : 'port');
          }
        } else if (creds.ownerOnly) throw Errors.unauthenticated('registering a new instance needs an access token with write on its service (auth.clients is required)');
        const owner = token !== undefined;
        token ??= newToken();
        const rec: InstanceRecord = {
          id, namespace, service, host: v.host, port: v.port, protocol: v.protocol, version: v.version,
          weight: v.weight, priority: v.priority, metadata: v.metadata, location: v.location, ttl: v.ttl,
          healthy: true, isolate: v.isolate ?? prev?.isolate ?? false, lastHeartbeat: now,
          healthChangedAt: prev && prev.healthy ? prev.healthChangedAt : now,
          revision: prev?.revision ?? 0, createdAt: prev?.createdAt ?? now, updatedAt: now, tokenHash: hashToken(token),
          verification: this.verificationAtRegistration(svc, v.host, v.port, prev, owner, now),
        };
        // A check that would wait behind too many of the same caller's is not taken on at all.
        if (rec.verification.state === 'pending' && prev?.verification.state !== 'pending' && creds.caller !== undefined && reserved === undefined) {
          if (!this.verificationSink.reserve(creds.caller)) throw Errors.tooManyPendingChecks();
          reserved = creds.caller;
        }
        const changed = prev ? changedFields(prev, rec) : [];
        if (!prev) {
          const detail: Record<string, unknown> = { host: v.host, port: v.port };
          if (rec.verification.state === 'pending') detail['verification'] = 'pending';
          rec.revision = await this.bump(tx, svc, 'instance.registered', id, detail);
        } else if (changed.length > 0) {
          rec.revision = await this.bump(tx, svc, 'instance.updated', id, { changed, reRegistered: true });
        } else rec.updatedAt = prev.updatedAt;
        await tx.putInstance(rec, prev ?? null);
        return { created: !prev, rec, token };
      }, this.registrationHints(namespace, service, [key, scoped]), ctx);
      (result.created ? this.metrics.reg.created : this.metrics.reg.updated).inc();
      if (result.rec.verification.state === 'pending') this.verificationSink.checksDue([result.rec.id], creds.caller);
      return { created: result.created, instance: toWireInstance(result.rec, this.clock.now()), heartbeatToken: result.token };
    } catch (err) {
      this.metrics.reg.rejected.inc();
      throw err;
    } finally {
      if (reserved !== undefined) this.verificationSink.release(reserved);
    }
  }

  /**
   * A new instance, a takeover, a move to another endpoint and a retry after a failed or
   * unfinished check start pending in a service with verification; the owner re-registering a
   * verified instance at the same endpoint keeps it verified. A literal address the registry
   * must never connect to is refused here, before anything is written or any socket opened.
   */
  private verificationAtRegistration(svc: ServiceRecord, host: string, port: number, prev: InstanceRecord | undefined, owner: boolean, now: number): InstanceVerificationRecord {
    if (!svc.verification) return { ...UNCHECKED };
    if (net.isIP(host) !== 0) {
      const why = addressRefusal(host, this.opts.verification);
      if (why !== undefined) {
        this.metrics.verificationChecks.labels('address_refused').inc();
        throw Errors.verificationAddressRefused(host, why);
      }
    }
    if (prev && owner && prev.host === host && prev.port === port && prev.verification.state !== 'failed') {
      return prev.verification;
    }
    return { state: 'pending', reason: '', at: now };
  }

  /**
   * Writes a check's outcome as the registrant may see it (publicFailure), if it still applies:
   * the instance is still unverified at the endpoint checked, and its service still has the
   * secret and path checked with (otherwise a newer check is due and this one is dropped:
   * 'stale'). A failure repeating the outcome already recorded changes nothing ('unchanged'):
   * no event, no revision.
   */
  async completeVerification(id: string, checked: CheckedTarget, outcome: CheckOutcome): Promise<'written' | 'unchanged' | 'stale'> {
    return this.batcher.submit(async (tx) => {
      const cur = await tx.getInstance(id);
      if (!cur || cur.verification.state === 'verified' || cur.host !== checked.host || cur.port !== checked.port) return 'stale';
      const svc = await tx.getService(cur.namespace, cur.service);
      const setting = svc?.verification;
      if (!svc || !setting || setting.secret !== checked.secret || setting.path !== checked.path) return 'stale';
      const now = this.clock.now();
      const next: InstanceRecord = { ...cur, updatedAt: now };
      if (outcome.ok) {
        next.verification = { state: 'verified', reason: '', at: now };
        next.revision = await this.bump(tx, svc, 'instance.verified', id, { host: cur.host, port: cur.port });
      } else {
        // The registrant learns only whether an answer came; what came (a remote header, a raw
        // error) would make the check a scanner of whatever the registry can reach.
        const kind = publicFailure(outcome.kind);
        const reason = PUBLIC_REASONS[kind];
        if (cur.verification.state === 'failed' && cur.verification.reason === reason) return 'unchanged';
        next.verification = { state: 'failed', reason, at: now };
        next.revision = await this.bump(tx, svc, 'instance.verification_failed', id, { host: cur.host, port: cur.port, kind, reason });
      }
      await tx.putInstance(next, cur);
      return 'written';
    }, this.instanceHints(id));
  }

  getInstance(id: string): Instance {
    return toWireInstance(this.requireInstance(id), this.clock.now());
  }

  async patchInstance(id: string, input: unknown, creds: InstanceCredentials, ctx?: RequestContext): Promise<Instance> {
    const patch: InstancePatch = validateInstancePatch(input);
    const rec = await this.batcher.submit(async (tx) => {
      const cur = await this.ownedInstance(tx, id, creds);
      const svc = (await tx.getService(cur.namespace, cur.service))!;
      const now = this.clock.now();
      const next: InstanceRecord = { ...cur, ...patch, updatedAt: now };
      const events: Array<[EventType, Record<string, unknown>]> = [];
      if (patch.isolate !== undefined && patch.isolate !== cur.isolate) events.push([patch.isolate ? 'instance.isolated' : 'instance.unisolated', {}]);
      if (patch.metadata !== undefined && !sameMetadata(patch.metadata, cur.metadata)) events.push(['instance.metadata_changed', { metadata: patch.metadata }]);
      const other = (['weight', 'priority'] as const).filter((k) => patch[k] !== undefined && patch[k] !== cur[k]);
      if (other.length > 0) events.push(['instance.updated', Object.fromEntries(other.map((k) => [k, patch[k]]))]);
      if (events.length === 0) return cur;
      for (const [type, detail] of events) next.revision = await this.bump(tx, svc, type, id, detail);
      await tx.putInstance(next, cur);
      return next;
    }, this.instanceHints(id), ctx);
    return toWireInstance(rec, this.clock.now());
  }

  async deregister(id: string, creds: InstanceCredentials, ctx?: RequestContext): Promise<void> {
    await this.batcher.submit(async (tx) => {
      const cur = await this.ownedInstance(tx, id, creds);
      await tx.deleteInstance(id);
      const svc = (await tx.getService(cur.namespace, cur.service))!;
      await this.bump(tx, svc, 'instance.deregistered', id, { host: cur.host, port: cur.port });
    }, this.instanceHints(id), ctx);
  }

  /**
   * A heartbeat touches memory only; the store sees it in the periodic flush. A heartbeat that
   * brings an unhealthy instance back waits until that transition is committed. It counts from
   * when it arrived (`ctx`), and one whose client has gone or that waited past its deadline (a
   * paused process) is dropped with DEADLINE_EXCEEDED: it proves nothing about the instance now.
   */
  async heartbeat(id: string, token: string | undefined, writer?: ServiceWriter, ctx?: RequestContext): Promise<void> {
    let rec = this.index.instances.get(id);
    try {
      if (!rec && this.indexMiss) rec = await this.fromStore(id, this.indexMiss);
      if (!rec) throw this.missingInstance(id);
      checkOwner(rec, token, writer);
      if (ctx) checkContext(ctx);
    } catch (err) {
      this.metrics.hb.rejected.inc();
      throw err;
    }
    const at = ctx ? this.clock.now() - Math.round(performance.now() - ctx.receivedAt) : this.clock.now();
    this.index.noteHeartbeat(id, at);
    this.heartbeatSink(id, at);
    this.metrics.hb.ok.inc();
    if (!rec.healthy) await this.setHealth(id, true, 'heartbeat resumed', undefined, ctx);
  }

  /**
   * A result per item, in order; a missing token fails its item as a single heartbeat's would.
   * A batch over the limit is refused whole (INVALID_ARGUMENT on `heartbeats`), nothing applied.
   */
  async heartbeatBatch(items: ReadonlyArray<Omit<HeartbeatItem, 'token'> & { token: string | undefined }>, writer?: ServiceWriter, ctx?: RequestContext): Promise<HeartbeatBatchResponse> {
    checkHeartbeatBatchSize('heartbeats', items.length);
    const results = await Promise.all(items.map(async (item): Promise<HeartbeatBatchResponse['results'][number]> => {
      try {
        await this.heartbeat(item.id, item.token, writer, ctx);
        return { id: item.id, ok: true };
      } catch (err) {
        const e = err instanceof MusterError ? err : Errors.internal(err);
        return { id: item.id, ok: false, error: e.toJSON().error };
      }
    }));
    return { results };
  }

  /**
   * Health transitions, decided by the health checker. Re-checked inside the transaction, so a
   * heartbeat that arrived meanwhile wins over an expiry.
   */
  async setHealth(id: string, healthy: boolean, reason: string, expectedHeartbeat?: number, ctx?: RequestContext): Promise<boolean> {
    return this.batcher.submit(async (tx) => {
      const cur = await tx.getInstance(id);
      const live = this.index.instances.get(id);
      if (!cur || cur.healthy === healthy) return false;
      if (!healthy && live && expectedHeartbeat !== undefined && live.lastHeartbeat !== expectedHeartbeat) return false;
      const now = this.clock.now();
      const svc = (await tx.getService(cur.namespace, cur.service))!;
      const lastHeartbeat = Math.max(cur.lastHeartbeat, live?.lastHeartbeat ?? 0);
      const next: InstanceRecord = { ...cur, healthy, healthChangedAt: now, updatedAt: now, lastHeartbeat };
      next.revision = await this.bump(tx, svc, healthy ? 'instance.healthy' : 'instance.unhealthy', id, {
        reason, lastHeartbeatAgeMs: now - lastHeartbeat,
      });
      await tx.putInstance(next, cur);
      this.metrics.healthTransitions.labels(healthy ? 'healthy' : 'unhealthy').inc();
      return true;
    }, this.instanceHints(id), ctx);
  }

  /** Removes an instance that stayed unhealthy past the cleanup delay. */
  async cleanup(id: string, unhealthySince: number): Promise<boolean> {
    return this.batcher.submit(async (tx) => {
      const cur = await tx.getInstance(id);
      if (!cur || cur.healthy || cur.healthChangedAt !== unhealthySince) return false;
      await tx.deleteInstance(id);
      const svc = (await tx.getService(cur.namespace, cur.service))!;
      await this.bump(tx, svc, 'instance.removed', id, { reason: 'unhealthy past cleanupAfter', unhealthyForMs: this.clock.now() - cur.healthChangedAt });
      return true;
    }, this.instanceHints(id));
  }

  /** Writes the given instances' in-memory lastHeartbeat to the store in one batched write. */
  async flushHeartbeats(ids: Iterable<string>): Promise<number> {
    const beats: Array<{ id: string; lastHeartbeat: number }> = [];
    for (const id of ids) {
      const rec = this.index.instances.get(id);
      if (rec) beats.push({ id, lastHeartbeat: rec.lastHeartbeat });
    }
    if (beats.length > 0) await this.batcher.submit((tx) => tx.updateHeartbeats(beats));
    return beats.length;
  }

  // ---- discovery and events ---------------------------------------------------------------

  resolveService(namespace: string, service: string): ServiceEntry {
    return this.requireService(namespace, service);
  }

  /** What a watch with allowMissing sends for a service that does not exist: empty, at revision 0. */
  static missingAnswer(namespace: string, service: string): DiscoverResponse {
    return { namespace, service, revision: 0, instances: [] };
  }

  /**
   * The service a watch follows. With `allowMissing`, a service its namespace does not have (yet,
   * or any more) is undefined rather than NOT_FOUND: the watcher gets it as empty until it exists.
   */
  watchedService(namespace: string, service: string, allowMissing: boolean): ServiceEntry | undefined {
    if (!allowMissing) return this.requireService(namespace, service);
    this.requireNamespace(namespace);
    checkName('service', service);
    return this.index.service(namespace, service);
  }

  /** The discovery answer as bytes: the pre-serialized one for the default filter. */
  answerBytes(entry: ServiceEntry, filter: DiscoverFilter): Buffer {
    const now = this.clock.now();
    if (isDefaultFilter(filter)) {
      this.metrics.disc.cached.inc();
      return this.index.defaultAnswer(entry, now);
    }
    this.metrics.disc.filtered.inc();
    return Buffer.from(JSON.stringify(this.index.answer(entry, filter, now)));
  }

  /** The discovery answer as an object, for adapters that encode it themselves. */
  answer(entry: ServiceEntry, filter: DiscoverFilter): DiscoverResponse {
    this.metrics.disc.filtered.inc();
    return this.index.answer(entry, filter, this.clock.now());
  }

  async listEvents(filter: EventFilter): Promise<RegistryEvent[]> {
    return this.store.listEvents(filter);
  }

  async pruneEvents(keep: number, maxAgeMs: number): Promise<number> {
    return this.batcher.submit((tx) => tx.pruneEvents(keep, this.clock.now() - maxAgeMs));
  }

  // ---- helpers ----------------------------------------------------------------------------

  /** Healthy now, judged by heartbeats in memory (the store's copy lags behind). */
  private isAlive(stored: InstanceRecord): boolean {
    const live = this.index.instances.get(stored.id) ?? stored;
    return live.healthy && this.clock.now() - live.lastHeartbeat <= MISSED_HEARTBEATS * live.ttl * 1000;
  }

  /**
   * What a registration reads. For a new instance of a service the index holds (a fleet
   * starting: the common case), the store may take the index's namespace and service and the
   * instance's absence instead of reading them: its commit fails, and the write runs again
   * reading, where another node changed them meanwhile.
   */
  private registrationHints(namespace: string, service: string, ids: string[]): TxHints {
    const ns = this.index.namespaces.get(namespace);
    const svc = this.index.service(namespace, service)?.rec;
    const indexed = ns && svc && !ids.some((id) => this.index.instances.has(id)) ? { namespaces: [ns], services: [svc], absentInstances: ids } : undefined;
    return { namespaces: [namespace], services: [[namespace, service]], instances: ids, indexed };
  }

  /**
   * An instance this node has not indexed yet (registered through another node a moment ago),
   * brought in from the store. A store that cannot answer says nothing about the instance: that
   * is UNAVAILABLE, never NOT_FOUND, which would make its owner register it again.
   */
  private async fromStore(id: string, find: (id: string) => Promise<boolean>): Promise<InstanceRecord | undefined> {
    let found: boolean;
    try {
      found = await find(id);
    } catch (err) {
      throw Errors.instanceLookupFailed(id, err);
    }
    return found ? this.index.instances.get(id) : undefined;
  }

  /** What a write to an instance reads: the instance and, as far as the index knows, its service. */
  private instanceHints(id: string): TxHints {
    const rec = this.index.instances.get(id);
    return { instances: [id], services: rec ? [[rec.namespace, rec.service]] : [] };
  }

  private async ownedInstance(tx: StoreTx, id: string, creds: InstanceCredentials): Promise<InstanceRecord> {
    const cur = await tx.getInstance(id);
    if (!cur) throw this.missingInstance(id);
    checkOwner(cur, creds.instanceToken, creds.writer);
    return cur;
  }

  /** Appends the event and moves the service's revision to it; answers the new revision. */
  private async bump(tx: StoreTx, svc: ServiceRecord, type: EventType, instanceId: string | undefined, detail: Record<string, unknown>): Promise<number> {
    const now = this.clock.now();
    const event = { type, namespace: svc.namespace, service: svc.name, at: now, detail } as Parameters<StoreTx['appendEvent']>[0];
    if (instanceId !== undefined) event.instanceId = instanceId;
    const revision = await tx.appendEvent(event);
    svc.revision = revision;
    svc.updatedAt = now;
    await tx.putService(svc);
    return revision;
  }

  private async insertService(
    tx: StoreTx, namespace: string, name: string, comment: string, metadata: Record<string, string>, verification: ServiceVerificationSetting | null,
  ): Promise<ServiceRecord> {
    const now = this.clock.now();
    const rec: ServiceRecord = { namespace, name, comment, metadata, revision: 0, createdAt: now, updatedAt: now, verification };
    await this.bump(tx, rec, 'service.created', undefined, verification ? { verification: { enabled: true, path: verification.path } } : {});
    return rec;
  }

  private async autoCreateService(tx: StoreTx, namespace: string, service: string): Promise<ServiceRecord> {
    if (!this.opts.autoCreateService) throw Errors.autoCreateOff(namespace, service);
    return this.insertService(tx, namespace, service, '', {}, null);
  }

  private requireNamespace(namespace: string): void {
    checkName('namespace', namespace);
    if (!this.index.namespaces.has(namespace)) throw Errors.namespaceNotFound(namespace);
  }

  private requireService(namespace: string, name: string): ServiceEntry {
    this.requireNamespace(namespace);
    checkName('service', name);
    const entry = this.index.service(namespace, name);
    if (!entry) throw Errors.serviceNotFound(namespace, name);
    return entry;
  }

  private requireInstance(id: string): InstanceRecord {
    checkName('id', id);
    const rec = this.index.instances.get(id);
    if (!rec) throw Errors.instanceNotFound(id);
    return rec;
  }

  /**
   * An id that cannot exist is a caller's mistake, not a forgotten instance: NOT_FOUND would tell
   * it to register again. Checked only on a miss, off the heartbeat's hot path.
   */
  private missingInstance(id: string): MusterError {
    checkName('id', id);
    return Errors.instanceNotFound(id);
  }

  private missingService(namespace: string, name: string): MusterError {
    return this.index.namespaces.has(namespace) ? Errors.serviceNotFound(namespace, name) : Errors.namespaceNotFound(namespace);
  }

  private wireService(e: ServiceEntry): Service {
    let healthy = 0, isolated = 0, pending = 0, failed = 0;
    for (const i of e.instances.values()) {
      if (i.healthy) healthy++;
      if (i.isolate) isolated++;
      if (i.verification.state === 'pending') pending++;
      else if (i.verification.state === 'failed') failed++;
    }
    return toWireService(e.rec, { instances: e.instances.size, healthy, isolated, pending, failed });
  }
}

/** The holder of the instance's heartbeatToken, or a caller with write on its service. */
function checkOwner(rec: InstanceRecord, token: string | undefined, writer: ServiceWriter | undefined): void {
  if (token !== undefined && tokenMatches(token, rec.tokenHash)) return;
  if (writer?.(rec.namespace, rec.service)) return;
  if (token !== undefined) throw Errors.tokenWrong(rec.id);
  // An access token that is not enough is a refusal (403), not a missing credential (401).
  throw writer ? Errors.noWriteRight(rec.namespace, rec.service) : Errors.tokenMissing();
}

/**
 * The instance a registration is about, by the key it names (its `id`, or the id derived from
 * its endpoint). An id is never shared between services, and no service can make another's
 * registration fail by taking an id first: the key names an instance of this service if one has
 * it, else `scoped`, the key's id scoped to this service (scopedInstanceId), which only this
 * service can ever reach. A new instance takes the key itself only when nobody
 * holds it and it cannot stand for another endpoint's derived id: a caller-chosen id shaped like a
 * derived one (40 hex digits) that is not this endpoint's gets the scoped id instead, so nobody
 * can take the id another service's endpoint will derive. Re-registering with the same key finds
 * the same instance either way.
 */
async function registrationTarget(
  tx: StoreTx, namespace: string, service: string, key: string, scoped: string, keyIsThisEndpoint: boolean,
): Promise<{ id: string; prev: InstanceRecord | undefined }> {
  const atKey = await tx.getInstance(key);
  if (atKey && atKey.namespace === namespace && atKey.service === service) return { id: key, prev: atKey };
  const atScoped = await tx.getInstance(scoped);
  // Only data written before ids were scoped can hold a scoped id in another service.
  if (atScoped && (atScoped.namespace !== namespace || atScoped.service !== service)) throw Errors.instanceIdTaken(scoped);
  if (atScoped || atKey || (!keyIsThisEndpoint && looksDerived(key))) return { id: scoped, prev: atScoped };
  return { id: key, prev: undefined };
}

/** How a PATCH moved a service's verification. */
function verificationTurn(before: ServiceVerificationSetting | null, after: ServiceVerificationSetting | null): 'same' | 'enabled' | 'disabled' | 'changed' {
  if (!before) return after ? 'enabled' : 'same';
  if (!after) return 'disabled';
  return before.secret === after.secret && before.path === after.path ? 'same' : 'changed';
}

function changedFields(a: InstanceRecord, b: InstanceRecord): string[] {
  const out: string[] = [];
  for (const k of ['host', 'port', 'protocol', 'version', 'weight', 'priority', 'ttl', 'isolate', 'healthy'] as const) if (a[k] !== b[k]) out.push(k);
  if (!sameMetadata(a.metadata, b.metadata)) out.push('metadata');
  if (!sameLocation(a.location, b.location)) out.push('location');
  if (a.tokenHash !== b.tokenHash) out.push('owner');
  if (a.verification.state !== b.verification.state) out.push('verification');
  return out;
}
