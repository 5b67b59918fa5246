import type { Metadata } from '@muster/api';
import { LIMITS } from '@muster/api';
import type { NamespaceRecord, ServiceRecord } from '../model/records.js';

/** The namespace and service tables' rows, the same in SQLite and MySQL. */
export interface NamespaceRowFields {
  name: string;
  comment: string;
  created_at: number;
  updated_at: number;
}
export interface ServiceRowFields {
  namespace: string;
  name: string;
  comment: string;
  metadata: string;
  revision: number;
  created_at: number;
  updated_at: number;
  verify_secret: string | null;
  verify_path: string | null;
}

/** Numbers pass through Number(): MySQL's driver may hand BIGINT columns over as strings. */
export function namespaceFromRow(r: NamespaceRowFields): NamespaceRecord {
  return { name: r.name, comment: r.comment, createdAt: Number(r.created_at), updatedAt: Number(r.updated_at) };
}

export function serviceFromRow(r: ServiceRowFields): ServiceRecord {
  return {
    namespace: r.namespace,
    name: r.name,
    comment: r.comment,
    metadata: JSON.parse(r.metadata) as Metadata,
    revision: Number(r.revision),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    verification:
      r.verify_secret === null
        ? null
        : { secret: r.verify_secret, path: r.verify_path ?? LIMITS.verificationPath.default },
  };
}
