import type { EventType } from '@muster/api';
import type { ServiceRecord } from '../model/records.js';
import type { NewEvent, StoreTx } from '../store/store.js';

/** What a namespace's event says: only that it came or went. */
export function namespaceEvent(
  type: 'namespace.created' | 'namespace.deleted',
  namespace: string,
  at: number,
): NewEvent {
  return { type, namespace, at, detail: {} };
}

/** An event about a service, or about one of its instances when `instanceId` is given. */
export function serviceEvent(
  type: EventType,
  svc: { namespace: string; name: string },
  at: number,
  detail: Record<string, unknown>,
  instanceId?: string,
): NewEvent {
  const event: NewEvent = { type, namespace: svc.namespace, service: svc.name, at, detail };
  if (instanceId !== undefined) event.instanceId = instanceId;
  return event;
}

/**
 * Appends the event and moves the service's revision to it, in the same transaction: a service's
 * revision is the number of the last event about it, which is what lets a watcher ask "changed
 * since R?" and the change log be followed by number. Answers the new revision.
 */
export async function appendServiceEvent(
  tx: StoreTx,
  svc: ServiceRecord,
  type: EventType,
  at: number,
  detail: Record<string, unknown>,
  instanceId?: string,
): Promise<number> {
  const revision = await tx.appendEvent(
    serviceEvent(type, { namespace: svc.namespace, name: svc.name }, at, detail, instanceId),
  );
  svc.revision = revision;
  svc.updatedAt = at;
  await tx.putService(svc);
  return revision;
}
