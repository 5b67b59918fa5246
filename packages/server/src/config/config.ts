import fs from 'node:fs';
import ipaddr from 'ipaddr.js';
import YAML from 'yaml';
import type { OptionSpec, OptionType } from './options.js';
import { OPTIONS, describeType, envName, flagName } from './options.js';
import { parseMysqlUrl, redactMysqlUrl } from '../store/mysql/mysql-url.js';

/** The validated configuration, durations in milliseconds. */
export interface MusterConfig {
  host: string;
  httpPort: number;
  grpcPort: number;
  dataDir: string;
  store: {
    type: 'sqlite' | 'mysql' | 'memory';
    /** mysql://user:password@host:port/database; '' unless type is mysql. */
    url: string;
    sqlite: { synchronous: 'full' | 'normal' };
    mysql: { poolSize: number; commitsInFlight: number; writeTimeout: number };
  };
  auth: { enabled: boolean; clients: 'auto' | 'open' | 'required' };
  insecure: boolean;
  limits: {
    writesPerAddress: number;
    writesPerToken: number;
    watchesPerClient: number;
    ipv6Prefix: number;
    writeWait: number;
  };
  audit: { refusedPerSecond: number };
  autoCreateService: boolean;
  eureka: { enabled: boolean };
  /** port -1: Consul's API is not served. */
  consul: { port: number };
  batch: { maxSize: number; maxWaitMs: number };
  health: {
    sweepInterval: number;
    cleanupAfter: number;
    protectRatio: number;
    protectMin: number;
    flushInterval: number;
  };
  events: { maxCount: number; maxAge: number };
  discovery: { cacheTtl: number };
  watch: { keepAlive: number; maxBufferedBytes: number };
  /** trustProxy: '' or comma-separated addresses and CIDR ranges. */
  http: { bodyLimit: number; trustProxy: string };
  metrics: { auth: 'auto' | 'open' | 'required' };
  /** PEM file paths; '' when not set. TLS is on when cert (and so key) is set. */
  tls: { cert: string; key: string; ca: string };
  verification: {
    allowLinkLocal: boolean;
    allowLoopback: boolean;
    allowPrivate: boolean;
    maxPendingPerCaller: number;
    timeout: number;
  };
  log: { level: string; requests: 'all' | 'writes' | 'none' };
  shutdownTimeout: number;
  /** Cluster mode when `redis` is set. */
  cluster: {
    redis: string;
    prefix: string;
    nodeId: string;
    pollInterval: number;
    leaseTtl: number;
    revisionWait: number;
  };
}

/** A configuration value that is not allowed: names the key, where it came from, what is allowed. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export interface ConfigSources {
  /** Path of a YAML file. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Flag values keyed by option key (`health.cleanupAfter`), as given on the command line. */
  flags?: Record<string, unknown>;
}

