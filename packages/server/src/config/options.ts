/**
 * Every server option, declared once. The YAML keys, the MUSTER_* environment variables, the
 * command-line flags, `muster server --help` and docs/configuration.md all come from this table.
 */
export type OptionType =
  | { kind: 'string' }
  | { kind: 'int'; min: number; max: number }
  | { kind: 'number'; min: number; max: number }
  | { kind: 'bool' }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'duration'; minMs: number; maxMs: number; zeroAllowed?: boolean };

export interface OptionSpec {
  key: string;
  type: OptionType;
  default: string | number | boolean;
  description: string;
}

export const OPTIONS = [
  {
    key: 'host',
    type: { kind: 'string' },
    default: '127.0.0.1',
    description: 'Address the HTTP and gRPC APIs listen on',
  },
  {
    key: 'httpPort',
    type: { kind: 'int', min: 0, max: 65535 },
    default: 8090,
    description: 'HTTP API port (0 picks a free one)',
  },
  {
    key: 'grpcPort',
    type: { kind: 'int', min: 0, max: 65535 },
    default: 8091,
    description: 'gRPC API port (0 picks a free one)',
  },
  {
    key: 'dataDir',
    type: { kind: 'string' },
    default: './data',
    description: 'Directory of the SQLite database; created if missing',
  },
  {
    key: 'store.type',
    type: { kind: 'enum', values: ['sqlite', 'mysql', 'memory'] },
    default: 'sqlite',
    description:
      'Where state is kept: sqlite (durable, one file), mysql (a MySQL or MariaDB database several nodes share: cluster mode; needs store.url) or memory (lost at exit; tests only)',
  },
  {
    key: 'store.sqlite.synchronous',
    type: { kind: 'enum', values: ['full', 'normal'] },
    default: 'full',
    description: 'SQLite durability: full survives power loss, normal survives a process crash only',
  },
  {
    key: 'store.url',
    type: { kind: 'string' },
    default: '',
    description:
      'The MySQL / MariaDB database of store.type mysql: mysql://user:password@host:3306/muster (the database is created if missing, its schema migrated at start)',
  },
  {
    key: 'store.mysql.poolSize',
    type: { kind: 'int', min: 1, max: 1000 },
    default: 10,
    description: 'MySQL connections per node at most',
  },
  {
    key: 'store.mysql.commitsInFlight',
    type: { kind: 'int', min: 1, max: 64 },
    default: 4,
    description:
      'Write batches of one node that may be committing at once: the next batch is built while earlier ones wait for the database to make them durable, and the database flushes several with one disk write. Must be below store.mysql.poolSize. 1: one transaction at a time',
  },
  {
    key: 'store.mysql.writeTimeout',
    type: { kind: 'duration', minMs: 100, maxMs: 300_000 },
    default: '5s',
    description:
      'The most a MySQL write transaction may take, waiting for a connection included; past it the write answers UNAVAILABLE (retry). Also bounds reads and the readiness check',
  },
  {
    key: 'auth.enabled',
    type: { kind: 'bool' },
    default: true,
    description:
      'Management APIs (namespaces, services, isolation, tokens, events, cluster) need an access token; at first start an admin token is created in <dataDir>/admin.token. false: nothing is checked (local development only; warned at every start)',
  },
  {
    key: 'auth.clients',
    type: { kind: 'enum', values: ['auto', 'open', 'required'] },
    default: 'auto',
    description:
      "Client APIs (register, discover, watch): open takes anonymous callers, required needs an access token, auto is open on a loopback host and required on any other. Heartbeats and deregistrations always need the instance's heartbeatToken or a write token",
  },
  {
    key: 'insecure',
    type: { kind: 'bool' },
    default: false,
    description: 'Allow listening on a non-loopback host with auth.enabled false',
  },
  {
    key: 'limits.writesPerAddress',
    type: { kind: 'int', min: 0, max: 10_000_000 },
    default: 2000,
    description:
      'Writes (registrations, deregistrations, changes; not heartbeats) per second from one client address; more answer 429 with Retry-After (0: no limit)',
  },
  {
    key: 'limits.writesPerToken',
    type: { kind: 'int', min: 0, max: 10_000_000 },
    default: 5000,
    description: 'Writes per second with one access token (0: no limit)',
  },
  {
    key: 'limits.watchesPerClient',
    type: { kind: 'int', min: 1, max: 1_000_000 },
    default: 1000,
    description: 'Open watches (SSE streams, long-polls, gRPC Watch and long-poll Discover) per client address',
  },
  {
    key: 'limits.ipv6Prefix',
    type: { kind: 'int', min: 32, max: 128 },
    default: 64,
    description:
      'The write limits and watch caps count an IPv6 client by this many leading bits of its address: one host usually holds a whole /64, so a /64 is one client. An IPv4 client counts by its address; every loopback address (127.0.0.0/8, ::1) is one client',
  },
  {
    key: 'limits.writeWait',
    type: { kind: 'duration', minMs: 100, maxMs: 600_000 },
    default: '5s',
    description:
      "How long a write or heartbeat may wait, from when it arrived, before it is applied: one that waited longer (behind slow commits, in a paused process) is not applied and answers DEADLINE_EXCEEDED, since its client has likely given up; a write whose client closed the connection is not applied either. A gRPC call's own deadline counts too. Keep it at or below the clients' timeouts",
  },
  {
    key: 'audit.refusedPerSecond',
    type: { kind: 'int', min: 0, max: 100_000 },
    default: 20,
    description:
      'Refused requests written to the audit trail one by one per caller and second; beyond, one entry counts them',
  },
  {
    key: 'autoCreateService',
    type: { kind: 'bool' },
    default: true,
    description: 'Create a service at its first registration instead of refusing it',
  },
  {
    key: 'eureka.enabled',
    type: { kind: 'bool' },
    default: true,
    description:
      "Serve Eureka's apps API on the HTTP port under /eureka/apps and /eureka/v2/apps, so unmodified Eureka clients register, renew and discover in the default namespace (docs/compatibility.md)",
  },
  {
    key: 'consul.port',
    type: { kind: 'int', min: -1, max: 65535 },
    default: -1,
    description:
      "Serve Consul's agent, health, catalog and status API (paths under /v1) on this port of the same host, so unmodified Consul clients register, check in and discover in the default namespace (docs/compatibility.md); -1: off, 0 picks a free one",
  },
  {
    key: 'batch.maxSize',
    type: { kind: 'int', min: 1, max: 10000 },
    default: 512,
    description: 'Writes per store transaction at most',
  },
  {
    key: 'batch.maxWaitMs',
    type: { kind: 'int', min: 0, max: 1000 },
    default: 0,
    description:
      'How long a write waits for others to share its transaction (ms); 0 takes what arrived in the same event-loop turn, and writes arriving during a commit always share the next one',
  },
  {
    key: 'health.sweepInterval',
    type: { kind: 'duration', minMs: 10, maxMs: 60_000 },
    default: '1s',
    description: 'How often heartbeat clocks are checked',
  },
  {
    key: 'health.cleanupAfter',
    type: { kind: 'duration', minMs: 0, maxMs: 365 * 86_400_000, zeroAllowed: true },
    default: '1h',
    description: 'Remove an instance unhealthy for this long (0 = never)',
  },
  {
    key: 'health.protectRatio',
    type: { kind: 'number', min: 0, max: 1 },
    default: 0.5,
    description:
      'Self-preservation: expire nobody in a sweep that would expire more than this share of healthy instances...',
  },
  {
    key: 'health.protectMin',
    type: { kind: 'int', min: 1, max: 1_000_000 },
    default: 10,
    description: '...and at least this many',
  },
  {
    key: 'health.flushInterval',
    type: { kind: 'duration', minMs: 100, maxMs: 3_600_000 },
    default: '10s',
    description: 'How often heartbeat times kept in memory are written to the store',
  },
  {
    key: 'events.maxCount',
    type: { kind: 'int', min: 100, max: 100_000_000 },
    default: 100_000,
    description: 'Events kept at most',
  },
  {
    key: 'events.maxAge',
    type: { kind: 'duration', minMs: 60_000, maxMs: 3650 * 86_400_000 },
    default: '7d',
    description: 'Events older than this are dropped',
  },
  {
    key: 'discovery.cacheTtl',
    type: { kind: 'duration', minMs: 0, maxMs: 60_000, zeroAllowed: true },
    default: '1s',
    description:
      'How long a pre-serialized discovery answer is reused before its heartbeat ages are recomputed (0: rebuilt for every request)',
  },
  {
    key: 'watch.keepAlive',
    type: { kind: 'duration', minMs: 1000, maxMs: 300_000 },
    default: '15s',
    description: 'Interval of keep-alive comments on watch streams',
  },
  {
    key: 'watch.maxBufferedBytes',
    type: { kind: 'int', min: 16_384, max: 1_073_741_824 },
    default: 1_048_576,
    description: 'A watch stream with more unsent bytes than this is dropped (the client reconnects)',
  },
  {
    key: 'http.bodyLimit',
    type: { kind: 'int', min: 1024, max: 104_857_600 },
    default: 1_048_576,
    description: 'Largest request body accepted (bytes); larger answers 413',
  },
  {
    key: 'http.trustProxy',
    type: { kind: 'string' },
    default: '',
    description:
      'Addresses or CIDR ranges (comma-separated) of reverse proxies in front of the HTTP API, e.g. 127.0.0.1 for one on the same host: the client address of a request they forward is taken from X-Forwarded-For (limits, audit, logs). Set, the server counts as reachable from beyond this host: auth.clients auto and metrics.auth auto require a token, and auth.enabled false needs insecure',
  },
  {
    key: 'metrics.auth',
    type: { kind: 'enum', values: ['auto', 'open', 'required'] },
    default: 'auto',
    description:
      'GET /metrics: required needs an access token with read on every namespace (read:*/*), open answers anyone who reaches the port, auto is open on a loopback host without http.trustProxy and required otherwise',
  },
  {
    key: 'tls.cert',
    type: { kind: 'string' },
    default: '',
    description:
      'PEM file of the server certificate (its chain may follow it). Set with tls.key, the HTTP and gRPC APIs speak TLS only (https://; gRPC over TLS) and refuse plain-text clients',
  },
  {
    key: 'tls.key',
    type: { kind: 'string' },
    default: '',
    description: 'PEM file of the private key of tls.cert (not encrypted)',
  },
  {
    key: 'tls.ca',
    type: { kind: 'string' },
    default: '',
    description:
      'PEM file of the CA that signs client certificates. Set, every client of the HTTP and gRPC APIs must present a certificate it signed (mutual TLS), /healthz and /metrics included; needs tls.cert',
  },
  {
    key: 'verification.allowLinkLocal',
    type: { kind: 'bool' },
    default: false,
    description:
      'Verified registration: also check instances at link-local addresses (169.254.0.0/16, fe80::/10). Cloud metadata addresses stay refused either way',
  },
  {
    key: 'verification.allowLoopback',
    type: { kind: 'bool' },
    default: false,
    description:
      "Verified registration: also check instances at loopback addresses (127.0.0.0/8, ::1, and names such as localhost that resolve there): this host's own ports. The unspecified addresses (0.0.0.0, ::) stay refused either way",
  },
  {
    key: 'verification.allowPrivate',
    type: { kind: 'bool' },
    default: true,
    description:
      'Verified registration: check instances at private addresses (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, fc00::/7), where instances usually live. false: only public addresses are checked',
  },
  {
    key: 'verification.maxPendingPerCaller',
    type: { kind: 'int', min: 1, max: 1_000_000 },
    default: 1000,
    description:
      'Verified registration: checks waiting or running for one caller (access token, or client address as the write limits count it) at most; a registration past it answers 429 until some are done',
  },
  {
    key: 'verification.timeout',
    type: { kind: 'duration', minMs: 100, maxMs: 10_000 },
    default: '2s',
    description:
      'Verified registration: the most one check of an instance may take, name resolution included; past it the check fails',
  },
  {
    key: 'log.level',
    type: { kind: 'enum', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
    default: 'info',
    description: 'Log level',
  },
  {
    key: 'log.requests',
    type: { kind: 'enum', values: ['all', 'writes', 'none'] },
    default: 'writes',
    description: 'Requests logged at info: all, writes (and every error), none (errors only)',
  },
  {
    key: 'shutdownTimeout',
    type: { kind: 'duration', minMs: 0, maxMs: 600_000, zeroAllowed: true },
    default: '10s',
    description: 'On SIGTERM, how long in-flight requests get before the server exits anyway (0: no grace)',
  },
  {
    key: 'cluster.redis',
    type: { kind: 'string' },
    default: '',
    description:
      'Redis URL (redis://host:6379). Set, this node runs in cluster mode: heartbeats, change notifications and the sweep lease go through Redis, shared with every node on the same store (store.type mysql)',
  },
  {
    key: 'cluster.prefix',
    type: { kind: 'string' },
    default: 'muster',
    description: 'Prefix of every Redis key of the cluster (prefix:...): several clusters can share one Redis',
  },
  {
    key: 'cluster.nodeId',
    type: { kind: 'string' },
    default: '',
    description: "This node's name in GET /v1/cluster and in logs (default: host name, process id and a random suffix)",
  },
  {
    key: 'cluster.pollInterval',
    type: { kind: 'duration', minMs: 50, maxMs: 60_000 },
    default: '1s',
    description: 'How often the change log is read even without a notification: the most a lost notification costs',
  },
  {
    key: 'cluster.leaseTtl',
    type: { kind: 'duration', minMs: 300, maxMs: 300_000 },
    default: '5s',
    description:
      'How long the sweep lease lasts unrenewed: when its holder dies, another node sweeps within this plus one sweep',
  },
  {
    key: 'cluster.revisionWait',
    type: { kind: 'duration', minMs: 0, maxMs: 60_000, zeroAllowed: true },
    default: '2s',
    description:
      'Read-your-writes: how long a request carrying a revision (minRevision, x-muster-min-revision, gRPC muster-min-revision) waits for this node to apply it before it answers UNAVAILABLE (another node may have it)',
  },
] as const satisfies readonly OptionSpec[];

export const envName = (key: string): string =>
  'MUSTER_' +
  key
    .replace(/\./g, '_')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toUpperCase();
export const flagName = (key: string): string =>
  '--' +
  key
    .replace(/\./g, '-')
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .toLowerCase();

export function describeType(t: OptionType): string {
  switch (t.kind) {
    case 'string':
      return 'a string';
    case 'int':
      return `an integer in ${t.min}..${t.max}`;
    case 'number':
      return `a number in ${t.min}..${t.max}`;
    case 'bool':
      return 'true or false';
    case 'enum':
      return `one of ${t.values.join(', ')}`;
    case 'duration':
      return `a duration like 500ms, 30s, 5m, 1h or 7d (a bare number is milliseconds) from ${t.zeroAllowed ? '0' : formatMs(t.minMs)} to ${formatMs(t.maxMs)}`;
  }
}

export function formatMs(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
