import type { Instance } from '@muster/api';
import { MusterError } from '@muster/api';
import type { NamingService } from '../../naming/naming-service.js';
import { appOfService, EUREKA_NAMESPACE, eurekaIdOf } from './eureka-names.js';
import {
  hashCodeOf,
  toEurekaInstance,
  type ActionType,
  type EurekaApplication,
  type EurekaApplications,
  type EurekaInstance,
} from './eureka-wire.js';

/** How far back a delta reaches: Eureka's retentionTimeInMSInDeltaQueue (3 minutes). */
export const DELTA_WINDOW_MS = 180_000;
/** The most events a delta reads; a busier window is cut, and the hash code sends the client to a full fetch. */
const DELTA_MAX_EVENTS = 5000;

/** Everything of a service's instances that Eureka shows: healthy or not, isolated or not (as its status). */
const ALL = { status: 'all', isolated: 'all' } as const;

/** Which services of the namespace a caller may read; undefined: all. */
export type Visible = ((service: string) => boolean) | undefined;

/** One app: its service's instances, every one with its status. */
export function applicationOf(naming: NamingService, service: string): EurekaApplication {
  const entry = naming.resolveService(EUREKA_NAMESPACE, service);
  // The answer says which instances are discovered (verified ones); the instance reads add the
  // timestamps a lease shows.
  const instances = naming.answer(entry, ALL).instances;
  return { name: appOfService(service), instance: instances.map((i) => toEurekaInstance(naming.getInstance(i.id))) };
}

/** Every app of the namespace with at least one instance, in name order. */
function applications(naming: NamingService, visible: Visible): EurekaApplication[] {
  const { services } = naming.listServices(EUREKA_NAMESPACE, {
    offset: 0,
    limit: Number.MAX_SAFE_INTEGER,
    ...(visible ? { visible } : {}),
  });
  const apps: EurekaApplication[] = [];
  for (const s of services) {
    try {
      const app = applicationOf(naming, s.name);
      if (app.instance.length > 0) apps.push(app);
    } catch (err) {
      // A service removed between the listing and its read is simply not there any more.
      if (!(err instanceof MusterError && err.code === 'NOT_FOUND')) throw err;
    }
  }
  return apps;
}

/** The newest revision among the namespace's services: the registry's version, for versions__delta. */
function versionOf(naming: NamingService): number {
  const { services } = naming.listServices(EUREKA_NAMESPACE, { offset: 0, limit: Number.MAX_SAFE_INTEGER });
  return services.reduce((max, s) => Math.max(max, s.revision), 0);
}

/** A full fetch: every app, the registry's hash code and version. */
export function fullRegistry(naming: NamingService, visible: Visible): EurekaApplications {
  const application = applications(naming, visible);
  return { versions__delta: String(versionOf(naming)), apps__hashcode: hashCodeOf(application), application };
}

/**
 * A delta: the instances that changed within DELTA_WINDOW_MS, read from Muster's event log (the
 * change sequence), each once with what last happened to it; an instance that no longer exists is
 * DELETED. Its hash code is the full registry's, as Eureka's is: a client whose registry, with the
 * delta applied, hashes otherwise fetches the whole registry again.
 */
export async function delta(naming: NamingService, visible: Visible, now: number): Promise<EurekaApplications> {
  const events = await naming.listEvents({
    namespace: EUREKA_NAMESPACE,
    since: now - DELTA_WINDOW_MS,
    limit: DELTA_MAX_EVENTS,
  });
  const changed = new Map<string, { service: string; added: boolean; host?: unknown; port?: unknown }>();
  for (const e of events) {
    if (e.instanceId === undefined || e.service === undefined || (visible && !visible(e.service))) continue;
    const prev = changed.get(e.instanceId);
    changed.set(e.instanceId, {
      service: e.service,
      added: (prev?.added ?? false) || e.type === 'instance.registered',
      host: e.detail['host'] ?? prev?.host,
      port: e.detail['port'] ?? prev?.port,
    });
  }
  const byApp = new Map<string, EurekaInstance[]>();
  for (const [id, c] of changed) {
    let current: Instance | undefined;
    try {
      current = naming.getInstance(id);
    } catch (err) {
      if (!(err instanceof MusterError && err.code === 'NOT_FOUND')) throw err;
    }
    const action: ActionType = current === undefined ? 'DELETED' : c.added ? 'ADDED' : 'MODIFIED';
    const shown = current ? toEurekaInstance(current, action) : deleted(id, c.service, c.host, c.port);
    const app = appOfService(c.service);
    byApp.set(app, [...(byApp.get(app) ?? []), shown]);
  }
  const full = fullRegistry(naming, visible);
  return {
    versions__delta: full.versions__delta,
    apps__hashcode: full.apps__hashcode,
    application: [...byApp].map(([name, instance]) => ({ name, instance })),
  };
}

/** An instance that is gone, as far as its events tell: enough for a client to drop it from its cache. */
function deleted(id: string, service: string, host: unknown, port: unknown): EurekaInstance {
  const at = new Date(0).toISOString();
  const gone: Instance = {
    id,
    namespace: EUREKA_NAMESPACE,
    service,
    host: typeof host === 'string' ? host : '',
    port: typeof port === 'number' ? port : 0,
    protocol: 'http',
    version: '',
    weight: 0,
    priority: 0,
    metadata: {},
    location: {},
    healthCheck: { type: 'heartbeat', ttl: 30 },
    healthy: false,
    isolate: false,
    lastHeartbeat: at,
    lastHeartbeatAgeMs: 0,
    revision: 0,
    verification: { state: 'verified' },
    createdAt: at,
    updatedAt: at,
  };
  return { ...toEurekaInstance(gone, 'DELETED'), instanceId: eurekaIdOf(gone) };
}
