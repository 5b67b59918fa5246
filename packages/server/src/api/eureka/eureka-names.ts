import crypto from 'node:crypto';
import { LIMITS, MusterError, type Instance } from '@muster/api';
import { DEFAULT_NAMESPACE, type NamingService } from '../../naming/naming-service.js';
import { scopedInstanceId } from '../../naming/identity.js';

/** Every Eureka app is a Muster service of this namespace. */
export const EUREKA_NAMESPACE = DEFAULT_NAMESPACE;

/**
 * Metadata keys the adapter keeps on the instances it registers. `eureka.instanceId` also marks
 * an instance as owned by the Eureka adapter: only those are renewed, cancelled or changed
 * through it, so the Eureka API can never touch an instance registered through Muster's own.
 */
export const META = {
  instanceId: 'eureka.instanceId',
  hostName: 'eureka.hostName',
  status: 'eureka.status',
  vipAddress: 'eureka.vipAddress',
  secureVipAddress: 'eureka.secureVipAddress',
  securePort: 'eureka.securePort',
  homePageUrl: 'eureka.homePageUrl',
  statusPageUrl: 'eureka.statusPageUrl',
  healthCheckUrl: 'eureka.healthCheckUrl',
} as const;

export const META_PREFIX = 'eureka.';

const NAME = new RegExp(LIMITS.name.pattern);

const notFound = (err: unknown): boolean => err instanceof MusterError && err.code === 'NOT_FOUND';

/**
 * The Muster service of a Eureka app. Eureka clients upper-case app names, Muster keeps names as
 * given: the app is the `default` service whose name upper-cased is the app's; a lower-case name
 * is tried first (what a registration creates), then any service of another case.
 */
export function serviceOfApp(naming: NamingService, app: string): string | undefined {
  const lower = app.toLowerCase();
  const ns = naming.getNamespace(EUREKA_NAMESPACE);
  if (ns.serviceCount === 0) return undefined;
  try {
    return naming.getService(EUREKA_NAMESPACE, lower).name;
  } catch (err) {
    if (!notFound(err)) throw err;
    const upper = app.toUpperCase();
    const all = naming.listServices(EUREKA_NAMESPACE, { offset: 0, limit: Number.MAX_SAFE_INTEGER });
    return all.services.find((s) => s.name.toUpperCase() === upper)?.name;
  }
}

/** The app name a Muster service shows as: upper case, as Eureka clients key their caches. */
export const appOfService = (service: string): string => service.toUpperCase();

/**
 * The Muster id of a Eureka instanceId: the instanceId itself when it is a valid Muster id (so it
 * reads the same on both APIs), else a digest of app and instanceId. The instanceId itself is kept
 * in the instance's metadata (META.instanceId) either way.
 */
export function musterIdOf(service: string, instanceId: string): string {
  if (instanceId.length <= LIMITS.name.max && NAME.test(instanceId)) return instanceId;
  return `eureka-${crypto.hash('sha1', `${service}\u0000${instanceId}`, 'hex')}`;
}

/** The instance a Eureka `{APP}/{instanceId}` names, if any: under its own id, or scoped to its service. */
export function findInstance(naming: NamingService, service: string, instanceId: string): Instance | undefined {
  const key = musterIdOf(service, instanceId);
  for (const id of [key, scopedInstanceId(EUREKA_NAMESPACE, service, key)]) {
    try {
      const i = naming.getInstance(id);
      if (i.namespace === EUREKA_NAMESPACE && i.service === service) return i;
    } catch (err) {
      if (!notFound(err)) throw err;
    }
  }
  return undefined;
}

/** Whether the Eureka adapter registered this instance (and so may renew, cancel and change it). */
export const ownedByEureka = (i: Instance): boolean => i.metadata[META.instanceId] !== undefined;

/** The instanceId a Eureka client knows the instance by. */
export const eurekaIdOf = (i: Instance): string => i.metadata[META.instanceId] ?? i.id;
