import net from 'node:net';
import type {
  DiscoverFilter,
  HealthStatusFilter,
  InstancePatch,
  IsolatedFilter,
  Location,
  Metadata,
  RegisterRequest,
} from '@muster/api';
import { LIMITS } from '@muster/api';
import { Errors } from '../errors.js';
import type { InstanceRecord, ServiceVerificationSetting } from '../model/records.js';

/**
 * The data model's rules, checked here once for every protocol. Adapters check only the shape
 * of what they decode; whatever reaches the naming service is checked again here, so a new
 * adapter cannot let a bad value through.
 */

const NAME_RE = new RegExp(LIMITS.name.pattern);
const DNS_LABEL_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

export function checkName(field: string, v: unknown): string {
  if (
    typeof v !== 'string' ||
    v.length < LIMITS.name.min ||
    v.length > LIMITS.name.max ||
    !NAME_RE.test(v) ||
    v === '.' ||
    v === '..'
  ) {
    throw Errors.invalidLimit(field, LIMITS.name.describe);
  }
  return v;
}

export function checkHost(v: unknown): string {
  if (typeof v !== 'string' || v.length < LIMITS.host.min || v.length > LIMITS.host.max)
    throw Errors.invalidLimit('host', LIMITS.host.describe);
  if (net.isIP(v) !== 0) return v;
  const labels = v.endsWith('.') ? v.slice(0, -1).split('.') : v.split('.');
  if (labels.every((l) => DNS_LABEL_RE.test(l)) && !/^[0-9.]+$/.test(v)) return v;
  throw Errors.invalidLimit('host', LIMITS.host.describe);
}

export function checkInt(field: string, v: unknown, limit: { min: number; max: number; describe: string }): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < limit.min || v > limit.max)
    throw Errors.invalidLimit(field, limit.describe);
  return v;
}

/**
 * A lone UTF-16 surrogate (JSON allows "\ud800"): no UTF-8 store can keep one, so the value would
 * read back as U+FFFD after a restart while the index still served the original.
 */
const LONE_SURROGATE = /\p{Cs}/u;

function checkUnicode(field: string, v: string): string {
  if (LONE_SURROGATE.test(v))
    throw Errors.invalid(field, `${field} is not valid Unicode text: it holds a lone surrogate`);
  return v;
}

export function checkText(field: string, v: unknown, max: number): string {
  if (typeof v !== 'string' || v.length > max)
    throw Errors.invalidLimit(field, `a string of at most ${max} characters`);
  return checkUnicode(field, v);
}

export function checkBool(field: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw Errors.invalid(field, `${field} must be true or false`);
  return v;
}

export function checkMetadata(field: string, v: unknown): Metadata {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw Errors.invalid(field, `${field} must be an object of string values`);
  const entries = Object.entries(v);
  if (entries.length > LIMITS.metadata.maxKeys)
    throw Errors.invalid(field, `${field} may have at most ${LIMITS.metadata.maxKeys} keys (got ${entries.length})`);
  const out: Metadata = {};
  // Keys in sorted order, the order the stores read them back in: an instance answers the same
  // whether it was last registered here or loaded from the store (a restart, another node).
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [k, val] of entries) {
    if (k.length < 1 || k.length > LIMITS.metadata.keyMax)
      throw Errors.invalid(`${field}.${k}`, `${field} keys must have 1..${LIMITS.metadata.keyMax} characters`);
    // Assigned to an object it would set the prototype, not a key: the key would vanish from an
    // accepted registration. HTTP's JSON parser refuses it already; gRPC's decoder passes it on.
    if (k === '__proto__') throw Errors.invalid(`${field}.${k}`, `${field} cannot have the key __proto__`);
    if (typeof val !== 'string') throw Errors.invalid(`${field}.${k}`, `${field}.${k} must be a string`);
    if (val.length > LIMITS.metadata.valueMax)
      throw Errors.invalid(`${field}.${k}`, `${field}.${k} must have at most ${LIMITS.metadata.valueMax} characters`);
    checkUnicode(`${field}.${k}`, k);
    out[k] = checkUnicode(`${field}.${k}`, val);
  }
  return out;
}

function checkLocation(v: unknown): Location {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw Errors.invalid('location', 'location must be an object with region, zone, campus');
  const out: Location = {};
  for (const [k, val] of Object.entries(v)) {
    if (k !== 'region' && k !== 'zone' && k !== 'campus') throw Errors.unknownField(`location.${k}`);
    out[k] = checkText(`location.${k}`, val, LIMITS.shortText.max);
  }
  return out;
}

