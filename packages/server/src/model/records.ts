import type { AccessToken, DiscoveredInstance, Instance, Location, Metadata, Namespace, Service } from '@muster/api';

/**
 * The stored forms of the data model. Each is the wire type with timestamps as epoch
 * milliseconds and the server-only fields added; `toWire*` are the only way out.
 */
export interface NamespaceRecord extends Omit<Namespace, 'createdAt' | 'updatedAt'> {
  createdAt: number;
  updatedAt: number;
}

export interface ServiceRecord extends Omit<Service, 'createdAt' | 'updatedAt' | 'instanceCount' | 'healthyInstanceCount'> {
  createdAt: number;
  updatedAt: number;
}

export interface InstanceRecord
  extends Omit<Instance, 'lastHeartbeat' | 'lastHeartbeatAgeMs' | 'createdAt' | 'updatedAt' | 'healthCheck'> {
  ttl: number;
  lastHeartbeat: number;
  /** When `healthy` last changed: cleanup counts from here. */
  healthChangedAt: number;
  createdAt: number;
  updatedAt: number;
  /** sha256 (hex) of the instance's heartbeatToken; the token itself is never stored. */
  tokenHash: string;
}

/** An access token as stored: the secret only as its sha256. */
export interface TokenRecord extends Omit<AccessToken, 'createdAt' | 'revokedAt'> {
  /** sha256 (hex) of the whole token string. */
  hash: string;
  createdAt: number;
  revokedAt?: number;
}

export const iso = (ms: number): string => new Date(ms).toISOString();

export function toWireNamespace(r: NamespaceRecord): Namespace {
  return { name: r.name, comment: r.comment, createdAt: iso(r.createdAt), updatedAt: iso(r.updatedAt) };
}

export function toWireService(r: ServiceRecord, counts: { instances: number; healthy: number }): Service {
  return {
    namespace: r.namespace,
    name: r.name,
    metadata: r.metadata,
    comment: r.comment,
    revision: r.revision,
    instanceCount: counts.instances,
    healthyInstanceCount: counts.healthy,
    createdAt: iso(r.createdAt),
    updatedAt: iso(r.updatedAt),
  };
}

export function toDiscoveredInstance(r: InstanceRecord, now: number): DiscoveredInstance {
  return {
    id: r.id,
    host: r.host,
    port: r.port,
    protocol: r.protocol,
    version: r.version,
    weight: r.weight,
    priority: r.priority,
    metadata: r.metadata,
    location: r.location,
    healthCheck: { type: 'heartbeat', ttl: r.ttl },
    healthy: r.healthy,
    isolate: r.isolate,
    lastHeartbeatAgeMs: Math.max(0, now - r.lastHeartbeat),
    revision: r.revision,
  };
}

export function toWireInstance(r: InstanceRecord, now: number): Instance {
  // Adding fields to the discovered shape is several times cheaper than an object spread here.
  const out = toDiscoveredInstance(r, now) as Instance;
  out.namespace = r.namespace;
  out.service = r.service;
  out.lastHeartbeat = iso(r.lastHeartbeat);
  out.createdAt = iso(r.createdAt);
  out.updatedAt = iso(r.updatedAt);
  return out;
}

export function sameLocation(a: Location, b: Location): boolean {
  return a.region === b.region && a.zone === b.zone && a.campus === b.campus;
}

export function sameMetadata(a: Metadata, b: Metadata): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && a[k] === b[k]);
}

export function toWireToken(r: TokenRecord): AccessToken {
  const out: AccessToken = { id: r.id, name: r.name, rules: [...r.rules], createdAt: iso(r.createdAt), createdBy: r.createdBy };
  if (r.revokedAt !== undefined) out.revokedAt = iso(r.revokedAt);
  return out;
}
