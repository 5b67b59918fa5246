import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { HeartbeatItem } from '@muster/api';
import { Type } from '@sinclair/typebox';
import { grantOf, type HttpDeps, type HttpOperation } from '../context.js';
import {
  HeartbeatBatchBody,
  HeartbeatBatchReply,
  IdParams,
  Instance,
  InstancePatchBody,
  RegisterBody,
  RegisterReply,
  SvcParams,
  errors,
} from '../schemas.js';

const auth: Array<Record<string, string[]>> = [{ heartbeatToken: [] }, { accessToken: [] }];

const idOf = (req: FastifyRequest) => (req.params as { id: string }).id;

export function instanceRoutes(app: FastifyInstance, { naming }: HttpDeps): void {
  /** An instance's service, looked up only once the caller is known: an anonymous caller learns nothing of what exists. */
  const serviceOf = (req: FastifyRequest) => (): readonly [string, string] => {
    const i = naming.getInstance(idOf(req));
    return [i.namespace, i.service];
  };
  const register: HttpOperation = {
    kind: 'register',
    on: (req) => {
      const p = req.params as { ns: string; svc: string };
      return [p.ns, p.svc];
    },
  };
  const read: HttpOperation = { kind: 'read', on: serviceOf };
  // Taking an instance out of traffic is an operator's decision, not the instance's own.
  const patch: HttpOperation = {
    kind: 'write',
    manage: (req) =>
      (req.body as { isolate?: boolean }).isolate !== undefined ? { level: 'write', on: serviceOf(req) } : undefined,
  };
  const deregister: HttpOperation = { kind: 'write' };
  const heartbeat: HttpOperation = { kind: 'heartbeat' };
  const tags = ['instances'];
  app.post<{ Params: { ns: string; svc: string } }>(
    '/v1/namespaces/:ns/services/:svc/instances',
    {
      config: { op: register },
      schema: {
        tags,
        summary: 'Register an instance: 201 new, 200 re-registration of the same endpoint',
        description:
          'Re-registering an existing instance needs its heartbeatToken as a Bearer token (or an access token with write on the service), unless the instance is no longer healthy (then the caller takes it over and gets a new token). With auth.clients required, a new registration needs an access token with write on the service. ' +
          "In a service with verification, the instance is pending (invisible) until the registry has checked it at host:port; a host that is a link-local or cloud metadata address is refused (400, field host). Changing an existing instance's isolation needs an access token with write, as on PATCH.",
        security: auth,
        params: SvcParams,
        body: RegisterBody,
        response: { 200: RegisterReply, 201: RegisterReply, ...errors(400, 401, 403, 404, 409, 429) },
      },
    },
    async (req, reply) => {
      const { ns, svc } = req.params;
      const g = grantOf(req);
      const r = await naming.register(
        ns,
        svc,
        req.body,
        { ...g.credentials(), ownerOnly: g.ownerOnly, mayIsolate: g.mayIsolate(ns, svc), caller: g.client },
        g.context(),
      );
      return reply.code(r.created ? 201 : 200).send(r);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/instances/:id',
    {
      config: { op: read },
      schema: {
        tags,
        summary: 'One instance',
        params: IdParams,
        response: { 200: Instance, ...errors(400, 401, 403, 404) },
      },
    },
    async (req) => naming.getInstance(req.params.id),
  );

  app.patch<{ Params: { id: string } }>(
    '/v1/instances/:id',
    {
      config: { op: patch },
      schema: {
        tags,
        summary:
          'Change weight, priority, isolation or metadata (needs the heartbeatToken or write on the service; isolation needs an access token with write)',
        security: auth,
        params: IdParams,
        body: InstancePatchBody,
        response: { 200: Instance, ...errors(400, 401, 403, 404, 429) },
      },
    },
    async (req) => {
      const g = grantOf(req);
      return naming.patchInstance(req.params.id, req.body, g.credentials(), g.context());
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/instances/:id',
    {
      config: { op: deregister },
      schema: {
        tags,
        summary: 'Deregister (needs the heartbeatToken or write on the service)',
        security: auth,
        params: IdParams,
        response: { 204: Type.Null(), ...errors(400, 401, 403, 404, 429) },
      },
    },
    async (req, reply) => {
      const g = grantOf(req);
      await naming.deregister(req.params.id, g.credentials(), g.context());
      return reply.code(204).send();
    },
  );

  app.put<{ Params: { id: string } }>(
    '/v1/instances/:id/heartbeat',
    {
      config: { op: heartbeat },
      schema: {
        tags,
        summary: 'Heartbeat (needs the heartbeatToken); 404 means register again',
        security: auth,
        params: IdParams,
        response: { 204: Type.Null(), ...errors(401, 403, 404) },
      },
    },
    async (req, reply) => {
      const { instanceToken, writer } = grantOf(req).credentials();
      await naming.heartbeat(req.params.id, instanceToken, writer, grantOf(req).context());
      return reply.code(204).send();
    },
  );

  app.post<{ Body: { heartbeats: HeartbeatItem[] } }>(
    '/v1/heartbeats',
    {
      config: { op: heartbeat },
      schema: {
        tags,
        summary:
          "Many heartbeats in one request, each with its instance's token; a result per item. A Bearer access token with write on a service also admits that service's items",
        body: HeartbeatBatchBody,
        response: { 200: HeartbeatBatchReply, ...errors(400, 401) },
      },
    },
    async (req) =>
      naming.heartbeatBatch(req.body.heartbeats, grantOf(req).credentials().writer, grantOf(req).context()),
  );
}
