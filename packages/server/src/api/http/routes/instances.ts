import type { FastifyInstance } from 'fastify';
import type { HeartbeatItem } from '@muster/api';
import { Type } from '@sinclair/typebox';
import type { HttpDeps } from '../context.js';
import { bearerToken } from '../context.js';
import {
  HeartbeatBatchBody, HeartbeatBatchReply, IdParams, Instance, InstancePatchBody, RegisterBody, RegisterReply, SvcParams, errors,
} from '../schemas.js';

const auth = [{ heartbeatToken: [] as string[] }];

export function instanceRoutes(app: FastifyInstance, { naming }: HttpDeps): void {
  const tags = ['instances'];
  app.post<{ Params: { ns: string; svc: string } }>('/v1/namespaces/:ns/services/:svc/instances', {
    schema: {
      tags, summary: 'Register an instance: 201 new, 200 re-registration of the same endpoint',
      description: 'Re-registering an existing instance needs its heartbeatToken as a Bearer token, unless the instance is no longer healthy (then the caller takes it over and gets a new token). '
        + 'In a service with verification, the instance is pending (invisible) until the registry has checked it at host:port; a host that is a link-local or cloud metadata address is refused (400, field host).',
      params: SvcParams, body: RegisterBody, response: { 200: RegisterReply, 201: RegisterReply, ...errors(400, 403, 404, 409) },
    },
  }, async (req, reply) => {
    const r = await naming.register(req.params.ns, req.params.svc, req.body, bearerToken(req));
    return reply.code(r.created ? 201 : 200).send(r);
  });

  app.get<{ Params: { id: string } }>('/v1/instances/:id', {
    schema: { tags, summary: 'One instance', params: IdParams, response: { 200: Instance, ...errors(400, 404) } },
  }, async (req) => naming.getInstance(req.params.id));

  app.patch<{ Params: { id: string } }>('/v1/instances/:id', {
    schema: {
      tags, summary: 'Change weight, priority, isolation or metadata (needs the heartbeatToken)', security: auth,
      params: IdParams, body: InstancePatchBody, response: { 200: Instance, ...errors(400, 401, 403, 404) },
    },
  }, async (req) => naming.patchInstance(req.params.id, req.body, bearerToken(req)));

  app.delete<{ Params: { id: string } }>('/v1/instances/:id', {
    schema: { tags, summary: 'Deregister (needs the heartbeatToken)', security: auth, params: IdParams, response: { 204: Type.Null(), ...errors(400, 401, 403, 404) } },
  }, async (req, reply) => {
    await naming.deregister(req.params.id, bearerToken(req));
    return reply.code(204).send();
  });

  app.put<{ Params: { id: string } }>('/v1/instances/:id/heartbeat', {
    schema: {
      tags, summary: 'Heartbeat (needs the heartbeatToken); 404 means register again', security: auth,
      params: IdParams, response: { 204: Type.Null(), ...errors(401, 403, 404) },
    },
  }, async (req, reply) => {
    await naming.heartbeat(req.params.id, bearerToken(req));
    return reply.code(204).send();
  });

  app.post<{ Body: { heartbeats: HeartbeatItem[] } }>('/v1/heartbeats', {
    schema: { tags, summary: 'Many heartbeats in one request, each with its instance\'s token; a result per item', body: HeartbeatBatchBody, response: { 200: HeartbeatBatchReply, ...errors(400) } },
  }, async (req) => naming.heartbeatBatch(req.body.heartbeats));
}
