import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ALL } from '../../../auth/rules.js';
import { callerOf, requestContexts, type HttpDeps } from '../context.js';
import { Namespace, NamespaceBody, NsParams, errors } from '../schemas.js';

export function namespaceRoutes(app: FastifyInstance, { naming, guard, limits, config }: HttpDeps): void {
  const tags = ['namespaces'];
  const contextOf = requestContexts(config.limits.writeWait);
  app.post('/v1/namespaces', {
    config: { access: 'management' },
    schema: { tags, summary: 'Create a namespace', body: NamespaceBody, response: { 201: Namespace, ...errors(400, 401, 403, 409, 429) } },
  }, async (req, reply) => {
    const c = callerOf(req, guard);
    guard.requireManagement(c, 'admin', [(req.body as { name: string }).name, ALL]);
    await limits.write(c);
    return reply.code(201).send(await naming.createNamespace(req.body, contextOf(req, reply)));
  });

  app.get('/v1/namespaces', {
    config: { access: 'management' },
    schema: { tags, summary: 'List namespaces', response: { 200: Type.Object({ namespaces: Type.Array(Namespace) }), ...errors(401) } },
  }, async (req) => {
    const c = callerOf(req, guard);
    guard.requireManagement(c);
    return { namespaces: naming.listNamespaces().filter((n) => guard.sees(c, n.name)) };
  });

  app.get<{ Params: { ns: string } }>('/v1/namespaces/:ns', {
    config: { access: 'management' },
    schema: { tags, summary: 'One namespace', params: NsParams, response: { 200: Namespace, ...errors(400, 401, 403, 404) } },
  }, async (req) => {
    const c = callerOf(req, guard);
    guard.requireManagement(c);
    if (!guard.sees(c, req.params.ns)) guard.requireManagement(c, 'read', [req.params.ns, ALL]);
    return naming.getNamespace(req.params.ns);
  });

  app.delete<{ Params: { ns: string } }>('/v1/namespaces/:ns', {
    config: { access: 'management' },
    schema: { tags, summary: 'Delete a namespace (refused while it has services)', params: NsParams, response: { 204: Type.Null(), ...errors(400, 401, 403, 404, 409, 429) } },
  }, async (req, reply) => {
    const c = callerOf(req, guard);
    guard.requireManagement(c, 'admin', [req.params.ns, ALL]);
    await limits.write(c);
    await naming.deleteNamespace(req.params.ns, contextOf(req, reply));
    return reply.code(204).send();
  });
}
