import type { FastifyInstance, FastifyReply, FastifyRequest, onSendHookHandler } from 'fastify';
import { MIN_REVISION_HEADER, MIN_REVISION_PARAM, REVISION_HEADER } from '@muster/api';
import { contextIfAny, type HttpDeps } from './context.js';

/**
 * Read-your-writes on every route (DESIGN, cluster mode). A request carrying a revision, as
 * `x-muster-min-revision` or `?minRevision=`, is handled only once this node has applied it:
 * within cluster.revisionWait, or it answers UNAVAILABLE. Called first thing for every request;
 * undefined (nothing to wait for) for almost all of them.
 */
export function minRevisionWait(
  req: FastifyRequest,
  { pipeline }: Pick<HttpDeps, 'pipeline'>,
): Promise<void> | undefined {
  let raw: unknown = req.headers[MIN_REVISION_HEADER];
  const q = req.query as Record<string, unknown> | undefined;
  if (q && MIN_REVISION_PARAM in q) {
    // It belongs to every route: taken off the query before a route's own schema, which
    // refuses what it does not know, sees it.
    raw = q[MIN_REVISION_PARAM];
    delete q[MIN_REVISION_PARAM];
  }
  if (raw === undefined) return undefined;
  return pipeline.minRevision(typeof raw === 'string' ? raw : '');
}

/**
 * A write answers the revision it committed in `x-muster-revision` (one that changed nothing:
 * the revision this node has applied). Added to the routes that write only, so that reads pay
 * nothing for it.
 */
export function answerRevisions(app: FastifyInstance, { applied }: Pick<HttpDeps, 'applied'>): void {
  const onSend: onSendHookHandler = (req: FastifyRequest, reply: FastifyReply, payload, done) => {
    const revision = contextIfAny(req)?.revision;
    if (revision !== undefined && reply.statusCode < 400)
      reply.header(REVISION_HEADER, String(revision || applied.get()));
    done(null, payload);
  };
  app.addHook('onRoute', (route) => {
    const methods = [route.method].flat();
    if (methods.every((m) => m === 'GET' || m === 'HEAD')) return;
    route.onSend = [...(route.onSend ? [route.onSend].flat() : []), onSend];
  });
}
