import type { DiscoverFilter } from '@muster/api';
import { DEFAULT_NAMESPACE } from '../../naming/naming-service.js';
import { checkWaitMs, validateDiscoverFilter } from '../../naming/validate.js';

/**
 * Decoded request messages (camelCase, unset fields absent) and their translation into the
 * arguments HTTP passes to the naming service. Only shapes are handled here; every rule is the
 * naming service's.
 *
 * proto3 cannot tell a string or number without `optional` that was set to '' or 0 from one that
 * was not set, and encoders differ (protobuf.js sends an explicit '', Go's does not), so those
 * values count as "not given" everywhere: the answer cannot depend on the caller's library.
 */

type Msg<T> = { [K in keyof T]?: T[K] };

export type LocationMsg = Msg<{ region: string; zone: string; campus: string }>;
export type RegisterRequestMsg = Msg<{
  namespace: string;
  service: string;
  id: string;
  host: string;
  port: number;
  protocol: string;
  version: string;
  weight: number;
  priority: number;
  metadata: Record<string, string>;
  location: LocationMsg;
  healthCheck: Msg<{ type: string; ttl: number }>;
  isolate: boolean;
  heartbeatToken: string;
}>;
export type TokenRequestMsg = Msg<{ id: string; heartbeatToken: string }>;
export type HeartbeatBatchMsg = Msg<{ heartbeats: TokenRequestMsg[] }>;
export type DiscoverFilterMsg = Msg<{
  status: string;
  isolated: string;
  metadata: Record<string, string>;
  region: string;
  zone: string;
  campus: string;
}>;
type ServiceRequestMsg = Msg<{ namespace: string; service: string; revision: number; filter: DiscoverFilterMsg }>;
export type WatchRequestMsg = ServiceRequestMsg & Msg<{ allowMissing: boolean }>;
export type DiscoverRequestMsg = ServiceRequestMsg & Msg<{ waitMs: number }>;

/** '' is proto3's "not set" for a string without presence. */
export const given = (s: string | undefined): string | undefined => (s === '' ? undefined : s);

export const namespaceOf = (ns: string | undefined): string => given(ns) ?? DEFAULT_NAMESPACE;

/** Drops the members that hold proto3 defaults; undefined when nothing is left (an empty message is an absent one). */
function compact<T extends object>(o: T | undefined): Partial<T> | undefined {
  if (o === undefined) return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== '' && v !== undefined) out[k] = v;
  return Object.keys(out).length > 0 ? (out as Partial<T>) : undefined;
}

/** The registration body HTTP would have received: the request without its addressing and token. */
export function registrationBody(req: RegisterRequestMsg): Record<string, unknown> {
  const { namespace: _ns, service: _svc, heartbeatToken: _token, location, healthCheck, ...body } = req;
  // host and port have no presence: '' and 0 are "not given" (and answered as missing).
  if (body.host === '') delete body.host;
  if (body.port === 0) delete body.port;
  const out: Record<string, unknown> = body;
  const loc = compact(location);
  if (loc) out['location'] = loc;
  const hc = compact(healthCheck);
  if (hc) out['healthCheck'] = hc;
  return out;
}

export interface WatchParams {
  namespace: string;
  service: string;
  revision: number | undefined;
  filter: DiscoverFilter;
}

export function watchParams(req: WatchRequestMsg): WatchParams & { allowMissing: boolean } {
  return { ...serviceParams(req), allowMissing: req.allowMissing === true };
}

function serviceParams(req: ServiceRequestMsg): WatchParams {
  return {
    namespace: namespaceOf(req.namespace),
    service: req.service ?? '',
    revision: req.revision,
    filter: validateDiscoverFilter(compact(req.filter) ?? {}, 'filter.'),
  };
}

/** In the order HTTP checks them: the wait, the filter, then (by the caller) the service. */
export function discoverParams(req: DiscoverRequestMsg): WatchParams & { waitMs: number } {
  const waitMs = checkWaitMs('waitMs', req.waitMs ?? 0);
  return { ...serviceParams(req), waitMs };
}
