import type { FastifyInstance } from 'fastify';
import type { HttpDeps } from '../context.js';

export function systemRoutes(app: FastifyInstance, { metrics, readiness }: HttpDeps): void {
  app.get('/healthz', { schema: { tags: ['system'], summary: 'Liveness: the process answers' } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { tags: ['system'], summary: 'Readiness: store reachable and index loaded; 503 otherwise' } }, async (_req, reply) => {
    const r = await readiness();
    return reply.code(r.ready ? 200 : 503).send(r);
  });

  app.get('/metrics', { schema: { tags: ['system'], summary: 'Prometheus metrics' } }, async (_req, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
}