/** Defaults, then the YAML file, then MUSTER_* variables, then flags: the later one wins. */
export function loadConfig(sources: ConfigSources = {}): MusterConfig {
  const values = new Map<string, unknown>();
  for (const o of OPTIONS) values.set(o.key, parseValue(o, o.default, 'default'));

  if (sources.file !== undefined) {
    let doc: unknown;
    try {
      doc = YAML.parse(fs.readFileSync(sources.file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`cannot read config file ${sources.file}: ${(err as Error).message}`);
    }
    for (const [key, raw] of flatten(doc ?? {}, '', sources.file)) {
      const spec = OPTIONS.find((o) => o.key === key);
      if (!spec) throw new ConfigError(`unknown option "${key}" in ${sources.file}; see muster server --help`);
      values.set(key, parseValue(spec, raw, `config file ${sources.file}`));
    }
  }
  const env = sources.env ?? {};
  for (const o of OPTIONS) {
    const raw = env[envName(o.key)];
    if (raw !== undefined && raw !== '')
      values.set(o.key, parseValue(o, raw, `environment variable ${envName(o.key)}`));
  }
  for (const [key, raw] of Object.entries(sources.flags ?? {})) {
    if (raw === undefined) continue;
    const spec = OPTIONS.find((o) => o.key === key);
    if (!spec) throw new ConfigError(`unknown option "${key}"`);
    values.set(key, parseValue(spec, raw, `flag ${flagName(key)}`));
  }

  const out: Record<string, unknown> = {};
  for (const [key, v] of values) setPath(out, key, v);
  const config = out as unknown as MusterConfig;
  checkStore(config);
  checkTrustProxy(config);
  checkExposure(config);
  checkTls(config);
  if (config.cluster.redis !== '') {
    if (!/^rediss?:\/\/[^\s]+$/.test(config.cluster.redis))
      throw new ConfigError(
        `invalid value ${JSON.stringify(config.cluster.redis)} for cluster.redis: must be a redis:// or rediss:// URL`,
      );
    // Nodes share state through one database: each on its own SQLite file would be separate registries.
    if (config.store.type !== 'mysql')
      throw new ConfigError(
        `cluster.redis needs store.type mysql (the nodes of a cluster share one database), not ${config.store.type}`,
      );
  }
  return config;
}

/** A registry with auth off decides where traffic goes for anyone who can reach it: only on loopback. */
function checkExposure(config: MusterConfig): void {
  if (config.auth.enabled || config.insecure || onlyThisHost(config)) return;
  const where = isLoopback(config.host)
    ? `http.trustProxy is set (${config.http.trustProxy}): clients beyond this host reach it through the proxy`
    : `host ${config.host} is not a loopback address`;
  throw new ConfigError(
    `auth.enabled is false and ${where}: anyone who reaches it could register, change or remove instances. Turn auth on, listen on 127.0.0.1 without a proxy, or pass ${flagName('insecure')} to accept that`,
  );
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\./.test(h);
}

/**
 * Whether only this host's own processes can call the server: it listens on loopback and no
 * reverse proxy forwards others' requests to it. What the `auto` settings go by.
 */
export function onlyThisHost(config: MusterConfig): boolean {
  return isLoopback(config.host) && config.http.trustProxy === '';
}

/** http.trustProxy as Fastify takes it: each entry an IP address or a CIDR range. */
export function trustedProxies(config: MusterConfig): string[] {
  return config.http.trustProxy
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
}

function checkTrustProxy(config: MusterConfig): void {
  const raw = config.http.trustProxy;
  if (raw === '') return;
  const entries = trustedProxies(config);
  for (const e of entries) {
    if (!(e.includes('/') ? ipaddr.isValidCIDR(e) : ipaddr.isValid(e))) {
      throw new ConfigError(
        `invalid value ${JSON.stringify(raw)} for http.trustProxy: ${JSON.stringify(e)} is not an IP address or a CIDR range (e.g. 127.0.0.1, 10.0.0.0/8)`,
      );
    }
  }
  if (entries.length === 0)
    throw new ConfigError(
      `invalid value ${JSON.stringify(raw)} for http.trustProxy: give the proxies' addresses or CIDR ranges, separated by commas`,
    );
}

function checkStore(config: MusterConfig): void {
  const { type, url } = config.store;
  if (url !== '') {
    try {
      parseMysqlUrl(url);
    } catch (err) {
      // The message shows the URL without its password.
      throw new ConfigError(
        `invalid value ${JSON.stringify(redactMysqlUrl(url))} for store.url: ${(err as Error).message}`,
      );
    }
    if (type !== 'mysql')
      throw new ConfigError(
        `store.url is set but store.type is ${type}: set store.type mysql to use the database, or unset store.url`,
      );
  } else if (type === 'mysql') {
    throw new ConfigError(
      `store.type mysql needs store.url, e.g. mysql://user:password@host:3306/muster (${envName('store.url')} or ${flagName('store.url')})`,
    );
  }
  const { poolSize, commitsInFlight } = config.store.mysql;
  // Reads (the change follower, readiness, instance look-ups) need a connection of their own.
  if (type === 'mysql' && commitsInFlight >= poolSize) {
    throw new ConfigError(
      `store.mysql.commitsInFlight (${commitsInFlight}) must be below store.mysql.poolSize (${poolSize}): reads need a connection too; raise the pool or lower the batches in flight`,
    );
  }
}

function checkTls(config: MusterConfig): void {
  const { cert, key, ca } = config.tls;
  const named = (k: string) => `${k} (${envName(k)} or ${flagName(k)})`;
  if (cert !== '' && key === '')
    throw new ConfigError(
      `tls.cert is set but tls.key is not: TLS needs the certificate and its private key, set ${named('tls.key')}`,
    );
  if (key !== '' && cert === '')
    throw new ConfigError(
      `tls.key is set but tls.cert is not: TLS needs the certificate and its private key, set ${named('tls.cert')}`,
    );
  if (ca !== '' && cert === '')
    throw new ConfigError(
      `tls.ca is set but tls.cert and tls.key are not: client certificates are checked only over TLS, set both`,
    );
}

function flatten(doc: unknown, prefix: string, file: string): Array<[string, unknown]> {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new ConfigError(`${file}: ${prefix || 'the document'} must be a mapping of options`);
  }
  const out: Array<[string, unknown]> = [];
  for (const [k, v] of Object.entries(doc)) {
    const key = prefix ? `${prefix}.${k}` : k;
    const isLeaf = OPTIONS.some((o) => o.key === key);
    // A section whose options are all commented out parses as null, not as an unknown option.
    if (!isLeaf && v === null && OPTIONS.some((o) => o.key.startsWith(`${key}.`))) continue;
    if (!isLeaf && typeof v === 'object' && v !== null && !Array.isArray(v)) out.push(...flatten(v, key, file));
    else out.push([key, v]);
  }
  return out;
}

