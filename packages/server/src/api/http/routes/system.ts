import type { FastifyInstance } from 'fastify';
import { ALL } from '../../../auth/rules.js';
import { onlyThisHost } from '../../../config/config.js';
import { callerOf, type HttpDeps } from '../context.js';
import { errors } from '../schemas.js';

export function systemRoutes(app: FastifyInstance, { metrics, readiness, guard, config }: HttpDeps): void {
  app.get('/healthz', { schema: { tags: ['system'], summary: 'Liveness: the process answers' } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { tags: ['system'], summary: 'Readiness: store reachable and index loaded; 503 otherwise' } }, async (_req, reply) => {
    const r = await readiness();
    return reply.code(r.ready ? 200 : 503).send(r);
  });

  // The metrics tell how big the registry is, how it is used and what it refuses, and count
  // verification failures by their exact kind: for operators, not for whoever reaches the port.
  const tokenRequired = config.metrics.auth === 'required' || (config.metrics.auth === 'auto' && !onlyThisHost(config));
  app.get('/metrics', {
    schema: { tags: ['system'], summary: 'Prometheus metrics (metrics.auth: an access token with read:*/* may be needed)', response: { ...errors(401, 403) } },
  }, async (req, reply) => {
    if (tokenRequired) guard.requireManagement(callerOf(req, guard), 'read', [ALL, ALL]);
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
}
