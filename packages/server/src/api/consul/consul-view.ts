import { MusterError, type Instance } from '@muster/api';
import type { NamingService } from '../../naming/naming-service.js';
import { CONSUL_NAMESPACE as NS, defaultCheckId, META, META_PREFIX, ownedByConsul, tagsOf } from './consul-names.js';

/** The node every instance shows on: Muster is one agent, in one datacenter. */
export const NODE = 'muster';
export const DATACENTER = 'dc1';

/** Everything of a service's instances: healthy or not, isolated (in maintenance) or not. */
const ALL = { status: 'all', isolated: 'all' } as const;

/** Which services of the namespace a caller may read; undefined: all. */
export type Visible = ((service: string) => boolean) | undefined;

/** The user's metadata: Muster's own keys of the adapter are not the client's Meta. */
function metaOf(i: Instance): Record<string, string> {
  return Object.fromEntries(Object.entries(i.metadata).filter(([k]) => !k.startsWith(META_PREFIX)));
}

/** The id a Consul client knows the instance by. */
const idOf = (i: Instance): string => i.metadata[META.id] ?? i.id;

export function agentService(i: Instance) {
  return {
    ID: idOf(i),
    Service: i.service,
    Tags: tagsOf(i),
    Meta: metaOf(i),
    Address: i.host,
    Port: i.port,
    Weights: { Passing: i.weight, Warning: 1 },
    EnableTagOverride: false,
    Datacenter: DATACENTER,
  };
}

/** The check a client passes: the TTL check it registered, or the service's own check (every instance heartbeats). */
export function checkIdOf(i: Instance): string {
  return i.metadata[META.checkId] ?? defaultCheckId(idOf(i));
}

/** An instance's checks, as Consul shows them: its TTL check, and maintenance when it is isolated. */
export function checksOf(i: Instance) {
  const check = {
    Node: NODE,
    CheckID: checkIdOf(i),
    Name: `Service '${i.service}' check`,
    Status: i.healthy ? 'passing' : 'critical',
    Notes: '',
    Output: i.healthy ? '' : 'TTL expired',
    ServiceID: idOf(i),
    ServiceName: i.service,
    ServiceTags: tagsOf(i),
    Type: 'ttl',
    Definition: {},
  };
  if (!i.isolate) return [check];
  const maintenance = {
    ...check,
    CheckID: `_service_maintenance:${idOf(i)}`,
    Name: 'Service Maintenance Mode',
    Status: 'critical',
    Notes: 'Maintenance mode is enabled for this service',
    Output: '',
    Type: 'maintenance',
  };
  return [check, maintenance];
}

/** Passing in Consul's sense: healthy and not in maintenance. */
export const isPassing = (i: Instance): boolean => i.healthy && !i.isolate;

/**
 * A service's instances, every one, and its revision; an unknown service has none, at revision
 * 0. Only discovered (verified) instances are shown, as on Muster's own discovery.
 */
export function instancesOf(naming: NamingService, service: string): { revision: number; instances: Instance[] } {
  try {
    const entry = naming.resolveService(NS, service);
    const answer = naming.answer(entry, ALL);
    return { revision: answer.revision, instances: answer.instances.map((d) => naming.getInstance(d.id)) };
  } catch (err) {
    if (err instanceof MusterError && err.code === 'NOT_FOUND') return { revision: 0, instances: [] };
    throw err;
  }
}

/** The names of the namespace's services the caller sees, in name order. */
export function serviceNames(naming: NamingService, visible: Visible): string[] {
  const { services } = naming.listServices(NS, {
    offset: 0,
    limit: Number.MAX_SAFE_INTEGER,
    ...(visible ? { visible } : {}),
  });
  return services.map((s) => s.name);
}

/** Every instance the Consul adapter registered: the agent's own services. */
export function agentInstances(naming: NamingService, visible: Visible): Instance[] {
  return serviceNames(naming, visible).flatMap((s) => instancesOf(naming, s).instances.filter(ownedByConsul));
}

export function healthEntry(i: Instance) {
  return {
    Node: { Node: NODE, Address: '127.0.0.1', Datacenter: DATACENTER },
    Service: agentService(i),
    Checks: checksOf(i),
  };
}

export function catalogEntry(i: Instance) {
  const s = agentService(i);
  return {
    Node: NODE,
    Address: '127.0.0.1',
    Datacenter: DATACENTER,
    ServiceID: s.ID,
    ServiceName: s.Service,
    ServiceTags: s.Tags,
    ServiceAddress: s.Address,
    ServicePort: s.Port,
    ServiceMeta: s.Meta,
    ServiceWeights: s.Weights,
    ServiceEnableTagOverride: false,
  };
}
