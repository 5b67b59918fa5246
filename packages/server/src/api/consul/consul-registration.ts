import type { Metadata, RegisterRequest } from '@muster/api';
import { parseGoDuration } from './consul-duration.js';
import { ConsulErrors } from './consul-errors.js';
import { defaultCheckId, isMusterName, META, META_PREFIX } from './consul-names.js';

/** Muster's ttl bounds (1..60 s); an instance is unhealthy after 3 × ttl without a heartbeat. */
const TTL_MIN_S = 1;
const TTL_MAX_S = 60;
/** A service without a TTL check still needs heartbeats on Muster: the longest ttl, 3 minutes to lapse. */
const NO_CHECK_TTL_S = TTL_MAX_S;

export const CHECK_STATUSES = ['passing', 'warning', 'critical'] as const;
export type CheckStatus = (typeof CHECK_STATUSES)[number];
export const isCheckStatus = (v: unknown): v is CheckStatus =>
  typeof v === 'string' && (CHECK_STATUSES as readonly string[]).includes(v);

/** A decoded `PUT /v1/agent/service/register`: the Consul ID and the Muster registration it stands for. */
export interface ConsulRegistration {
  id: string;
  service: string;
  request: RegisterRequest;
  /** The check's status at registration: critical (Consul's default for a TTL check) is unhealthy at once. */
  initialStatus: CheckStatus;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function str(o: Obj, field: string, name = field): string | undefined {
  const v = o[field];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw ConsulErrors.badField(name, 'a string');
  return v;
}

/** Muster's ttl of a Consul TTL: the check goes critical when the TTL passes, Muster after 3 × ttl. */
export function ttlOf(ttlMs: number): number {
  return Math.min(TTL_MAX_S, Math.max(TTL_MIN_S, Math.round(ttlMs / 3000)));
}

interface DecodedCheck {
  ttl: string;
  id: string | undefined;
  status: CheckStatus;
  deregisterAfter: string | undefined;
}

/** The one check Muster can keep: a TTL check. Active checks are refused, clearly. */
function decodeCheck(c: unknown, field: string): DecodedCheck | undefined {
  if (c === undefined || c === null) return undefined;
  if (!isObj(c)) throw ConsulErrors.badField(field, 'an object');
  for (const active of ['HTTP', 'TCP', 'GRPC', 'Args', 'Script', 'DockerContainerID', 'H2PING', 'UDP'])
    if (c[active] !== undefined && c[active] !== '' && c[active] !== null) throw ConsulErrors.activeCheck(active);
  const ttl = str(c, 'TTL', `${field}.TTL`);
  if (ttl === undefined) throw ConsulErrors.badField(`${field}.TTL`, 'given: only TTL checks are served');
  const ms = parseGoDuration(`${field}.TTL`, ttl);
  if (ms <= 0) throw ConsulErrors.badField(`${field}.TTL`, 'a positive duration');
  const deregisterAfter = str(c, 'DeregisterCriticalServiceAfter', `${field}.DeregisterCriticalServiceAfter`);
  if (deregisterAfter !== undefined) parseGoDuration(`${field}.DeregisterCriticalServiceAfter`, deregisterAfter);
  const status = str(c, 'Status', `${field}.Status`) ?? 'critical';
  if (!isCheckStatus(status)) throw ConsulErrors.badField(`${field}.Status`, 'passing, warning or critical');
  return { ttl, id: str(c, 'CheckID', `${field}.CheckID`) ?? str(c, 'ID', `${field}.ID`), status, deregisterAfter };
}

function metaOf(body: Obj): Metadata {
  const m = body['Meta'];
  if (m === undefined || m === null) return {};
  if (!isObj(m)) throw ConsulErrors.badField('Meta', 'an object of strings');
  const out: Metadata = {};
  for (const [k, v] of Object.entries(m)) {
    if (k.startsWith(META_PREFIX)) throw ConsulErrors.badField(`Meta.${k}`, `a key not starting with ${META_PREFIX}`);
    if (typeof v !== 'string') throw ConsulErrors.badField(`Meta.${k}`, 'a string');
    out[k] = v;
  }
  return out;
}

function tagsOf(body: Obj): string[] {
  const t = body['Tags'];
  if (t === undefined || t === null) return [];
  if (!Array.isArray(t) || !t.every((x) => typeof x === 'string'))
    throw ConsulErrors.badField('Tags', 'an array of strings');
  return t as string[];
}

/**
 * A Consul service registration as a Muster registration of the `default` namespace: Name is the
 * service, ID (Name when absent) the instance; tags and what Muster has no field for are kept in
 * metadata under `consul.` keys.
 */
export function decodeRegistration(body: unknown, clientAddress: string): ConsulRegistration {
  if (!isObj(body)) throw ConsulErrors.badBody('expected a JSON object');
  const name = str(body, 'Name');
  if (name === undefined) throw ConsulErrors.badField('Name', 'a non-empty string');
  if (!isMusterName(name)) throw ConsulErrors.badField('Name', 'a Muster service name (letters, digits, ., _, -)');
  const id = str(body, 'ID') ?? name;
  if (!isMusterName(id)) throw ConsulErrors.badField('ID', 'a Muster instance id (letters, digits, ., _, -)');
  const port = body['Port'];
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)
    throw ConsulErrors.badField('Port', 'an integer in 1..65535');
  const host = str(body, 'Address') ?? clientAddress;
  const checks = body['Checks'];
  if (checks !== undefined && checks !== null && (!Array.isArray(checks) || checks.length > 1))
    throw ConsulErrors.badField('Checks', 'an array of at most one TTL check (Muster keeps one per instance)');
  const check =
    decodeCheck(body['Check'], 'Check') ?? (Array.isArray(checks) ? decodeCheck(checks[0], 'Checks[0]') : undefined);
  const metadata: Metadata = { ...metaOf(body), [META.id]: id, [META.tags]: JSON.stringify(tagsOf(body)) };
  if (check) {
    metadata[META.checkTtl] = check.ttl;
    metadata[META.checkId] = check.id ?? defaultCheckId(id);
    if (check.deregisterAfter !== undefined) metadata[META.deregisterAfter] = check.deregisterAfter;
  }
  const ttl = check ? ttlOf(parseGoDuration('Check.TTL', check.ttl)) : NO_CHECK_TTL_S;
  return {
    id,
    service: name,
    request: { id, host, port, metadata, healthCheck: { type: 'heartbeat', ttl } },
    initialStatus: check ? check.status : 'passing',
  };
}
