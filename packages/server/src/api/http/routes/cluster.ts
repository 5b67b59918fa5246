import type { FastifyInstance } from 'fastify';
import { ALL } from '../../../auth/rules.js';
import type { HttpDeps } from '../context.js';
import { errors } from '../schemas.js';

export function clusterRoutes(app: FastifyInstance, { cluster }: HttpDeps): void {
  app.get(
    '/v1/cluster',
    {
      config: { op: { kind: 'manage', rights: () => [{ level: 'read', on: [ALL, ALL] }] } },
      schema: {
        tags: ['system'],
        summary: 'The nodes of the cluster',
        description:
          'Each node with its addresses, version, when it was last seen, and which one holds the sweep lease. A single node lists itself.',
        response: { ...errors(401, 403, 503) },
      },
    },
    async () => cluster(),
  );
}
