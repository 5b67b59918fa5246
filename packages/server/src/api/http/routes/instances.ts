import type { FastifyInstance } from 'fastify';
import type { HeartbeatItem } from '@muster/api';
import { Type } from '@sinclair/typebox';
import { callerOf, credentials, requestContexts, type HttpDeps } from '../context.js';
import {
  HeartbeatBatchBody, HeartbeatBatchReply, IdParams, Instance, InstancePatchBody, RegisterBody, RegisterReply, SvcParams, errors,
} from '../schemas.js';

const auth: Array<Record<string, string[]>> = [{ heartbeatToken: [] }, { accessToken: [] }];

export function instanceRoutes(app: FastifyInstance, { naming, guard, limits, config }: HttpDeps): void {
  const contextOf = requestContexts(config.limits.writeWait);
  const scopeOf = (id: string) => (): readonly [string, string] => {
    const i = naming.getInstance(id);
    return [i.namespace, i.service];
  };
  const tags = ['instances'];
  app.post<{ Params: { ns: string; svc: string } }>('/v1/namespaces/:ns/services/:svc/instances', {
    config: { access: 'clientWrite' },
    schema: {
      tags, summary: 'Register an instance: 201 new, 200 re-registration of the same endpoint',
      description: 'Re-registering an existing instance needs its heartbeatToken as a Bearer token (or an access token with write on the service), unless the instance is no longer healthy (then the caller takes it over and gets a new token). With auth.clients required, a new registration needs an access token with write on the service. '
        + 'In a service with verification, the instance is pending (invisible) until the registry has checked it at host:port; a host that is a link-local or cloud metadata address is refused (400, field host). Changing an existing instance\'s isolation needs an access token with write, as on PATCH.',
      security: auth, params: SvcParams, body: RegisterBody, response: { 200: RegisterReply, 201: RegisterReply, ...errors(400, 401, 403, 404, 409, 429) },
    },
  }, async (req, reply) => {
    const { ns, svc } = req.params;
    const c = callerOf(req, guard);
    const { ownerOnly } = guard.requireRegistration(c, ns, svc);
    await limits.write(c);
    const r = await naming.register(ns, svc, req.body, { ...credentials(c, guard), ownerOnly, mayIsolate: guard.mayIsolate(c, ns, svc), caller: limits.clientOf(c) }, contextOf(req, reply));
    return reply.code(r.created ? 201 : 200).send(r);
  });

  app.get<{ Params: { id: string } }>('/v1/instances/:id', {
    schema: { tags, summary: 'One instance', params: IdParams, response: { 200: Instance, ...errors(400, 401, 403, 404) } },
  }, async (req) => {
    guard.requireClient(callerOf(req, guard), 'read', scopeOf(req.params.id));
    return naming.getInstance(req.params.id);
  });

  app.patch<{ Params: { id: string } }>('/v1/instances/:id', {
    schema: {
      tags, summary: 'Change weight, priority, isolation or metadata (needs the heartbeatToken or write on the service; isolation needs an access token with write)', security: auth,
      params: IdParams, body: InstancePatchBody, response: { 200: Instance, ...errors(400, 401, 403, 404, 429) },
    },
  }, async (req, reply) => {
    const c = callerOf(req, guard);
    // Taking an instance out of traffic is an operator's decision, not the instance's own.
    if ((req.body as { isolate?: boolean }).isolate !== undefined) guard.requireManagement(c, 'write', scopeOf(req.params.id));
    await limits.write(c);
    return naming.patchInstance(req.params.id, req.body, credentials(c, guard), contextOf(req, reply));
  });

  app.delete<{ Params: { id: string } }>('/v1/instances/:id', {
    schema: { tags, summary: 'Deregister (needs the heartbeatToken or write on the service)', security: auth, params: IdParams, response: { 204: Type.Null(), ...errors(400, 401, 403, 404, 429) } },
  }, async (req, reply) => {
    const c = callerOf(req, guard);
    await limits.write(c);
    await naming.deregister(req.params.id, credentials(c, guard), contextOf(req, reply));
    return reply.code(204).send();
  });

  app.put<{ Params: { id: string } }>('/v1/instances/:id/heartbeat', {
    schema: {
      tags, summary: 'Heartbeat (needs the heartbeatToken); 404 means register again', security: auth,
      params: IdParams, response: { 204: Type.Null(), ...errors(401, 403, 404) },
    },
  }, async (req, reply) => {
    const c = callerOf(req, guard);
    await naming.heartbeat(req.params.id, c.instanceToken, guard.writer(c), contextOf(req, reply));
    return reply.code(204).send();
  });

  app.post<{ Body: { heartbeats: HeartbeatItem[] } }>('/v1/heartbeats', {
    schema: {
      tags, summary: 'Many heartbeats in one request, each with its instance\'s token; a result per item. A Bearer access token with write on a service also admits that service\'s items',
      body: HeartbeatBatchBody, response: { 200: HeartbeatBatchReply, ...errors(400, 401) },
    },
  }, async (req, reply) => naming.heartbeatBatch(req.body.heartbeats, guard.writer(callerOf(req, guard)), contextOf(req, reply)));
}
