import type { FastifyInstance } from 'fastify';
import { ALL } from '../../../auth/rules.js';
import { onlyThisHost } from '../../../config/config.js';
import type { HttpDeps, HttpOperation } from '../context.js';
import { errors } from '../schemas.js';

export function systemRoutes(app: FastifyInstance, { metrics, readiness, config }: HttpDeps): void {
  app.get('/healthz', { schema: { tags: ['system'], summary: 'Liveness: the process answers' } }, async () => ({
    status: 'ok',
  }));

  app.get(
    '/readyz',
    { schema: { tags: ['system'], summary: 'Readiness: store reachable and index loaded; 503 otherwise' } },
    async (_req, reply) => {
      const r = await readiness();
      return reply.code(r.ready ? 200 : 503).send(r);
    },
  );

  // The metrics tell how big the registry is, how it is used and what it refuses, and count
  // verification failures by their exact kind: for operators, not for whoever reaches the port.
  const tokenRequired = config.metrics.auth === 'required' || (config.metrics.auth === 'auto' && !onlyThisHost(config));
  const scrape: HttpOperation = tokenRequired
    ? { kind: 'manage', rights: () => [{ level: 'read', on: [ALL, ALL] }] }
    : { kind: 'public' };
  app.get(
    '/metrics',
    {
      config: { op: scrape },
      schema: {
        tags: ['system'],
        summary: 'Prometheus metrics (metrics.auth: an access token with read:*/* may be needed)',
        response: { ...errors(401, 403) },
      },
    },
    async (_req, reply) => {
      return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    },
  );
}
