import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { HttpDeps } from '../context.js';
import { Namespace, NamespaceBody, NsParams, errors } from '../schemas.js';

export function namespaceRoutes(app: FastifyInstance, { naming }: HttpDeps): void {
  const tags = ['namespaces'];
  app.post('/v1/namespaces', {
    schema: { tags, summary: 'Create a namespace', body: NamespaceBody, response: { 201: Namespace, ...errors(400, 409) } },
  }, async (req, reply) => reply.code(201).send(await naming.createNamespace(req.body)));

  app.get('/v1/namespaces', {
    schema: { tags, summary: 'List namespaces', response: { 200: Type.Object({ namespaces: Type.Array(Namespace) }) } },
  }, async () => ({ namespaces: naming.listNamespaces() }));

  app.get<{ Params: { ns: string } }>('/v1/namespaces/:ns', {
    schema: { tags, summary: 'One namespace', params: NsParams, response: { 200: Namespace, ...errors(400, 404) } },
  }, async (req) => naming.getNamespace(req.params.ns));

  app.delete<{ Params: { ns: string } }>('/v1/namespaces/:ns', {
    schema: { tags, summary: 'Delete a namespace (refused while it has services)', params: NsParams, response: { 204: Type.Null(), ...errors(400, 404, 409) } },
  }, async (req, reply) => {
    await naming.deleteNamespace(req.params.ns);
    return reply.code(204).send();
  });
}
