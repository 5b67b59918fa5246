import { performance } from 'node:perf_hooks';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ClusterStatus } from '@muster/api';
import type { ArrivalClock } from '../arrival-clock.js';
import type { AccessTokenService } from '../../auth/access-token-service.js';
import type { AuditLog } from '../../auth/audit-log.js';
import type { Caller, Guard } from '../../auth/guard.js';
import type { RateLimits } from '../../auth/rate-limits.js';
import type { RequestContext } from '../../batch/request-context.js';
import type { AppliedRevision } from '../../index/applied-revision.js';
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
  /** When each request arrived. */
  arrivals: ArrivalClock;
  /** How far this node has applied the change sequence: a request's minRevision waits on it. */
  applied: AppliedRevision;
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


const RECEIVED = Symbol('muster.received');
const CONTEXT = Symbol('muster.context');
type WithContext = FastifyRequest & { [RECEIVED]?: number; [CONTEXT]?: RequestContext };

/** Notes when a request arrived (ArrivalClock): first thing, before anything of it is read. */
export function noteArrival(req: FastifyRequest, at: number): void {
  (req as WithContext)[RECEIVED] = at;
}

/**
 * The context of each request that writes or heartbeats, made on first use: a write is applied
 * only while the client is connected and within `writeWaitMs` of the request's arrival.
 */
export function requestContexts(writeWaitMs: number): (req: FastifyRequest, reply: FastifyReply) => RequestContext {
  return (req, reply) => {
    const r = req as WithContext;
    if (r[CONTEXT]) return r[CONTEXT];
    const receivedAt = r[RECEIVED] ?? performance.now();
    const res = reply.raw;
    // A response destroyed before it was sent: the client closed the connection.
    return (r[CONTEXT] = { receivedAt, deadline: receivedAt + writeWaitMs, gone: () => res.destroyed });
  };
}

/** The context of the request, if it wrote or heartbeat. */
export function contextIfAny(req: FastifyRequest): RequestContext | undefined {
  return (req as WithContext)[CONTEXT];
}
