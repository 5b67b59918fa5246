import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ALL } from '../../../auth/rules.js';
import { callerOf, requestContexts, type HttpDeps } from '../context.js';
import { NsParams, Service, ServiceBody, ServicePatchBody, SvcParams, errors } from '../schemas.js';

export function serviceRoutes(app: FastifyInstance, { naming, guard, limits, config }: HttpDeps): void {
  const tags = ['services'];
  const contextOf = requestContexts(config.limits.writeWait);
  app.post<{ Params: { ns: string } }>('/v1/namespaces/:ns/services', {
    config: { access: 'management' },
    schema: { tags, summary: 'Create a service', params: NsParams, body: ServiceBody, response: { 201: Service, ...errors(400, 401, 403, 404, 409, 429) } },
  }, async (req, reply) => {
    const c = callerOf(req, guard);
    guard.requireManagement(c, 'admin', [req.params.ns, (req.body as { name: string }).name]);
    await limits.write(c);
    return reply.code(201).send(await naming.createService(req.params.ns, req.body, contextOf(req, reply)));
  });

  app.get<{ Params: { ns: string }; Querystring: { offset: number; limit: number; name?: string } }>('/v1/namespaces/:ns/services', {
    config: { access: 'management' },
    schema: {
      tags, summary: 'List services with their instance counts', params: NsParams,
      querystring: Type.Object({
        offset: Type.Integer({ minimum: 0, default: 0 }),
        limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
        name: Type.Optional(Type.String({ description: 'name prefix' })),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ total: Type.Integer(), services: Type.Array(Service) }), ...errors(400, 401, 403, 404) },
    },
  }, async (req) => {
    const c = callerOf(req, guard);
    guard.requireManagement(c);
    const ns = req.params.ns;
    if (!guard.sees(c, ns)) guard.requireManagement(c, 'read', [ns, ALL]);
    const q: { offset: number; limit: number; prefix?: string; visible?: (svc: string) => boolean } = { offset: req.query.offset, limit: req.query.limit };
    if (req.query.name !== undefined) q.prefix = req.query.name;
    if (guard.enabled) q.visible = (svc) => guard.sees(c, ns, svc);
    return naming.listServices(ns, q);
  });

  app.get<{ Params: { ns: string; svc: string } }>('/v1/namespaces/:ns/services/:svc', {
    config: { access: 'management' },
    schema: { tags, summary: 'One service', params: SvcParams, response: { 200: Service, ...errors(400, 401, 403, 404) } },
  }, async (req) => {
    guard.requireManagement(callerOf(req, guard), 'read', [req.params.ns, req.params.svc]);
    return naming.getService(req.params.ns, req.params.svc);
  });

  app.patch<{ Params: { ns: string; svc: string } }>('/v1/namespaces/:ns/services/:svc', {
    config: { access: 'management' },
    schema: { tags, summary: 'Change a service\'s comment, metadata or verification', params: SvcParams, body: ServicePatchBody, response: { 200: Service, ...errors(400, 401, 403, 404, 429) } },
  }, async (req, reply) => {
    const c = callerOf(req, guard);
    guard.requireManagement(c, 'admin', [req.params.ns, req.params.svc]);
    await limits.write(c);
    return naming.patchService(req.params.ns, req.params.svc, req.body, contextOf(req, reply));
  });

  app.delete<{ Params: { ns: string; svc: string }; Querystring: { force: boolean } }>('/v1/namespaces/:ns/services/:svc', {
    config: { access: 'management' },
    schema: {
      tags, summary: 'Delete a service (refused while it has instances unless force=true)', params: SvcParams,
      querystring: Type.Object({ force: Type.Boolean({ default: false }) }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...errors(400, 401, 403, 404, 409, 429) },
    },
  }, async (req, reply) => {
    const c = callerOf(req, guard);
    guard.requireManagement(c, 'admin', [req.params.ns, req.params.svc]);
    await limits.write(c);
    await naming.deleteService(req.params.ns, req.params.svc, req.query.force, contextOf(req, reply));
    return reply.code(204).send();
  });
}
