import type { RegistryEvent } from '@muster/api';
import type { EventFilter } from './store.js';

/** The EventFilter predicate, for stores that filter in process (memory). */
export function matchesEvent(e: RegistryEvent, f: EventFilter, atMs: number): boolean {
  if (f.namespace !== undefined && e.namespace !== f.namespace) return false;
  if (f.service !== undefined && e.service !== f.service) return false;
  if (f.instanceId !== undefined && e.instanceId !== f.instanceId) return false;
  if (f.types !== undefined && f.types.length > 0 && !f.types.includes(e.type)) return false;
  if (f.afterId !== undefined && e.id <= f.afterId) return false;
  if (f.since !== undefined && atMs < f.since) return false;
  return true;
}
