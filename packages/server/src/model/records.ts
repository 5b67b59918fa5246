import type {
  AccessToken,
  DiscoveredInstance,
  Instance,
  InstanceVerification,
  Location,
  Metadata,
  Namespace,
  Service,
  VerificationState,
} from '@muster/api';

/**
 * The stored forms of the data model. Each is the wire type with timestamps as epoch
 * milliseconds and the server-only fields added; `toWire*` are the only way out.
 */
export interface NamespaceRecord extends Omit<Namespace, 'createdAt' | 'updatedAt'> {
  createdAt: number;
  updatedAt: number;
}

export interface ServiceRecord extends Omit<
  Service,
  'createdAt' | 'updatedAt' | 'instanceCount' | 'healthyInstanceCount' | 'isolatedInstanceCount' | 'verification'
> {
  createdAt: number;
  updatedAt: number;
  /** Verified registration; null: off. The secret is kept as given (the check needs it), never answered. */
  verification: ServiceVerificationSetting | null;
}

export interface ServiceVerificationSetting {
  secret: string;
  path: string;
}

export interface InstanceVerificationRecord {
  state: VerificationState;
  /** '' unless failed. */
  reason: string;
  /** When the state last changed; 0 for an instance never checked because its service has no verification. */
  at: number;
}

/** What every instance of a service without verification has. */
export const UNCHECKED: Readonly<InstanceVerificationRecord> = Object.freeze({ state: 'verified', reason: '', at: 0 });

export interface InstanceRecord extends Omit<
  Instance,
  'lastHeartbeat' | 'lastHeartbeatAgeMs' | 'createdAt' | 'updatedAt' | 'healthCheck' | 'verification'
> {
  ttl: number;
  lastHeartbeat: number;
  /** When `healthy` last changed: cleanup counts from here. */
  healthChangedAt: number;
  createdAt: number;
  updatedAt: number;
  /** sha256 (hex) of the instance's heartbeatToken; the token itself is never stored. */
  tokenHash: string;
  verification: InstanceVerificationRecord;
}

/** An access token as stored: the secret only as its sha256. */
export interface TokenRecord extends Omit<AccessToken, 'createdAt' | 'revokedAt'> {
  /** sha256 (hex) of the whole token string. */
  hash: string;
  createdAt: number;
  revokedAt?: number;
}

let lastMs = NaN;
let lastIso = '';
/**
 * Epoch ms as ISO 8601. The last answer is remembered: the records of one batch share their
 * timestamps (created, updated, last heartbeat are all "now"), and formatting a Date was a
 * profiled hot spot of answering them.
 */
export function iso(ms: number): string {
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString();
    lastMs = ms;
  }
  return lastIso;
}

export function toWireNamespace(r: NamespaceRecord): Namespace {
  return { name: r.name, comment: r.comment, createdAt: iso(r.createdAt), updatedAt: iso(r.updatedAt) };
}

export interface ServiceCounts {
  instances: number;
  healthy: number;
  isolated: number;
  pending: number;
  failed: number;
}

export function toWireService(r: ServiceRecord, counts: ServiceCounts): Service {
  return {
    namespace: r.namespace,
    name: r.name,
    metadata: r.metadata,
    comment: r.comment,
    revision: r.revision,
    instanceCount: counts.instances,
    healthyInstanceCount: counts.healthy,
    isolatedInstanceCount: counts.isolated,
    verification: r.verification
      ? {
          enabled: true,
          path: r.verification.path,
          pendingInstanceCount: counts.pending,
          failedInstanceCount: counts.failed,
        }
      : { enabled: false },
    createdAt: iso(r.createdAt),
    updatedAt: iso(r.updatedAt),
  };
}

export function toWireVerification(v: InstanceVerificationRecord): InstanceVerification {
  const out: InstanceVerification = { state: v.state };
  if (v.reason !== '') out.reason = v.reason;
  if (v.at !== 0) out.at = iso(v.at);
  return out;
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
  out.verification = toWireVerification(r.verification);
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
  const out: AccessToken = {
    id: r.id,
    name: r.name,
    rules: [...r.rules],
    createdAt: iso(r.createdAt),
    createdBy: r.createdBy,
  };
  if (r.revokedAt !== undefined) out.revokedAt = iso(r.revokedAt);
  return out;
}
