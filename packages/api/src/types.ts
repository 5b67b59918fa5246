/**
 * The wire shapes of Muster's native API: one definition, used by the server's adapters and the
 * SDK alike. Timestamps on the wire are ISO-8601 strings; durations are milliseconds unless named.
 */

export type Metadata = Record<string, string>;

export interface Location {
  region?: string;
  zone?: string;
  campus?: string;
}

export interface HealthCheck {
  type: 'heartbeat';
  /** Seconds between expected heartbeats; the instance is unhealthy after 3 × ttl without one. */
  ttl: number;
}

export interface Namespace {
  name: string;
  comment: string;
  createdAt: string;
  updatedAt: string;
}

export interface Service {
  namespace: string;
  name: string;
  metadata: Metadata;
  comment: string;
  revision: number;
  instanceCount: number;
  healthyInstanceCount: number;
  /** Instances an operator took out of traffic (healthy or not). */
  isolatedInstanceCount: number;
  /** Whether new instances must prove they hold the service's secret; the secret is never answered. */
  verification: ServiceVerificationStatus;
  createdAt: string;
  updatedAt: string;
}

/**
 * Verified registration, as a service is created or patched with it: the registry challenges each
 * new instance at `http://host:port<path>` and expects the HMAC of the challenge under `secret`.
 */
export interface ServiceVerificationInput {
  /** Write-only: no answer ever carries it. */
  secret: string;
  /** Default `/.well-known/muster/verify`. */
  path?: string;
}

export type ServiceVerificationStatus =
  | { enabled: false }
  | {
      enabled: true;
      path: string;
      /** Instances not yet checked (or being checked): invisible to discovery until they pass. */
      pendingInstanceCount: number;
      /** Instances that failed their check: invisible to discovery; see the instance's `verification.reason`. */
      failedInstanceCount: number;
    };

/**
 * - `verified`: visible to discovery (every instance of a service without verification is).
 * - `pending`: registered in a service with verification and not yet checked.
 * - `failed`: its check failed (`reason`); it stays invisible until a later check passes.
 */
export type VerificationState = 'verified' | 'pending' | 'failed';

export interface InstanceVerification {
  state: VerificationState;
  /** Why the last check failed; only with `failed`. */
  reason?: string;
  /** When the state last changed; absent for an instance of a service without verification. */
  at?: string;
}

export interface Instance {
  id: string;
  namespace: string;
  service: string;
  host: string;
  port: number;
  protocol: string;
  version: string;
  weight: number;
  priority: number;
  metadata: Metadata;
  location: Location;
  healthCheck: HealthCheck;
  healthy: boolean;
  isolate: boolean;
  /** When the last heartbeat arrived (or the registration, before the first one). */
  lastHeartbeat: string;
  /** Age of `lastHeartbeat` when the answer was built: judge freshness by this. */
  lastHeartbeatAgeMs: number;
  revision: number;
  /** Whether the instance proved it holds its service's secret; only `verified` ones are discovered. */
  verification: InstanceVerification;
  createdAt: string;
  updatedAt: string;
}

/** What a client sends to register an instance. */
export interface RegisterRequest {
  id?: string;
  host: string;
  port: number;
  protocol?: string;
  version?: string;
  weight?: number;
  priority?: number;
  metadata?: Metadata;
  location?: Location;
  healthCheck?: { type?: 'heartbeat'; ttl?: number };
  isolate?: boolean;
}

export interface RegisterResponse {
  created: boolean;
  instance: Instance;
  /** Secret of this instance: heartbeats, PATCH and DELETE of it must carry it as a Bearer token. */
  heartbeatToken: string;
}

export interface InstancePatch {
  weight?: number;
  priority?: number;
  isolate?: boolean;
  metadata?: Metadata;
}

/**
 * An instance as discovery answers it: what a consumer routes by and judges freshness by
 * (`lastHeartbeatAgeMs` against `healthCheck.ttl`). Namespace and service are the answer's own;
 * timestamps are on `GET /v1/instances/{id}`. Discovery is the hot path: every byte is repeated
 * per instance, per consumer, per change.
 */
export type DiscoveredInstance = Omit<
  Instance,
  'namespace' | 'service' | 'lastHeartbeat' | 'createdAt' | 'updatedAt' | 'verification'
>;

export interface DiscoverResponse {
  namespace: string;
  service: string;
  revision: number;
  instances: DiscoveredInstance[];
  /** Cluster mode only, while the answering node cannot read the shared store: it may miss other nodes' changes. */
  stale?: boolean;
  staleReason?: string;
}

export type HealthStatusFilter = 'healthy' | 'unhealthy' | 'all';
export type IsolatedFilter = 'false' | 'true' | 'all';

export interface DiscoverFilter {
  status?: HealthStatusFilter;
  isolated?: IsolatedFilter;
  metadata?: Metadata;
  region?: string;
  zone?: string;
  campus?: string;
}

