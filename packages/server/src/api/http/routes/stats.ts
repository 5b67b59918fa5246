import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { HttpDeps } from '../context.js';
import { errors } from '../schemas.js';

const Sample = Type.Object({
  at: Type.String({ description: 'end of the interval' }),
  registrations: Type.Number(),
  heartbeats: Type.Number(),
  discoveries: Type.Number(),
});

/** This node's request rates over the last minutes, as JSON: the console's chart. */
export function statsRoutes(app: FastifyInstance, { rates }: HttpDeps): void {
  app.get(
    '/v1/stats',
    {
      config: { op: { kind: 'manage' } },
      schema: {
        tags: ['system'],
        summary: 'Registrations, heartbeats and discoveries per second on this node, over the last minutes',
        description:
          'One sample per interval, oldest first, each the average rate over its interval. The same counters as /metrics (muster_registrations_total without rejected, muster_heartbeats_total ok, muster_discoveries_total).',
        response: { 200: Type.Object({ intervalMs: Type.Integer(), samples: Type.Array(Sample) }), ...errors(401) },
      },
    },
    async () => ({
      intervalMs: rates.intervalMs,
      samples: rates.list().map((s) => ({ ...s, at: new Date(s.at).toISOString() })),
    }),
  );
}
