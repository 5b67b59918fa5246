import type { FastifyRequest } from 'fastify';
import type { ClusterStatus } from '@muster/api';
import type { MusterConfig } from '../../config/config.js';
import type { Metrics } from '../../metrics/metrics.js';
import type { NamingService } from '../../naming/naming-service.js';
import type { WatchHub } from '../../watch/watch-hub.js';

/** What the HTTP routes may call: the domain and the watch hub, never the store or the index. */
export interface HttpDeps {
  naming: NamingService;
  hub: WatchHub;
  metrics: Metrics;
  config: MusterConfig;
  readiness(): Promise<{ ready: boolean; checks: Record<string, string> }>;
  cluster(): Promise<ClusterStatus>;
  /** Why discovery answers may be behind other nodes' writes (cluster mode, store unreadable); undefined when current. */
  staleness(): string | undefined;
}

/** The Bearer token of a request, if any. */
export function bearerToken(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? m[1] : undefined;
}
