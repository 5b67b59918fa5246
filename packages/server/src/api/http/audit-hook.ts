import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuditLog } from '../../auth/audit-log.js';
import { Guard } from '../../auth/guard.js';
import { knownCaller } from './context.js';

/** Writes of the client APIs: the traffic itself, not management; refusals of them are still audited. */
const CLIENT_WRITES = new Set([
  'POST /v1/namespaces/:ns/services/:svc/instances',
  'PUT /v1/instances/:id/heartbeat',
  'POST /v1/heartbeats',
]);
/** Done with the instance's own token, these are the instance's lifecycle; with an access token, an operator's action. */
const INSTANCE_WRITES = new Set(['PATCH /v1/instances/:id', 'DELETE /v1/instances/:id']);

const REASON = Symbol('muster.refusal');
type WithReason = FastifyRequest & { [REASON]?: { code: string; message: string } };

/** The error handler keeps why a request was refused, for the audit entry written when it ends. */
export function noteRefusal(req: FastifyRequest, code: string, message: string): void {
  (req as WithReason)[REASON] = { code, message };
}

/**
 * Every management action (a write that is not client traffic) and every refused request
 * (401, 403, 429) becomes an audit entry: who, what, and how it ended.
 */
export function auditResponse(audit: AuditLog, req: FastifyRequest, reply: FastifyReply, route: string): void {
  const status = reply.statusCode;
  const refused = status === 401 || status === 403 || status === 429;
  const action = `${req.method} ${route}`;
  const caller = knownCaller(req);
  if (!refused) {
    if (status >= 400 || req.method === 'GET' || req.method === 'HEAD' || CLIENT_WRITES.has(action)) return;
    if (INSTANCE_WRITES.has(action) && !caller?.principal) return;
  }
  const params = (req.params ?? {}) as { ns?: string; svc?: string; id?: string };
  const body = req.body as { name?: unknown } | undefined;
  const created = route === '/v1/namespaces' && req.method === 'POST' && typeof body?.name === 'string' ? body.name : undefined;
  const why = (req as WithReason)[REASON];
  audit.record({
    who: caller ? Guard.who(caller) : `anonymous@${req.ip}`,
    address: req.ip,
    action: route === 'unknown' ? `${req.method} ${req.url.split('?')[0]}` : action,
    outcome: refused ? 'refused' : 'ok',
    ...(refused && why ? { code: why.code, reason: why.message } : {}),
    namespace: params.ns ?? created ?? '*',
    ...(params.svc !== undefined ? { service: params.svc } : {}),
    ...(params.id !== undefined && route.startsWith('/v1/instances/') ? { instanceId: params.id } : {}),
  });
}
