import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ALL } from '../../../auth/rules.js';
import { grantOf, type HttpDeps, type HttpOperation } from '../context.js';
import { Namespace, NamespaceBody, NsParams, errors } from '../schemas.js';

type Params = { ns: string };
const nsOf = (req: FastifyRequest) => (req.params as Params).ns;

const create: HttpOperation = {
  kind: 'manage',
  writes: true,
  rights: (req) => [{ level: 'admin', on: [(req.body as { name: string }).name, ALL] }],
};
const list: HttpOperation = { kind: 'manage' };
const getOne: HttpOperation = {
  kind: 'manage',
  rights: (req) => [{ level: 'read', on: [nsOf(req), ALL], partly: true }],
};
const remove: HttpOperation = {
  kind: 'manage',
  writes: true,
  rights: (req) => [{ level: 'admin', on: [nsOf(req), ALL] }],
};

export function namespaceRoutes(app: FastifyInstance, { naming }: HttpDeps): void {
  const tags = ['namespaces'];
  app.post(
    '/v1/namespaces',
    {
      config: { op: create },
      schema: {
        tags,
        summary: 'Create a namespace',
        body: NamespaceBody,
        response: { 201: Namespace, ...errors(400, 401, 403, 409, 429) },
      },
    },
    async (req, reply) => reply.code(201).send(await naming.createNamespace(req.body, grantOf(req).context())),
  );

  app.get(
    '/v1/namespaces',
    {
      config: { op: list },
      schema: {
        tags,
        summary: 'List namespaces',
        response: { 200: Type.Object({ namespaces: Type.Array(Namespace) }), ...errors(401) },
      },
    },
    async (req) => {
      const grant = grantOf(req);
      return { namespaces: naming.listNamespaces().filter((n) => grant.sees(n.name)) };
    },
  );

  app.get<{ Params: { ns: string } }>(
    '/v1/namespaces/:ns',
    {
      config: { op: getOne },
      schema: {
        tags,
        summary: 'One namespace',
        params: NsParams,
        response: { 200: Namespace, ...errors(400, 401, 403, 404) },
      },
    },
    async (req) => naming.getNamespace(req.params.ns),
  );

  app.delete<{ Params: { ns: string } }>(
    '/v1/namespaces/:ns',
    {
      config: { op: remove },
      schema: {
        tags,
        summary: 'Delete a namespace (refused while it has services)',
        params: NsParams,
        response: { 204: Type.Null(), ...errors(400, 401, 403, 404, 409, 429) },
      },
    },
    async (req, reply) => {
      await naming.deleteNamespace(req.params.ns, grantOf(req).context());
      return reply.code(204).send();
    },
  );
}
