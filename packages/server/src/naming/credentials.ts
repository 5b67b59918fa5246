import { Errors } from '../errors.js';
import type { InstanceRecord } from '../model/records.js';
import { tokenMatches } from './identity.js';

/** Whether a caller may act on any instance of a service: an access token's write right, from the guard. */
export type ServiceWriter = (namespace: string, service: string) => boolean;

/** What a caller brings to change an instance: its heartbeatToken, or a write right on its service. */
export interface InstanceCredentials {
  instanceToken?: string | undefined;
  writer?: ServiceWriter | undefined;
  /** Only a re-registration by the instance's owner is allowed (auth.clients required, no access token). */
  ownerOnly?: boolean;
  /** May change an instance's isolation: an operator's decision (the guard's mayIsolate). */
  mayIsolate?: boolean;
  /** Who is asking, as the verification queue shares its checks out: an access token, or a client address. */
  caller?: string;
}

/** The holder of the instance's heartbeatToken, or a caller with write on its service. */
export function checkOwner(
  rec: Readonly<InstanceRecord>,
  token: string | undefined,
  writer: ServiceWriter | undefined,
): void {
  if (token !== undefined && tokenMatches(token, rec.tokenHash)) return;
  if (writer?.(rec.namespace, rec.service)) return;
  if (token !== undefined) throw Errors.tokenWrong(rec.id);
  // An access token that is not enough is a refusal (403), not a missing credential (401).
  throw writer ? Errors.noWriteRight(rec.namespace, rec.service) : Errors.tokenMissing();
}