function rejectUnknown(obj: object, allowed: readonly string[], prefix = ''): void {
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) throw Errors.unknownField(prefix + k);
}

function checkObject(field: string, v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw Errors.invalid(field, `${field} must be a JSON object`);
  return v as Record<string, unknown>;
}

/** A registration with every default applied: the instance's own fields, from its one definition. */
export type ValidRegistration = Pick<
  InstanceRecord,
  'host' | 'port' | 'protocol' | 'version' | 'weight' | 'priority' | 'metadata' | 'location' | 'ttl'
> & {
  id: string | undefined;
  /** Undefined keeps what the instance has: isolation is often an operator's, not the owner's. */
  isolate: boolean | undefined;
};

const REGISTER_FIELDS = [
  'id',
  'host',
  'port',
  'protocol',
  'version',
  'weight',
  'priority',
  'metadata',
  'location',
  'healthCheck',
  'isolate',
] as const;

export function validateRegistration(input: RegisterRequest | unknown): ValidRegistration {
  const b = checkObject('body', input);
  rejectUnknown(b, REGISTER_FIELDS);
  if (b['host'] === undefined) throw Errors.requiredField('host');
  if (b['port'] === undefined) throw Errors.requiredField('port');
  let ttl: number = LIMITS.ttl.default;
  if (b['healthCheck'] !== undefined) {
    const hc = checkObject('healthCheck', b['healthCheck']);
    rejectUnknown(hc, ['type', 'ttl'], 'healthCheck.');
    if (hc['type'] !== undefined && hc['type'] !== 'heartbeat')
      throw Errors.invalid('healthCheck.type', 'healthCheck.type must be "heartbeat"');
    if (hc['ttl'] !== undefined) ttl = checkInt('healthCheck.ttl', hc['ttl'], LIMITS.ttl);
  }
  return {
    id: b['id'] === undefined ? undefined : checkName('id', b['id']),
    host: checkHost(b['host']),
    port: checkInt('port', b['port'], LIMITS.port),
    protocol: b['protocol'] === undefined ? '' : checkText('protocol', b['protocol'], LIMITS.shortText.max),
    version: b['version'] === undefined ? '' : checkText('version', b['version'], LIMITS.shortText.max),
    weight: b['weight'] === undefined ? LIMITS.weight.default : checkInt('weight', b['weight'], LIMITS.weight),
    priority:
      b['priority'] === undefined ? LIMITS.priority.default : checkInt('priority', b['priority'], LIMITS.priority),
    metadata: b['metadata'] === undefined ? {} : checkMetadata('metadata', b['metadata']),
    location: b['location'] === undefined ? {} : checkLocation(b['location']),
    ttl,
    isolate: b['isolate'] === undefined ? undefined : checkBool('isolate', b['isolate']),
  };
}

export function validateInstancePatch(input: InstancePatch | unknown): InstancePatch {
  const b = checkObject('body', input);
  rejectUnknown(b, ['weight', 'priority', 'isolate', 'metadata']);
  const out: InstancePatch = {};
  if (b['weight'] !== undefined) out.weight = checkInt('weight', b['weight'], LIMITS.weight);
  if (b['priority'] !== undefined) out.priority = checkInt('priority', b['priority'], LIMITS.priority);
  if (b['isolate'] !== undefined) out.isolate = checkBool('isolate', b['isolate']);
  if (b['metadata'] !== undefined) out.metadata = checkMetadata('metadata', b['metadata']);
  return out;
}

export interface ValidServiceInput {
  name: string;
  comment: string | undefined;
  metadata: Metadata | undefined;
  /** Undefined: unchanged; null: off (PATCH only). */
  verification: ServiceVerificationSetting | null | undefined;
}

/** `requireName`: a creation (name required, verification cannot be null); otherwise a PATCH. */
export function validateServiceInput(input: unknown, requireName: boolean): ValidServiceInput {
  const b = checkObject('body', input);
  rejectUnknown(
    b,
    requireName ? ['name', 'comment', 'metadata', 'verification'] : ['comment', 'metadata', 'verification'],
  );
  if (requireName && b['name'] === undefined) throw Errors.requiredField('name');
  return {
    name: requireName ? checkName('name', b['name']) : '',
    comment: b['comment'] === undefined ? undefined : checkText('comment', b['comment'], LIMITS.comment.max),
    metadata: b['metadata'] === undefined ? undefined : checkMetadata('metadata', b['metadata']),
    verification:
      b['verification'] === undefined || (b['verification'] === null && !requireName)
        ? (b['verification'] as null | undefined)
        : checkVerification(b['verification']),
  };
}

