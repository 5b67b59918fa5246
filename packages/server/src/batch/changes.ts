import type { InstanceRecord, NamespaceRecord, ServiceRecord, TokenRecord } from '../model/records.js';

/** What a committed batch changed, in order: the registry index applies exactly these. */
export type Change =
  | { kind: 'namespace'; name: string; rec: NamespaceRecord | undefined }
  | { kind: 'service'; namespace: string; name: string; rec: ServiceRecord | undefined }
  | { kind: 'instance'; id: string; rec: InstanceRecord | undefined }
  | { kind: 'token'; rec: TokenRecord };