function setPath(obj: Record<string, unknown>, key: string, v: unknown): void {
  const parts = key.split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) cur = (cur[p] ??= {}) as Record<string, unknown>;
  cur[parts[parts.length - 1]!] = v;
}

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `30s`, `500ms`, `1h`, `7d`; a bare number is milliseconds. */
export function parseDuration(raw: unknown): number | undefined {
  if (typeof raw === 'number') return Number.isFinite(raw) && raw >= 0 ? raw : undefined;
  if (typeof raw !== 'string') return undefined;
  const s = raw.trim();
  if (/^\d+$/.test(s)) return Number(s);
  const m = DURATION_RE.exec(s);
  return m ? Number(m[1]) * UNIT_MS[m[2]!]! : undefined;
}

function parseValue(spec: OptionSpec, raw: unknown, source: string): unknown {
  // An option whose default is empty (cluster.redis: a single node) takes '' as "not set".
  const v = spec.default === '' && raw === '' ? '' : coerce(spec.type, raw);
  if (v === undefined) {
    throw new ConfigError(
      `invalid value ${JSON.stringify(raw)} for ${spec.key} (from ${source}): must be ${describeType(spec.type)}`,
    );
  }
  return v;
}

function coerce(t: OptionType, raw: unknown): unknown {
  switch (t.kind) {
    case 'string':
      return typeof raw === 'string' && raw.length > 0 ? raw : undefined;
    case 'int':
    case 'number': {
      // Plain decimal only: Number() would also take 0x1F90, 1e3 or '' and surprise the reader.
      const n =
        typeof raw === 'number'
          ? raw
          : typeof raw === 'string' && /^-?\d+(\.\d+)?$/.test(raw.trim())
            ? Number(raw)
            : NaN;
      if (!Number.isFinite(n) || n < t.min || n > t.max || (t.kind === 'int' && !Number.isInteger(n))) return undefined;
      return n;
    }
    case 'bool':
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === '1' || raw === 'yes') return true;
      if (raw === 'false' || raw === '0' || raw === 'no') return false;
      return undefined;
    case 'enum':
      return typeof raw === 'string' && t.values.includes(raw) ? raw : undefined;
    case 'duration': {
      const ms = parseDuration(raw);
      if (ms === undefined) return undefined;
      if (ms === 0 && t.zeroAllowed) return 0;
      return ms >= t.minMs && ms <= t.maxMs ? ms : undefined;
    }
  }
}
