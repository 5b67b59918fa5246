import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Instance } from '@muster/api';
import { Errors } from '../../errors.js';
import { VERSION } from '../../version.js';
import { grantOf, type HttpDeps, type HttpOperation } from '../http/context.js';
import type { ConsulAccess } from './consul-access.js';
import { ConsulErrors } from './consul-errors.js';
import { CONSUL_NAMESPACE as NS, findInstance, ownedByConsul } from './consul-names.js';
import { decodeRegistration, isCheckStatus, type ConsulRegistration } from './consul-registration.js';
import { agentInstances, agentService, checkIdOf, checksOf, DATACENTER, NODE } from './consul-view.js';

/** A registration is a few kilobytes; anything much larger is not one. */
export const REGISTRATION_BODY_LIMIT = 64 * 1024;

type IdReq = FastifyRequest<{ Params: { id: string }; Querystring: Record<string, unknown> }>;
type CheckReq = FastifyRequest<{ Params: { checkId: string }; Body: unknown }>;

/**
 * Consul's agent API over the naming service: service registration, TTL checks and maintenance.
 * Every route declares its operation, so the pipeline applies auth, limits and audit exactly as
 * on the native API; the handlers only translate.
 */
export function consulAgentRoutes(app: FastifyInstance, deps: HttpDeps, access: ConsulAccess, address: () => string) {
  const { naming } = deps;

  // Decoded once, by the operation's check, before anything else is asked of the request.
  const decoded = new WeakMap<FastifyRequest, ConsulRegistration>();
  const registration = (req: FastifyRequest): ConsulRegistration => {
    let r = decoded.get(req);
    if (!r) decoded.set(req, (r = decodeRegistration(req.body, req.ip)));
    return r;
  };

  /** The Consul-owned instance a service ID names; 404 as Consul answers an unknown ID. */
  const ownInstance = (id: string): Instance => {
    const found = findInstance(naming, id);
    if (!found) throw ConsulErrors.unknownService(id);
    if (!ownedByConsul(found)) throw ConsulErrors.notConsulOwned(id);
    return found;
  };

  /** The Consul-owned instance a check ID names: `service:{id}`, or the CheckID its registration gave. */
  const instanceOfCheck = (checkId: string): Instance => {
    const direct = checkId.startsWith('service:') ? findInstance(naming, checkId.slice('service:'.length)) : undefined;
    if (direct && ownedByConsul(direct) && checkIdOf(direct) === checkId) return direct;
    const found = agentInstances(naming, undefined).find((i) => checkIdOf(i) === checkId);
    if (!found) throw ConsulErrors.unknownCheck(checkId);
    return found;
  };

  const register: HttpOperation = {
    kind: 'register',
    check: (req) => void registration(req),
    on: (req) => [NS, registration(req).service],
  };
  const self: HttpOperation = { kind: 'self' };
  const write: HttpOperation = { kind: 'write' };
  const checkIn: HttpOperation = { kind: 'heartbeat' };
  // Maintenance is an operator's decision, as isolation is on the native API.
  const maintenance: HttpOperation = {
    kind: 'write',
    manage: (req) => ({ level: 'write', on: () => [NS, ownInstance((req as IdReq).params.id).service] }),
  };

  app.put(
    '/agent/service/register',
    { bodyLimit: REGISTRATION_BODY_LIMIT, config: { op: register } },
    async (req, reply) => {
      const r = registration(req);
      const g = grantOf(req);
      const existing = findInstance(naming, r.id);
      if (existing && !ownedByConsul(existing)) throw ConsulErrors.notConsulOwned(r.id);
      const creds = access.credentials(g, r.service);
      // Re-registered under another Name: Consul replaces the service, so the old one goes.
      if (existing && existing.service !== r.service)
        await naming.deregister(existing.id, access.credentials(g, existing.service), g.context());
      const { instance } = await naming.register(
        NS,
        r.service,
        r.request,
        { ...creds, ownerOnly: g.ownerOnly, caller: g.client },
        g.context(),
      );
      // A TTL check starts critical unless its registration says otherwise: not passing until checked in.
      if (r.initialStatus === 'critical')
        await naming.setHealth(instance.id, false, 'Consul check registered critical', undefined, g.context());
      return reply.code(200).send();
    },
  );

  app.put('/agent/service/deregister/:id', { config: { op: write } }, async (req: IdReq, reply) => {
    const inst = ownInstance(req.params.id);
    const g = grantOf(req);
    await naming.deregister(inst.id, access.credentials(g, inst.service), g.context());
    return reply.code(200).send();
  });

  app.put('/agent/service/maintenance/:id', { config: { op: maintenance } }, async (req: IdReq, reply) => {
    const enable = req.query['enable'];
    if (enable !== 'true' && enable !== 'false') throw ConsulErrors.badField('enable', 'true or false');
    const inst = ownInstance(req.params.id);
    const g = grantOf(req);
    await naming.patchInstance(
      inst.id,
      { isolate: enable === 'true' },
      access.credentials(g, inst.service),
      g.context(),
    );
    return reply.code(200).send();
  });

  app.get('/agent/services', { config: { op: self } }, async (req, reply) => {
    const all = agentInstances(naming, access.visibleTo(grantOf(req)));
    return reply.send(Object.fromEntries(all.map((i) => [agentService(i).ID, agentService(i)])));
  });

  app.get('/agent/checks', { config: { op: self } }, async (req, reply) => {
    const all = agentInstances(naming, access.visibleTo(grantOf(req)));
    return reply.send(Object.fromEntries(all.flatMap(checksOf).map((c) => [c.CheckID, c])));
  });

  app.get('/agent/self', { config: { op: self } }, async (_req, reply) =>
    reply.send({
      Config: { Datacenter: DATACENTER, NodeName: NODE, Server: true, Version: `muster-${VERSION}` },
      Member: { Name: NODE, Addr: address(), Tags: { role: 'consul', dc: DATACENTER } },
    }),
  );

  /** A pass (or warning: still in service on Muster) is a heartbeat. */
  const pass = async (req: CheckReq) => {
    const inst = instanceOfCheck(req.params.checkId);
    const g = grantOf(req);
    const creds = access.credentials(g, inst.service);
    await naming.heartbeat(inst.id, creds.instanceToken, creds.writer, g.context());
  };

  /** A failure makes the instance unhealthy now, for whoever may heartbeat it. */
  const fail = async (req: CheckReq) => {
    const inst = instanceOfCheck(req.params.checkId);
    const g = grantOf(req);
    if (!access.credentials(g, inst.service).writer?.(NS, inst.service)) throw Errors.noWriteRight(NS, inst.service);
    await naming.setHealth(inst.id, false, 'Consul check failed', undefined, g.context());
  };

  for (const status of ['pass', 'warn'] as const)
    app.put(`/agent/check/${status}/:checkId`, { config: { op: checkIn } }, async (req: CheckReq, reply) => {
      await pass(req);
      return reply.code(200).send();
    });

  app.put('/agent/check/fail/:checkId', { config: { op: checkIn } }, async (req: CheckReq, reply) => {
    await fail(req);
    return reply.code(200).send();
  });

  app.put(
    '/agent/check/update/:checkId',
    { bodyLimit: REGISTRATION_BODY_LIMIT, config: { op: checkIn } },
    async (req: CheckReq, reply) => {
      const body = req.body;
      if (typeof body !== 'object' || body === null || Array.isArray(body))
        throw ConsulErrors.badBody('expected a JSON object {"Status": "passing"}');
      const status = (body as Record<string, unknown>)['Status'];
      if (!isCheckStatus(status)) throw ConsulErrors.badField('Status', 'passing, warning or critical');
      await (status === 'critical' ? fail(req) : pass(req));
      return reply.code(200).send();
    },
  );
}
