import type { Caller } from '../../auth/guard.js';
import { performance } from 'node:perf_hooks';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ClusterStatus } from '@muster/api';
import type { ArrivalClock } from '../arrival-clock.js';
import type { AccessTokenService } from '../../auth/access-token-service.js';
import type { ServerResponse } from 'node:http';
import type { RequestContext } from '../../batch/request-context.js';
import { Errors } from '../../errors.js';
import type { AppliedRevision } from '../../index/applied-revision.js';
import type { Grant } from '../../pipeline/grant.js';
import type { Inbound } from '../../pipeline/inbound.js';
import type { Operation } from '../../pipeline/operation.js';
import type { RequestPipeline } from '../../pipeline/request-pipeline.js';
import type { MusterConfig } from '../../config/config.js';
import type { Metrics } from '../../metrics/metrics.js';
import type { RateHistory } from '../../metrics/rate-history.js';
import type { NamingService } from '../../naming/naming-service.js';
import type { WatchHub } from '../../watch/watch-hub.js';

/** What an HTTP route is to the request pipeline; a route without one is public. */
export type HttpOperation = Operation<FastifyRequest>;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What the route is: the pipeline applies auth, limits, audit and long-poll to it. */
    op?: HttpOperation;
  }
}

/** What the HTTP routes may call: the domain, the pipeline and the watch hub, never the store or the index. */
export interface HttpDeps {
  naming: NamingService;
  /** Auth, limits, audit and long-poll: every route goes through it. */
  pipeline: RequestPipeline;
  tokens: AccessTokenService;
  /** For the SSE streams' subscriptions; long-polls park in the pipeline. */
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

/** What each HTTP request is to the pipeline: made once, at its arrival (or at its first refusal). */
class HttpInbound implements Inbound {
  caller: Caller | undefined = undefined;
  constructor(
    private readonly req: FastifyRequest,
    private readonly res: ServerResponse,
    readonly receivedAt: number,
  ) {}

  get authorization(): unknown {
    return this.req.headers.authorization;
  }

  get address(): string {
    return this.req.ip;
  }

  // A response destroyed before it was sent: the client closed the connection.
  gone(): boolean {
    return this.res.destroyed;
  }

  onGone(fn: () => void): () => void {
    this.res.once('close', fn);
    return () => this.res.off('close', fn);
  }
}

const INBOUND = Symbol('muster.inbound');
const GRANT = Symbol('muster.grant');
type WithPipeline = FastifyRequest & { [INBOUND]?: Inbound; [GRANT]?: Grant };

/** Notes when a request arrived (ArrivalClock): first thing, before anything of it is read. */
export function noteArrival(req: FastifyRequest, reply: FastifyReply, at: number): Inbound {
  return ((req as WithPipeline)[INBOUND] = new HttpInbound(req, reply.raw, at));
}

/** The request as the pipeline knows it (one refused before its arrival was noted: as of now). */
export function inboundOf(req: FastifyRequest, reply: FastifyReply): Inbound {
  return (req as WithPipeline)[INBOUND] ?? noteArrival(req, reply, performance.now());
}

/** What the pipeline admitted the request with: set before any handler runs. */
export function grantOf(req: FastifyRequest): Grant {
  const g = (req as WithPipeline)[GRANT];
  if (!g) throw Errors.internal(new Error(`no grant for ${req.method} ${req.url}: the pipeline did not run`));
  return g;
}

export function setGrant(req: FastifyRequest, grant: Grant): void {
  (req as WithPipeline)[GRANT] = grant;
}

/** The context of the request, if it wrote or heartbeat. */
export function contextIfAny(req: FastifyRequest): RequestContext | undefined {
  return (req as WithPipeline)[GRANT]?.contextIfAny;
}
