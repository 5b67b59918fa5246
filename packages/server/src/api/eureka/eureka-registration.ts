import type { Metadata, RegisterRequest } from '@muster/api';
import { EurekaErrors } from './eureka-errors.js';
import { META, META_PREFIX } from './eureka-names.js';

/** Eureka's lease when the client names none: renewed every 30 s, expired after 90 s. */
export const DEFAULT_DURATION_S = 90;
/** Muster's ttl bounds (1..60 s): a lease of 3..180 s maps exactly, others are clamped. */
const TTL_MIN_S = 1;
const TTL_MAX_S = 60;

/** The status values a Eureka client reports. */
export const STATUSES = ['UP', 'DOWN', 'STARTING', 'OUT_OF_SERVICE', 'UNKNOWN'] as const;
export type EurekaStatus = (typeof STATUSES)[number];

export function isStatus(v: unknown): v is EurekaStatus {
  return typeof v === 'string' && (STATUSES as readonly string[]).includes(v);
}

/** A decoded Eureka registration: the client's instanceId and the Muster registration it stands for. */
export interface EurekaRegistration {
  instanceId: string;
  app: string;
  request: RegisterRequest;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function str(o: Obj, field: string, required: boolean): string | undefined {
  const v = o[field];
  if (v === undefined || v === null || v === '') {
    if (required) throw EurekaErrors.badField(field, 'a non-empty string');
    return undefined;
  }
  if (typeof v !== 'string') throw EurekaErrors.badField(field, 'a string');
  return v;
}

/**
 * A port as Eureka sends it: `{"$": 8080, "@enabled": "true"}` (JSON), `{"$": "8080", ...}` (XML:
 * all text) or a bare number. Undefined when absent or `@enabled` is false.
 */
function port(o: Obj, field: string): number | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  let raw: unknown = v;
  if (isObj(v)) {
    const enabled = v['@enabled'];
    if (enabled !== undefined && enabled !== 'true' && enabled !== 'false' && typeof enabled !== 'boolean')
      throw EurekaErrors.badField(`${field}.@enabled`, '"true" or "false"');
    if (enabled === 'false' || enabled === false) return undefined;
    raw = v['$'];
  }
  const n = typeof raw === 'string' && /^\d{1,5}$/.test(raw) ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535)
    throw EurekaErrors.badField(field, 'an integer in 1..65535, or {"$": port, "@enabled": "true"}');
  return n;
}

/** leaseInfo.durationInSecs, as a number or (XML) digits. */
function durationOf(instance: Obj): number {
  const lease = instance['leaseInfo'];
  if (lease === undefined || lease === null) return DEFAULT_DURATION_S;
  if (!isObj(lease)) throw EurekaErrors.badField('leaseInfo', 'an object');
  const raw = lease['durationInSecs'];
  if (raw === undefined) return DEFAULT_DURATION_S;
  const n = typeof raw === 'string' && /^\d{1,9}$/.test(raw) ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1)
    throw EurekaErrors.badField('leaseInfo.durationInSecs', 'a positive integer');
  return n;
}

/** Muster's ttl of a Eureka lease: 3 × ttl missed is the expiry, so ttl is a third of the duration. */
export function ttlOf(durationS: number): number {
  return Math.min(TTL_MAX_S, Math.max(TTL_MIN_S, Math.round(durationS / 3)));
}

/** The client's own metadata, string values only; Jackson's `@class` marker and keys of our own are dropped. */
function userMetadata(instance: Obj): Metadata {
  const m = instance['metadata'];
  if (m === undefined || m === null || m === '') return {};
  if (!isObj(m)) throw EurekaErrors.badField('metadata', 'an object of strings');
  const out: Metadata = {};
  for (const [k, v] of Object.entries(m)) {
    if (k.startsWith('@') || k.startsWith(META_PREFIX)) continue;
    if (typeof v !== 'string') throw EurekaErrors.badField(`metadata.${k}`, 'a string');
    out[k] = v;
  }
  return out;
}

/**
 * A Eureka registration body (`{"instance": {...}}`, JSON or XML decoded alike) as a Muster
 * registration. The instance's address is its ipAddr (what a client connects to), else its
 * hostName; what Muster has no field for is kept in metadata under `eureka.` keys.
 */
export function decodeRegistration(body: unknown): EurekaRegistration {
  if (!isObj(body)) throw EurekaErrors.badBody('expected an object {"instance": {...}}');
  const instance = body['instance'];
  if (!isObj(instance)) throw EurekaErrors.badBody('expected an object {"instance": {...}}');
  const hostName = str(instance, 'hostName', false);
  const ipAddr = str(instance, 'ipAddr', false);
  const host = ipAddr ?? hostName;
  if (host === undefined) throw EurekaErrors.badField('ipAddr', 'a non-empty string (or give hostName)');
  const app = str(instance, 'app', true)!;
  const instanceId = str(instance, 'instanceId', false) ?? hostName ?? host;
  const status = str(instance, 'status', false) ?? 'UP';
  if (!isStatus(status)) throw EurekaErrors.badField('status', `one of ${STATUSES.join(', ')}`);
  const plain = port(instance, 'port');
  const secure = port(instance, 'securePort');
  const p = plain ?? secure;
  if (p === undefined) throw EurekaErrors.badField('port', 'given and enabled (or securePort)');
  const metadata: Metadata = { ...userMetadata(instance), [META.instanceId]: instanceId, [META.status]: status };
  if (hostName !== undefined && hostName !== host) metadata[META.hostName] = hostName;
  if (secure !== undefined) metadata[META.securePort] = String(secure);
  for (const f of ['vipAddress', 'secureVipAddress', 'homePageUrl', 'statusPageUrl', 'healthCheckUrl'] as const) {
    const v = str(instance, f, false);
    if (v !== undefined) metadata[META[f]] = v;
  }
  return {
    instanceId,
    app,
    request: {
      host,
      port: p,
      protocol: plain === undefined ? 'https' : 'http',
      metadata,
      healthCheck: { type: 'heartbeat', ttl: ttlOf(durationOf(instance)) },
    },
  };
}