export interface HeartbeatItem {
  id: string;
  token: string;
}

export interface HeartbeatBatchResponse {
  results: Array<
    { id: string; ok: true } | { id: string; ok: false; error: { code: string; message: string; field?: string } }
  >;
}

export const EventTypes = [
  'namespace.created',
  'namespace.deleted',
  'service.created',
  'service.updated',
  'service.deleted',
  'instance.registered',
  'instance.updated',
  'instance.deregistered',
  'instance.unhealthy',
  'instance.healthy',
  'instance.isolated',
  'instance.unisolated',
  'instance.metadata_changed',
  'instance.removed',
  'instance.verified',
  'instance.verification_failed',
  'token.created',
  'token.revoked',
  /** Who did what and how it ended: every management action and every refused request. */
  'audit',
] as const;

export type EventType = (typeof EventTypes)[number];

export interface RegistryEvent {
  /** The change sequence number: strictly increasing, the same number as the revision it made. */
  id: number;
  type: EventType;
  namespace: string;
  service?: string;
  instanceId?: string;
  at: string;
  detail: Record<string, unknown>;
}

export interface EventsResponse {
  events: RegistryEvent[];
}

/** A Muster node as `GET /v1/cluster` lists it. */
export interface ClusterNode {
  id: string;
  /** Where its HTTP API and gRPC API answer. */
  httpAddress: string;
  grpcAddress: string;
  version: string;
  startedAt: string;
  /** When it last said it is alive. */
  lastSeen: string;
  lastSeenAgoMs: number;
  /** Not seen for a while: probably gone (it is removed from the list later). */
  stale: boolean;
  /** It holds the sweep lease: it is the one node that expires and cleans up instances. */
  leaseHolder: boolean;
  /** The node that answered. */
  self: boolean;
  /**
   * Cluster mode: the node's own wall clock minus the cluster's clock, Redis's (ms, positive when
   * it runs ahead), as it stood when the node last wrote its entry (the write's latency included).
   * Nothing in the cluster depends on it: every node stamps times on Redis's clock. It is shown so
   * an operator can find a machine whose time is off: `muster doctor` reports it.
   */
  clockOffsetMs?: number;
}

export interface ClusterStatus {
  /** `single`: one node on its own store; `cluster`: nodes sharing a database and Redis. */
  mode: 'single' | 'cluster';
  nodes: ClusterNode[];
  /** The node holding the sweep lease, if any holds it now. */
  leaseHolder: string | null;
}

/** `GET /v1/tokens/self`: what the caller's own credentials allow. */
export interface TokenSelf {
  auth: {
    enabled: boolean;
    /** `required`: register, heartbeat and discover need an access token too; `open`: they do not. */
    clients: 'required' | 'open';
  };
  /** The access token the request carried; null without one. */
  token: { id: string; name: string; rules: string[] } | null;
  /** The rights granted over all of the asked scope (every namespace and service unless named). */
  rights: AccessRight[];
}

/** `GET /v1/stats`: this node's request rates, one sample per interval, oldest first. */
export interface StatsResponse {
  intervalMs: number;
  samples: Array<{ at: string; registrations: number; heartbeats: number; discoveries: number }>;
}

/** `GET /readyz`: ready when every check that gates readiness passes; each check's state in words. */
export interface Readiness {
  ready: boolean;
  checks: Record<string, string>;
}

/** A right a token rule grants; each includes the ones before it. */
export const AccessRights = ['read', 'write', 'admin'] as const;
export type AccessRight = (typeof AccessRights)[number];

/**
 * An access token as the API shows it: never the secret, never its hash. Rules read
 * `right:namespacePattern/servicePattern`, where a pattern is a name with `*` wildcards
 * (`write:prod/orders-*`, `read:prod/*`, and `admin` on every namespace and service as `*` / `*`).
 */
export interface AccessToken {
  /** The public part of the token, used to list and revoke it. */
  id: string;
  name: string;
  rules: string[];
  createdAt: string;
  /** The token name (or address) that created it. */
  createdBy: string;
  /** Set once revoked: from then on the token is refused everywhere. */
  revokedAt?: string;
}

export interface CreateTokenRequest {
  name: string;
  rules: string[];
}

export interface CreateTokenResponse {
  token: AccessToken;
  /** The secret, `mst_<id>_<secret>`: shown only in this answer, stored only as a hash. */
  secret: string;
}

/** The detail of an `audit` event. */
export interface AuditDetail {
  /** The token name, or `anonymous@<address>` without one. */
  who: string;
  address: string;
  /** `POST /v1/namespaces`, `grpc Register`, ... */
  action: string;
  outcome: 'ok' | 'refused';
  /** The error code of a refused request. */
  code?: string;
  reason?: string;
  /** Refused requests of this caller not recorded one by one (flood protection). */
  suppressed?: number;
}
