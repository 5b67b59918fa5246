import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ALL } from '../../../auth/rules.js';
import { grantOf, type HttpDeps, type HttpOperation } from '../context.js';
import { NsParams, Service, ServiceBody, ServicePatchBody, SvcParams, errors } from '../schemas.js';

type Params = { ns: string; svc: string };
const paramsOf = (req: FastifyRequest) => req.params as Params;
const adminOfService = (req: FastifyRequest) => [
  { level: 'admin' as const, on: [paramsOf(req).ns, paramsOf(req).svc] as const },
];

const create: HttpOperation = {
  kind: 'manage',
  writes: true,
  rights: (req) => [{ level: 'admin', on: [paramsOf(req).ns, (req.body as { name: string }).name] }],
};
const list: HttpOperation = {
  kind: 'manage',
  rights: (req) => [{ level: 'read', on: [paramsOf(req).ns, ALL], partly: true }],
};
const getOne: HttpOperation = {
  kind: 'manage',
  rights: (req) => [{ level: 'read', on: [paramsOf(req).ns, paramsOf(req).svc] }],
};
const change: HttpOperation = { kind: 'manage', writes: true, rights: adminOfService };

export function serviceRoutes(app: FastifyInstance, { naming }: HttpDeps): void {
  const tags = ['services'];
  app.post<{ Params: { ns: string } }>(
    '/v1/namespaces/:ns/services',
    {
      config: { op: create },
      schema: {
        tags,
        summary: 'Create a service',
        params: NsParams,
        body: ServiceBody,
        response: { 201: Service, ...errors(400, 401, 403, 404, 409, 429) },
      },
    },
    async (req, reply) =>
      reply.code(201).send(await naming.createService(req.params.ns, req.body, grantOf(req).context())),
  );

  app.get<{ Params: { ns: string }; Querystring: { offset: number; limit: number; name?: string } }>(
    '/v1/namespaces/:ns/services',
    {
      config: { op: list },
      schema: {
        tags,
        summary: 'List services with their instance counts',
        params: NsParams,
        querystring: Type.Object(
          {
            offset: Type.Integer({ minimum: 0, default: 0 }),
            limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
            name: Type.Optional(Type.String({ description: 'name prefix' })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ total: Type.Integer(), services: Type.Array(Service) }),
          ...errors(400, 401, 403, 404),
        },
      },
    },
    async (req) => {
      const ns = req.params.ns;
      const q: { offset: number; limit: number; prefix?: string; visible?: (svc: string) => boolean } = {
        offset: req.query.offset,
        limit: req.query.limit,
      };
      if (req.query.name !== undefined) q.prefix = req.query.name;
      const visible = grantOf(req).visibleIn(ns);
      if (visible) q.visible = visible;
      return naming.listServices(ns, q);
    },
  );

  app.get<{ Params: { ns: string; svc: string } }>(
    '/v1/namespaces/:ns/services/:svc',
    {
      config: { op: getOne },
      schema: {
        tags,
        summary: 'One service',
        params: SvcParams,
        response: { 200: Service, ...errors(400, 401, 403, 404) },
      },
    },
    async (req) => naming.getService(req.params.ns, req.params.svc),
  );

  app.patch<{ Params: { ns: string; svc: string } }>(
    '/v1/namespaces/:ns/services/:svc',
    {
      config: { op: change },
      schema: {
        tags,
        summary: "Change a service's comment, metadata or verification",
        params: SvcParams,
        body: ServicePatchBody,
        response: { 200: Service, ...errors(400, 401, 403, 404, 429) },
      },
    },
    async (req) => naming.patchService(req.params.ns, req.params.svc, req.body, grantOf(req).context()),
  );

  app.delete<{ Params: { ns: string; svc: string }; Querystring: { force: boolean } }>(
    '/v1/namespaces/:ns/services/:svc',
    {
      config: { op: change },
      schema: {
        tags,
        summary: 'Delete a service (refused while it has instances unless force=true)',
        params: SvcParams,
        querystring: Type.Object({ force: Type.Boolean({ default: false }) }, { additionalProperties: false }),
        response: { 204: Type.Null(), ...errors(400, 401, 403, 404, 409, 429) },
      },
    },
    async (req, reply) => {
      await naming.deleteService(req.params.ns, req.params.svc, req.query.force, grantOf(req).context());
      return reply.code(204).send();
    },
  );
}
