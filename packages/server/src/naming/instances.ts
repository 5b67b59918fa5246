import type { EventType, Instance, InstancePatch, RegisterResponse } from '@muster/api';
import { MISSED_HEARTBEATS } from '@muster/api';
import type { RequestContext } from '../batch/request-context.js';
import { Errors } from '../errors.js';
import type { InstanceRecord } from '../model/records.js';
import { sameLocation, sameMetadata, toWireInstance } from '../model/records.js';
import type { StoreTx, TxHints } from '../store/store.js';
import type { InstanceCredentials } from './credentials.js';
import { deriveInstanceId, hashToken, looksDerived, newToken, scopedInstanceId, tokenMatches } from './identity.js';
import type { NamingContext } from './naming-context.js';
import type { VerificationSink } from './naming-hooks.js';
import type { Services } from './services.js';
import type { Verification } from './verification.js';
import { checkName, validateInstancePatch, validateRegistration } from './validate.js';

/** Instances: registration (and who may take an existing id over), reads, patches, deregistration. */
export class Instances {
  constructor(
    private readonly ctx: NamingContext,
    private readonly services: Services,
    private readonly verification: Verification,
    private readonly checks: VerificationSink,
  ) {}

  /**
   * Registers an instance, or updates it when its id already exists (in this service: see
   * registrationTarget). An existing instance is updated only by the holder of its
   * heartbeatToken; without it, only an instance that is no longer healthy (its owner is gone)
   * can be taken over, and the takeover issues a new token.
   */
  async register(
    namespace: string,
    service: string,
    input: unknown,
    creds: InstanceCredentials = {},
    rctx?: RequestContext,
  ): Promise<RegisterResponse> {
    const { batcher, clock, metrics } = this.ctx;
    const presentedToken = creds.instanceToken;
    checkName('namespace', namespace);
    checkName('service', service);
    let v;
    try {
      v = validateRegistration(input);
    } catch (err) {
      metrics.reg.rejected.inc();
      throw err;
    }
    const derived = deriveInstanceId(namespace, service, v.host, v.port);
    const key = v.id ?? derived;
    const scoped = scopedInstanceId(namespace, service, key);
    // A place taken in the verification queue (once, however often the write runs), given back below.
    let reserved: string | undefined;
    try {
      const result = await batcher.submit(
        async (tx) => {
          if (!(await tx.getNamespace(namespace))) throw Errors.namespaceNotFound(namespace);
          const now = clock.now();
          const svc =
            (await tx.getService(namespace, service)) ??
            (await this.services.createForRegistration(tx, namespace, service));
          const { id, prev } = await registrationTarget(
            tx,
            namespace,
            service,
            key,
            scoped,
            v.id === undefined || v.id === derived,
          );
          // Only a proven owner keeps the token; a new instance or a takeover always gets a fresh
          // one, so a caller can never choose (or reuse another credential as) an instance's token.
          let token: string | undefined;
          if (prev) {
            // As on PATCH: the owner's registration keeps the isolation an operator set, or sets it with write.
            if (v.isolate !== undefined && v.isolate !== prev.isolate && !creds.mayIsolate)
              throw Errors.isolationNeedsAccessToken(id);
            if (presentedToken !== undefined && tokenMatches(presentedToken, prev.tokenHash)) token = presentedToken;
            else if (creds.ownerOnly) throw Errors.tokenWrong(id);
            // A write right on the service may take over a live instance; it gets a fresh token.
            else if (this.isAlive(prev) && !creds.writer?.(namespace, service))
              throw presentedToken === undefined ? Errors.instanceAlive(id) : Errors.tokenWrong(id);
            // Another host or port is another endpoint: who may not register a new instance may not
            // point this one elsewhere either, unless verification checks the new endpoint.
            if (creds.ownerOnly && !svc.verification && (prev.host !== v.host || prev.port !== v.port)) {
              throw Errors.moveNeedsWriteRight(id, prev.host !== v.host ? 'host' : 'port');
            }
          } else if (creds.ownerOnly)
            throw Errors.unauthenticated(
              'registering a new instance needs an access token with write on its service (auth.clients is required)',
            );
          const owner = token !== undefined;
          token ??= newToken();
          const rec: InstanceRecord = {
            id,
            namespace,
            service,
            host: v.host,
            port: v.port,
            protocol: v.protocol,
            version: v.version,
            weight: v.weight,
            priority: v.priority,
            metadata: v.metadata,
            location: v.location,
            ttl: v.ttl,
            healthy: true,
            isolate: v.isolate ?? prev?.isolate ?? false,
            lastHeartbeat: now,
            healthChangedAt: prev && prev.healthy ? prev.healthChangedAt : now,
            revision: prev?.revision ?? 0,
            createdAt: prev?.createdAt ?? now,
            updatedAt: now,
            tokenHash: hashToken(token),
            verification: this.verification.atRegistration(svc, v.host, v.port, prev, owner, now),
          };
          // A check that would wait behind too many of the same caller's is not taken on at all.
          if (
            rec.verification.state === 'pending' &&
            prev?.verification.state !== 'pending' &&
            creds.caller !== undefined &&
            reserved === undefined
          ) {
            if (!this.checks.reserve(creds.caller)) throw Errors.tooManyPendingChecks();
            reserved = creds.caller;
          }
          const changed = prev ? changedFields(prev, rec) : [];
          if (!prev) {
            const detail: Record<string, unknown> = { host: v.host, port: v.port };
            if (rec.verification.state === 'pending') detail['verification'] = 'pending';
            rec.revision = await this.ctx.bump(tx, svc, 'instance.registered', id, detail);
          } else if (changed.length > 0) {
            rec.revision = await this.ctx.bump(tx, svc, 'instance.updated', id, { changed, reRegistered: true });
          } else rec.updatedAt = prev.updatedAt;
          await tx.putInstance(rec, prev ?? null);
          return { created: !prev, rec, token };
        },
        this.registrationHints(namespace, service, [key, scoped]),
        rctx,
      );
      (result.created ? metrics.reg.created : metrics.reg.updated).inc();
      if (result.rec.verification.state === 'pending') this.checks.checksDue([result.rec.id], creds.caller);
      return {
        created: result.created,
        instance: toWireInstance(result.rec, clock.now()),
        heartbeatToken: result.token,
      };
    } catch (err) {
      metrics.reg.rejected.inc();
      throw err;
    } finally {
      if (reserved !== undefined) this.checks.release(reserved);
    }
  }

