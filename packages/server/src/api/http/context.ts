import type { FastifyRequest } from 'fastify';
import type { ClusterStatus } from '@muster/api';
import type { AccessTokenService } from '../../auth/access-token-service.js';
import type { AuditLog } from '../../auth/audit-log.js';
import type { Caller, Guard } from '../../auth/guard.js';
import type { RateLimits } from '../../auth/rate-limits.js';
import type { InstanceCredentials } from '../../naming/naming-service.js';
import type { MusterConfig } from '../../config/config.js';
import type { Metrics } from '../../metrics/metrics.js';
import type { RateHistory } from '../../metrics/rate-history.js';
import type { NamingService } from '../../naming/naming-service.js';
import type { WatchHub } from '../../watch/watch-hub.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What the route is, for the check made before its body is read (Guard.screen). */
    access?: 'management' | 'clientWrite';
  }
}

/** What the HTTP routes may call: the domain and the watch hub, never the store or the index. */
export interface HttpDeps {
  naming: NamingService;
  guard: Guard;
  tokens: AccessTokenService;
  audit: AuditLog;
  limits: RateLimits;
  hub: WatchHub;
  metrics: Metrics;
  config: MusterConfig;
  readiness(): Promise<{ ready: boolean; checks: Record<string, string> }>;
  cluster(): Promise<ClusterStatus>;
  /** Why discovery answers may be behind other nodes' writes (cluster mode, store unreadable); undefined when current. */
  staleness(): string | undefined;
  /** This node's request rates over the last minutes (GET /v1/stats). */
  rates: RateHistory;
  /** Writes a consistent copy of the store to a file; absent when the store has no such copy (MySQL, memory). */
  backup?: (file: string) => Promise<void>;
}

/** The Bearer token of a request, if any. */
export function bearerToken(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? m[1] : undefined;
}

const CALLER = Symbol('muster.caller');
type WithCaller = FastifyRequest & { [CALLER]?: Caller };

/** The request's caller, worked out once (the audit hook asks again after the handler). */
export function callerOf(req: FastifyRequest, guard: Guard): Caller {
  const r = req as WithCaller;
  return (r[CALLER] ??= guard.caller(bearerToken(req), req.ip));
}

/** The caller if it was worked out (a refused token leaves none): for the audit trail. */
export function knownCaller(req: FastifyRequest): Caller | undefined {
  return (req as WithCaller)[CALLER];
}

export function credentials(c: Caller, guard: Guard): InstanceCredentials {
  return { instanceToken: c.instanceToken, writer: guard.writer(c) };
}

