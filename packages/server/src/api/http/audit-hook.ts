import type { FastifyReply, FastifyRequest } from 'fastify';
import { inboundOf, type HttpDeps } from './context.js';

const REASON = Symbol('muster.refusal');
type WithReason = FastifyRequest & { [REASON]?: { code: string; message: string } };

/** The error handler keeps why a request was refused, for the audit entry written when it ends. */
export function noteRefusal(req: FastifyRequest, code: string, message: string): void {
  (req as WithReason)[REASON] = { code, message };
}

/**
 * Tells the pipeline how a request ended (401, 403 and 429 are refusals), for the audit trail;
 * what an entry says of the request is worked out only when one is written.
 */
export function auditResponse(
  { pipeline }: Pick<HttpDeps, 'pipeline'>,
  req: FastifyRequest,
  reply: FastifyReply,
  route: string,
): void {
  const status = reply.statusCode;
  const refused = status === 401 || status === 403 || status === 429;
  const outcome = refused ? 'refused' : status >= 400 ? 'failed' : 'ok';
  const op = req.routeOptions.config?.op;
  const inbound = inboundOf(req, reply);
  // Registrations and heartbeats end here by the thousand: nothing is built for them.
  if (!pipeline.audits(op, inbound, outcome)) return;
  const why = refused ? (req as WithReason)[REASON] : undefined;
  pipeline.finished(op, inbound, { outcome, ...(why ? { code: why.code, reason: why.message } : {}) }, () => {
    const params = (req.params ?? {}) as { ns?: string; svc?: string; id?: string };
    const body = req.body as { name?: unknown } | undefined;
    const created =
      route === '/v1/namespaces' && req.method === 'POST' && typeof body?.name === 'string' ? body.name : undefined;
    return {
      action: route === 'unknown' ? `${req.method} ${req.url.split('?')[0]}` : `${req.method} ${route}`,
      namespace: params.ns ?? created ?? '*',
      ...(params.svc !== undefined ? { service: params.svc } : {}),
      ...(params.id !== undefined && route.startsWith('/v1/instances/') ? { instanceId: params.id } : {}),
    };
  });
}
