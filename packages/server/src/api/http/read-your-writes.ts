import type { FastifyInstance, FastifyRequest } from 'fastify';
import { MIN_REVISION_HEADER, MIN_REVISION_PARAM, REVISION_HEADER } from '@muster/api';
import { Errors } from '../../errors.js';
import { contextIfAny, type HttpDeps } from './context.js';

const MIN_REVISION = Symbol('muster.minRevision');
type WithMin = FastifyRequest & { [MIN_REVISION]?: unknown };

/**
 * Read-your-writes on every route (DESIGN, cluster mode). A write answers the revision it
 * committed in `x-muster-revision` (a write that changed nothing: the revision this node has
 * applied). A request carrying one, as `x-muster-min-revision` or `?minRevision=`, is handled
 * only once this node has applied it: within cluster.revisionWait, or it answers UNAVAILABLE.
 */
export function readYourWrites(app: FastifyInstance, { applied, config }: HttpDeps): void {
  // The parameter belongs to every route: taken off the query before a route's own schema,
  // which refuses what it does not know, sees it.
  app.addHook('onRequest', (req, _reply, done) => {
    const q = req.query as Record<string, unknown> | undefined;
    if (q && MIN_REVISION_PARAM in q) {
      (req as WithMin)[MIN_REVISION] = q[MIN_REVISION_PARAM];
      delete q[MIN_REVISION_PARAM];
    }
    done();
  });

  app.addHook('preHandler', (req, _reply, done) => {
    const raw = (req as WithMin)[MIN_REVISION] ?? req.headers[MIN_REVISION_HEADER];
    if (raw === undefined) return done();
    const revision = typeof raw === 'string' && /^\d{1,15}$/.test(raw.trim()) ? Number(raw.trim()) : undefined;
    if (revision === undefined) return done(Errors.badMinRevision());
    applied.reach(revision, config.cluster.revisionWait).then(() => done(), done);
  });

  app.addHook('onSend', (req, reply, payload, done) => {
    const revision = contextIfAny(req)?.revision;
    if (revision !== undefined && reply.statusCode < 400) reply.header(REVISION_HEADER, String(revision || applied.get()));
    done(null, payload);
  });
}
