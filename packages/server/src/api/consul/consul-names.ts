import { LIMITS, MusterError, type Instance } from '@muster/api';
import { DEFAULT_NAMESPACE, type NamingService } from '../../naming/naming-service.js';

/** Every Consul service is a Muster service of this namespace. */
export const CONSUL_NAMESPACE = DEFAULT_NAMESPACE;

/**
 * Metadata keys the adapter keeps on the instances it registers. `consul.id` also marks an
 * instance as owned by the Consul adapter: only those are checked in, deregistered or put in
 * maintenance through it, so Consul's API can never touch an instance registered elsewhere.
 */
export const META = {
  id: 'consul.id',
  /** The service's tags, as a JSON array of strings: tags may hold any character, commas too. */
  tags: 'consul.tags',
  /** The TTL check, as its client gave it: `10s`. */
  checkTtl: 'consul.check.ttl',
  checkId: 'consul.check.id',
  checkNotes: 'consul.check.output',
  deregisterAfter: 'consul.check.deregisterCriticalServiceAfter',
} as const;

export const META_PREFIX = 'consul.';

const NAME = new RegExp(LIMITS.name.pattern);

/** Whether a Consul name or ID can be a Muster name as it is: the adapter never renames. */
export const isMusterName = (s: string): boolean => s.length <= LIMITS.name.max && NAME.test(s);

/** The check id Consul gives a service's own check when its client names none. */
export const defaultCheckId = (serviceId: string): string => `service:${serviceId}`;

/** The instance a Consul service ID names, if any. */
export function findInstance(naming: NamingService, id: string): Instance | undefined {
  if (!isMusterName(id)) return undefined;
  try {
    const i = naming.getInstance(id);
    return i.namespace === CONSUL_NAMESPACE ? i : undefined;
  } catch (err) {
    if (err instanceof MusterError && err.code === 'NOT_FOUND') return undefined;
    throw err;
  }
}

/** Whether the Consul adapter registered this instance. */
export const ownedByConsul = (i: Instance): boolean => i.metadata[META.id] !== undefined;

/** The tags of an instance: those a Consul client gave, none for the others. */
export function tagsOf(i: Instance): string[] {
  const raw = i.metadata[META.tags];
  if (raw === undefined) return [];
  try {
    const v: unknown = JSON.parse(raw);
    return Array.isArray(v) ? v.filter((t): t is string => typeof t === 'string') : [];
  } catch {
    return [];
  }
}