const SECRET_RE = new RegExp(LIMITS.verificationSecret.pattern);
const VERIFY_PATH_RE = new RegExp(LIMITS.verificationPath.pattern);

function checkVerification(v: unknown): ServiceVerificationSetting {
  const o = checkObject('verification', v);
  rejectUnknown(o, ['secret', 'path'], 'verification.');
  if (o['secret'] === undefined) throw Errors.requiredField('verification.secret');
  const secret = o['secret'];
  const s = LIMITS.verificationSecret;
  if (typeof secret !== 'string' || secret.length < s.min || secret.length > s.max || !SECRET_RE.test(secret)) {
    throw Errors.invalidLimit('verification.secret', s.describe);
  }
  const path = o['path'] ?? LIMITS.verificationPath.default;
  if (typeof path !== 'string' || path.length > LIMITS.verificationPath.max || !VERIFY_PATH_RE.test(path)) {
    throw Errors.invalidLimit('verification.path', LIMITS.verificationPath.describe);
  }
  return { secret, path };
}

export function validateNamespaceInput(input: unknown): { name: string; comment: string } {
  const b = checkObject('body', input);
  rejectUnknown(b, ['name', 'comment']);
  if (b['name'] === undefined) throw Errors.requiredField('name');
  return {
    name: checkName('name', b['name']),
    comment: b['comment'] === undefined ? '' : checkText('comment', b['comment'], LIMITS.comment.max),
  };
}

const STATUS_FILTERS: readonly HealthStatusFilter[] = ['healthy', 'unhealthy', 'all'];
const ISOLATED_FILTERS: readonly IsolatedFilter[] = ['false', 'true', 'all'];

/**
 * A discovery filter as an object (`{status, isolated, metadata, region, zone, campus}`), for
 * adapters that do not check it with a schema; `prefix` is where it sits in the request
 * (`filter.`), so the field at fault is named as the caller sent it.
 */
export function validateDiscoverFilter(input: unknown, prefix = ''): DiscoverFilter {
  const b = checkObject(prefix.replace(/\.$/, '') || 'filter', input);
  rejectUnknown(b, ['status', 'isolated', 'metadata', 'region', 'zone', 'campus'], prefix);
  const f: DiscoverFilter = {};
  if (b['status'] !== undefined) {
    if (!STATUS_FILTERS.includes(b['status'] as HealthStatusFilter))
      throw Errors.invalidLimit(`${prefix}status`, `one of ${STATUS_FILTERS.join(', ')}`);
    f.status = b['status'] as HealthStatusFilter;
  }
  if (b['isolated'] !== undefined) {
    if (!ISOLATED_FILTERS.includes(b['isolated'] as IsolatedFilter))
      throw Errors.invalidLimit(`${prefix}isolated`, `one of ${ISOLATED_FILTERS.join(', ')}`);
    f.isolated = b['isolated'] as IsolatedFilter;
  }
  // An empty metadata filter matches everything: leaving it out keeps the pre-serialized answer usable.
  if (b['metadata'] !== undefined) {
    const m = checkMetadata(`${prefix}metadata`, b['metadata']);
    if (Object.keys(m).length > 0) f.metadata = m;
  }
  for (const k of ['region', 'zone', 'campus'] as const)
    if (b[k] !== undefined) f[k] = checkText(`${prefix}${k}`, b[k], LIMITS.shortText.max);
  return f;
}

/** A long-poll wait in milliseconds: 0 (answer at once) up to LIMITS.longPollMaxSeconds. */
export function checkWaitMs(field: string, v: unknown): number {
  const max = LIMITS.longPollMaxSeconds * 1000;
  return checkInt(field, v, { min: 0, max, describe: `an integer number of milliseconds in 0..${max}` });
}

/** A heartbeat batch holds at most LIMITS.heartbeatBatchMax items. */
export function checkHeartbeatBatchSize(field: string, count: number): void {
  if (count > LIMITS.heartbeatBatchMax)
    throw Errors.invalid(
      field,
      `${field} may hold at most ${LIMITS.heartbeatBatchMax} heartbeats (got ${count}); split the batch`,
    );
}
