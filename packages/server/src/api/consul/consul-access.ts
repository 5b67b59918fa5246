import type { FastifyRequest } from 'fastify';
import { Errors } from '../../errors.js';
import type { InstanceCredentials } from '../../naming/naming-service.js';
import type { Grant } from '../../pipeline/grant.js';
import type { RequestPipeline } from '../../pipeline/request-pipeline.js';
import { CONSUL_NAMESPACE as NS } from './consul-names.js';
import type { Visible } from './consul-view.js';

/** Consul's token header; `?token=` is its other form. */
export const TOKEN_HEADER = 'x-consul-token';

/**
 * A Consul token is a Muster access token: given as the request's authorization, in Bearer form,
 * so that the pipeline applies Muster's token rules to it unchanged. An Authorization header the
 * client sent itself wins.
 */
export function consulTokenAsAuthorization(req: FastifyRequest): void {
  if (req.headers.authorization !== undefined) return;
  const header = req.headers[TOKEN_HEADER];
  const query = (req.query as Record<string, unknown> | undefined)?.['token'];
  const token = typeof header === 'string' && header !== '' ? header : typeof query === 'string' ? query : undefined;
  if (token !== undefined && token !== '') req.headers.authorization = `Bearer ${token}`;
}

/** What the Consul routes decide access with, beyond what the pipeline decided. */
export class ConsulAccess {
  constructor(private readonly pipeline: RequestPipeline) {}

  private get clientsRequired(): boolean {
    return this.pipeline.auth.enabled && this.pipeline.auth.clientsRequired;
  }

  /**
   * Consul clients often send no token, so the instances this adapter registered are its own: it
   * vouches for a change of one of them (write on its service, for that service only). With
   * auth.clients required it vouches for nothing: the caller's access token must have write on it.
   */
  credentials(g: Grant, service: string): InstanceCredentials {
    const own = g.credentials();
    if (this.clientsRequired) return own;
    return { ...own, writer: (ns, svc) => (ns === NS && svc === service) || (own.writer?.(ns, svc) ?? false) };
  }

  /** Which services a listing shows the caller. */
  visibleTo(g: Grant): Visible {
    if (g.caller?.principal) return g.visibleIn(NS);
    if (this.clientsRequired) throw Errors.unauthenticated('auth.clients is required');
    return undefined;
  }
}