  get(id: string): Instance {
    return toWireInstance(this.ctx.requireInstance(id), this.ctx.clock.now());
  }

  /** Weight, priority, metadata and isolation; one event per kind of change, none when nothing changed. */
  async patch(id: string, input: unknown, creds: InstanceCredentials, rctx?: RequestContext): Promise<Instance> {
    const patch: InstancePatch = validateInstancePatch(input);
    const rec = await this.ctx.batcher.submit(
      async (tx) => {
        const cur = await this.ctx.ownedInstance(tx, id, creds);
        const svc = (await tx.getService(cur.namespace, cur.service))!;
        const now = this.ctx.clock.now();
        const next: InstanceRecord = { ...cur, ...patch, updatedAt: now };
        const events: Array<[EventType, Record<string, unknown>]> = [];
        if (patch.isolate !== undefined && patch.isolate !== cur.isolate)
          events.push([patch.isolate ? 'instance.isolated' : 'instance.unisolated', {}]);
        if (patch.metadata !== undefined && !sameMetadata(patch.metadata, cur.metadata))
          events.push(['instance.metadata_changed', { metadata: patch.metadata }]);
        const other = (['weight', 'priority'] as const).filter((k) => patch[k] !== undefined && patch[k] !== cur[k]);
        if (other.length > 0) events.push(['instance.updated', Object.fromEntries(other.map((k) => [k, patch[k]]))]);
        if (events.length === 0) return cur;
        for (const [type, detail] of events) next.revision = await this.ctx.bump(tx, svc, type, id, detail);
        await tx.putInstance(next, cur);
        return next;
      },
      this.ctx.instanceHints(id),
      rctx,
    );
    return toWireInstance(rec, this.ctx.clock.now());
  }

  async deregister(id: string, creds: InstanceCredentials, rctx?: RequestContext): Promise<void> {
    await this.ctx.batcher.submit(
      async (tx) => {
        const cur = await this.ctx.ownedInstance(tx, id, creds);
        await tx.deleteInstance(id);
        const svc = (await tx.getService(cur.namespace, cur.service))!;
        await this.ctx.bump(tx, svc, 'instance.deregistered', id, { host: cur.host, port: cur.port });
      },
      this.ctx.instanceHints(id),
      rctx,
    );
  }

  /** Healthy now, judged by heartbeats in memory (the store's copy lags behind). */
  private isAlive(stored: InstanceRecord): boolean {
    const live = this.ctx.index.instances.get(stored.id) ?? stored;
    return live.healthy && this.ctx.clock.now() - live.lastHeartbeat <= MISSED_HEARTBEATS * live.ttl * 1000;
  }

  /**
   * What a registration reads. For a new instance of a service the index holds (a fleet
   * starting: the common case), the store may take the index's namespace and service and the
   * instance's absence instead of reading them: its commit fails, and the write runs again
   * reading, where another node changed them meanwhile.
   */
  private registrationHints(namespace: string, service: string, ids: string[]): TxHints {
    const { index } = this.ctx;
    const ns = index.namespaces.get(namespace);
    const svc = index.service(namespace, service)?.rec;
    const indexed =
      ns && svc && !ids.some((id) => index.instances.has(id))
        ? { namespaces: [ns], services: [svc], absentInstances: ids }
        : undefined;
    return { namespaces: [namespace], services: [[namespace, service]], instances: ids, indexed };
  }
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
  tx: StoreTx,
  namespace: string,
  service: string,
  key: string,
  scoped: string,
  keyIsThisEndpoint: boolean,
): Promise<{ id: string; prev: InstanceRecord | undefined }> {
  const atKey = await tx.getInstance(key);
  if (atKey && atKey.namespace === namespace && atKey.service === service) return { id: key, prev: atKey };
  const atScoped = await tx.getInstance(scoped);
  // Only data written before ids were scoped can hold a scoped id in another service.
  if (atScoped && (atScoped.namespace !== namespace || atScoped.service !== service))
    throw Errors.instanceIdTaken(scoped);
  if (atScoped || atKey || (!keyIsThisEndpoint && looksDerived(key))) return { id: scoped, prev: atScoped };
  return { id: key, prev: undefined };
}

function changedFields(a: InstanceRecord, b: InstanceRecord): string[] {
  const out: string[] = [];
  for (const k of ['host', 'port', 'protocol', 'version', 'weight', 'priority', 'ttl', 'isolate', 'healthy'] as const)
    if (a[k] !== b[k]) out.push(k);
  if (!sameMetadata(a.metadata, b.metadata)) out.push('metadata');
  if (!sameLocation(a.location, b.location)) out.push('location');
  if (a.tokenHash !== b.tokenHash) out.push('owner');
  if (a.verification.state !== b.verification.state) out.push('verification');
  return out;
}
