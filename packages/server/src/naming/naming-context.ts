import type { EventType, Service } from '@muster/api';
import type { WriteBatcher } from '../batch/write-batcher.js';
import type { Clock } from '../clock.js';
import { Errors, type MusterError } from '../errors.js';
import { appendServiceEvent } from '../events/event-records.js';
import type { RegistryIndex, ServiceEntry } from '../index/registry-index.js';
import type { Metrics } from '../metrics/metrics.js';
import type { InstanceRecord, ServiceRecord } from '../model/records.js';
import { toWireService } from '../model/records.js';
import type { StoreTx, TxHints } from '../store/store.js';
import { checkOwner, type InstanceCredentials } from './credentials.js';
import { checkName } from './validate.js';

/**
 * What every resource of the naming service shares: the index it reads, the batcher it writes
 * through, the clock and metrics, and the lookups that turn a miss into the error the caller
 * should get.
 */
export class NamingContext {
  constructor(
    readonly index: RegistryIndex,
    readonly batcher: WriteBatcher,
    readonly clock: Clock,
    readonly metrics: Metrics,
  ) {}

  /** Appends the event and moves the service's revision to it; answers the new revision. */
  bump(
    tx: StoreTx,
    svc: ServiceRecord,
    type: EventType,
    instanceId: string | undefined,
    detail: Record<string, unknown>,
  ): Promise<number> {
    return appendServiceEvent(tx, svc, type, this.clock.now(), detail, instanceId);
  }

  /** What a write to an instance reads: the instance and, as far as the index knows, its service. */
  instanceHints(id: string): TxHints {
    const rec = this.index.instances.get(id);
    return { instances: [id], services: rec ? [[rec.namespace, rec.service]] : [] };
  }

  async ownedInstance(tx: StoreTx, id: string, creds: InstanceCredentials): Promise<InstanceRecord> {
    const cur = await tx.getInstance(id);
    if (!cur) throw this.missingInstance(id);
    checkOwner(cur, creds.instanceToken, creds.writer);
    return cur;
  }

  requireNamespace(namespace: string): void {
    checkName('namespace', namespace);
    if (!this.index.namespaces.has(namespace)) throw Errors.namespaceNotFound(namespace);
  }

  requireService(namespace: string, name: string): ServiceEntry {
    this.requireNamespace(namespace);
    checkName('service', name);
    const entry = this.index.service(namespace, name);
    if (!entry) throw Errors.serviceNotFound(namespace, name);
    return entry;
  }

  requireInstance(id: string): Readonly<InstanceRecord> {
    checkName('id', id);
    const rec = this.index.instances.get(id);
    if (!rec) throw Errors.instanceNotFound(id);
    return rec;
  }

  /**
   * An id that cannot exist is a caller's mistake, not a forgotten instance: NOT_FOUND would tell
   * it to register again. Checked only on a miss, off the heartbeat's hot path.
   */
  missingInstance(id: string): MusterError {
    checkName('id', id);
    return Errors.instanceNotFound(id);
  }

  missingService(namespace: string, name: string): MusterError {
    return this.index.namespaces.has(namespace)
      ? Errors.serviceNotFound(namespace, name)
      : Errors.namespaceNotFound(namespace);
  }

  wireService(e: ServiceEntry): Service {
    let healthy = 0,
      isolated = 0,
      pending = 0,
      failed = 0;
    for (const i of e.instances.values()) {
      if (i.healthy) healthy++;
      if (i.isolate) isolated++;
      if (i.verification.state === 'pending') pending++;
      else if (i.verification.state === 'failed') failed++;
    }
    return toWireService(e.rec, { instances: e.instances.size, healthy, isolated, pending, failed });
  }
}
