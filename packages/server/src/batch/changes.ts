import type { InstanceRecord, NamespaceRecord, ServiceRecord, TokenRecord } from '../model/records.js';

/** What a committed batch changed, in order: the registry index applies exactly these. */
export type Change =
  | { kind: 'namespace'; name: string; rec: NamespaceRecord | undefined }
  | { kind: 'service'; namespace: string; name: string; rec: ServiceRecord | undefined }
  | { kind: 'instance'; id: string; rec: InstanceRecord | undefined }
  | { kind: 'token'; rec: TokenRecord }
  /** A change number (event id) the batch took: a cluster node need not read its own back. */
  | { kind: 'event'; id: number };
