import type { Service } from '@muster/api';
import type { RequestContext } from '../batch/request-context.js';
import { Errors } from '../errors.js';
import { serviceEvent } from '../events/event-records.js';
import type { InstanceVerificationRecord, ServiceRecord, ServiceVerificationSetting } from '../model/records.js';
import { toWireService, UNCHECKED } from '../model/records.js';
import type { StoreTx } from '../store/store.js';
import type { NamingContext } from './naming-context.js';
import type { VerificationSink } from './naming-hooks.js';
import { checkName, validateServiceInput } from './validate.js';

export interface ServiceQuery {
  offset: number;
  limit: number;
  prefix?: string;
  /** Which services this caller may see (the guard's answer); the others are not counted either. */
  visible?: (service: string) => boolean;
}

/** Services: their settings (verification among them) and their removal with their instances. */
export class Services {
  constructor(
    private readonly ctx: NamingContext,
    private readonly verification: VerificationSink,
    private readonly autoCreate: boolean,
  ) {}

  list(namespace: string, q: ServiceQuery): { total: number; services: Service[] } {
    this.ctx.requireNamespace(namespace);
    let all = this.ctx.index.servicesOf(namespace);
    if (q.prefix) all = all.filter((e) => e.rec.name.startsWith(q.prefix!));
    if (q.visible) all = all.filter((e) => q.visible!(e.rec.name));
    return { total: all.length, services: all.slice(q.offset, q.offset + q.limit).map((e) => this.ctx.wireService(e)) };
  }

  get(namespace: string, name: string): Service {
    return this.ctx.wireService(this.ctx.requireService(namespace, name));
  }

  async create(namespace: string, input: unknown, rctx?: RequestContext): Promise<Service> {
    checkName('namespace', namespace);
    const v = validateServiceInput(input, true);
    const rec = await this.ctx.batcher.submit(
      async (tx) => {
        if (!(await tx.getNamespace(namespace))) throw Errors.namespaceNotFound(namespace);
        if (await tx.getService(namespace, v.name)) throw Errors.serviceExists(namespace, v.name);
        return this.insert(tx, namespace, v.name, v.comment ?? '', v.metadata ?? {}, v.verification ?? null);
      },
      { namespaces: [namespace], services: [[namespace, v.name]] },
      rctx,
    );
    return toWireService(rec, { instances: 0, healthy: 0, isolated: 0, pending: 0, failed: 0 });
  }

  async patch(namespace: string, name: string, input: unknown, rctx?: RequestContext): Promise<Service> {
    checkName('namespace', namespace);
    checkName('service', name);
    const v = validateServiceInput(input, false);
    const { svc: written, toCheck } = await this.ctx.batcher.submit(
      async (tx) => {
        const svc = await tx.getService(namespace, name);
        if (!svc) throw this.ctx.missingService(namespace, name);
        if (v.comment !== undefined) svc.comment = v.comment;
        if (v.metadata !== undefined) svc.metadata = v.metadata;
        const before = svc.verification;
        if (v.verification !== undefined) svc.verification = v.verification;
        const turn = verificationTurn(before, svc.verification);
        const detail: Record<string, unknown> = { comment: v.comment, metadata: v.metadata };
        if (turn !== 'same')
          detail['verification'] = svc.verification
            ? { [turn]: true, path: svc.verification.path }
            : { disabled: true };
        const revision = await this.ctx.bump(tx, svc, 'service.updated', undefined, detail);
        return { svc, toCheck: turn === 'same' ? [] : await this.retagInstances(tx, svc, turn, revision) };
      },
      { services: [[namespace, name]] },
      rctx,
    );
    if (toCheck.length > 0) this.verification.checksDue(toCheck);
    // The service as this write left it: a later write of the same batch may have changed (or
    // deleted) it in the index already. Its instance counts are the index's.
    const e = this.ctx.index.service(namespace, name);
    return this.ctx.wireService({ instances: new Map(), ...e, rec: written });
  }

  /** Refuses a service with instances unless `force`: then they go with it, each with its event. */
  async delete(namespace: string, name: string, force: boolean, rctx?: RequestContext): Promise<void> {
    checkName('namespace', namespace);
    checkName('service', name);
    await this.ctx.batcher.submit(
      async (tx) => {
        const svc = await tx.getService(namespace, name);
        if (!svc) throw this.ctx.missingService(namespace, name);
        const ids = await tx.listInstanceIds(namespace, name);
        if (ids.length > 0 && !force) throw Errors.serviceNotEmpty(namespace, name, ids.length);
        const now = this.ctx.clock.now();
        for (const id of ids) {
          await tx.deleteInstance(id);
          await tx.appendEvent(
            serviceEvent('instance.deregistered', { namespace, name }, now, { reason: 'service deleted' }, id),
          );
        }
        await tx.deleteService(namespace, name);
        await tx.appendEvent(
          serviceEvent('service.deleted', { namespace, name }, now, { instancesRemoved: ids.length }),
        );
      },
      { services: [[namespace, name]] },
      rctx,
    );
  }

  /** Inside a registration's write: the service it names, created unless autoCreateService is off. */
  async createForRegistration(tx: StoreTx, namespace: string, service: string): Promise<ServiceRecord> {
    if (!this.autoCreate) throw Errors.autoCreateOff(namespace, service);
    return this.insert(tx, namespace, service, '', {}, null);
  }

  private async insert(
    tx: StoreTx,
    namespace: string,
    name: string,
    comment: string,
    metadata: Record<string, string>,
    verification: ServiceVerificationSetting | null,
  ): Promise<ServiceRecord> {
    const now = this.ctx.clock.now();
    const rec: ServiceRecord = {
      namespace,
      name,
      comment,
      metadata,
      revision: 0,
      createdAt: now,
      updatedAt: now,
      verification,
    };
    await this.ctx.bump(
      tx,
      rec,
      'service.created',
      undefined,
      verification ? { verification: { enabled: true, path: verification.path } } : {},
    );
    return rec;
  }

  /**
   * Instances as a change of the service's verification leaves them, inside the same write.
   * Turned on: every instance is pending (a service with verification has no visible instance
   * that did not prove itself). Turned off: every instance is verified, as in any service
   * without it. Secret or path changed: the verified stay verified (a rotation must not take
   * the service down); the pending and failed are checked again under the new setting.
   * Answers the ids to check after the commit.
   */
  private async retagInstances(
    tx: StoreTx,
    svc: ServiceRecord,
    turn: 'enabled' | 'disabled' | 'changed',
    revision: number,
  ): Promise<string[]> {
    const now = this.ctx.clock.now();
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
}

/** How a PATCH moved a service's verification. */
function verificationTurn(
  before: ServiceVerificationSetting | null,
  after: ServiceVerificationSetting | null,
): 'same' | 'enabled' | 'disabled' | 'changed' {
  if (!before) return after ? 'enabled' : 'same';
  if (!after) return 'disabled';
  return before.secret === after.secret && before.path === after.path ? 'same' : 'changed';
}
