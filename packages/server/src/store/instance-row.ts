import type { Metadata, VerificationState } from '@muster/api';
import type { InstanceRecord } from '../model/records.js';

/** The instance table's row joined with its health check's ttl, the same in SQLite and MySQL. */
export interface InstanceRowFields {
  seq: number;
  id: string;
  namespace: string;
  service: string;
  host: string;
  port: number;
  protocol: string;
  version: string;
  weight: number;
  priority: number;
  region: string | null;
  zone: string | null;
  campus: string | null;
  healthy: number;
  isolate: number;
  last_heartbeat: number;
  health_changed_at: number;
  revision: number;
  created_at: number;
  updated_at: number;
  token_hash: string;
  verify_state: string;
  verify_reason: string;
  verify_at: number;
  ttl: number | null;
}

/** Numbers pass through Number(): MySQL's driver may hand BIGINT columns over as strings. */
export function instanceFromRow(r: InstanceRowFields, metadata: Metadata): InstanceRecord {
  const location: InstanceRecord['location'] = {};
  if (r.region !== null) location.region = r.region;
  if (r.zone !== null) location.zone = r.zone;
  if (r.campus !== null) location.campus = r.campus;
  return {
    id: r.id,
    namespace: r.namespace,
    service: r.service,
    host: r.host,
    port: Number(r.port),
    protocol: r.protocol,
    version: r.version,
    weight: Number(r.weight),
    priority: Number(r.priority),
    metadata,
    location,
    ttl: r.ttl == null ? 5 : Number(r.ttl),
    healthy: Number(r.healthy) === 1,
    isolate: Number(r.isolate) === 1,
    lastHeartbeat: Number(r.last_heartbeat),
    healthChangedAt: Number(r.health_changed_at),
    revision: Number(r.revision),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    tokenHash: r.token_hash,
    verification: { state: r.verify_state as VerificationState, reason: r.verify_reason, at: Number(r.verify_at) },
  };
}
