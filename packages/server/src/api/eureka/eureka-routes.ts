import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Instance } from '@muster/api';
import { Errors } from '../../errors.js';
import type { InstanceCredentials } from '../../naming/naming-service.js';
import type { Grant } from '../../pipeline/grant.js';
import { grantOf, type HttpDeps, type HttpOperation } from '../http/context.js';
import { EurekaErrors } from './eureka-errors.js';
import {
  EUREKA_NAMESPACE as NS,
  findInstance,
  META,
  META_PREFIX,
  musterIdOf,
  ownedByEureka,
  serviceOfApp,
} from './eureka-names.js';
import { decodeRegistration, isStatus } from './eureka-registration.js';
import { applicationOf, delta, fullRegistry, type Visible } from './eureka-view.js';
import { toEurekaInstance, toXml, wantsXml } from './eureka-wire.js';
import { xmlBodies } from './eureka-xml.js';

/** Where Eureka clients look for the apps API: Spring Cloud's default, and Netflix's. */
export const EUREKA_PREFIXES = ['/eureka/apps', '/eureka/v2/apps'] as const;
/** A registration is a few kilobytes; anything much larger is not one. */
const REGISTRATION_BODY_LIMIT = 64 * 1024;

type AppReq = FastifyRequest<{ Params: { app: string } }>;
type InstReq = FastifyRequest<{ Params: { app: string; id: string }; Querystring: Record<string, unknown> }>;

/**
 * The Eureka apps API (as Spring Cloud's Eureka server serves it) over the naming service: it
 * only translates. Apps are services of the `default` namespace, leases heartbeats, status
 * overrides isolation; each route declares its operation, so the request pipeline applies auth,
 * limits and audit exactly as on the native API. Registered for each prefix of EUREKA_PREFIXES.
 */
export async function eurekaRoutes(app: FastifyInstance, opts: { deps: HttpDeps }): Promise<void> {
  const { naming, pipeline } = opts.deps;
  xmlBodies(app);

  /** The service an app is, or the one its registration creates (lower case). */
  const serviceFor = (appName: string) => serviceOfApp(naming, appName) ?? appName.toLowerCase();
  const appOf = (req: FastifyRequest) => (req.params as { app: string }).app;
  const onApp = (req: FastifyRequest) => (): readonly [string, string] => [NS, serviceFor(appOf(req))];

  const clientsRequired = () => pipeline.auth.enabled && pipeline.auth.clientsRequired;

  /**
   * Eureka clients send no credentials, so the instances this adapter registered are its own: it
   * vouches for a change of one of them (write on its service, for that service only). With
   * auth.clients required it vouches for nothing: the caller's access token must have write on it.
   */
  const credentials = (g: Grant, service: string): InstanceCredentials => {
    const own = g.credentials();
    if (clientsRequired()) return own;
    return { ...own, writer: (ns, svc) => (ns === NS && svc === service) || (own.writer?.(ns, svc) ?? false) };
  };

  /** Which apps a full fetch or delta shows the caller. */
  const visibleTo = (g: Grant): Visible => {
    if (g.caller?.principal) return g.visibleIn(NS);
    if (clientsRequired()) throw Errors.unauthenticated('auth.clients is required');
    return undefined;
  };

  /** The Eureka-owned instance `{APP}/{id}` names; 404 makes a client register it again. */
  const ownInstance = (req: InstReq): Instance => {
    const { app: appName, id } = req.params;
    const service = serviceOfApp(naming, appName);
    const found = service === undefined ? undefined : findInstance(naming, service, id);
    if (!found) throw EurekaErrors.instanceNotFound(appName, id);
    if (!ownedByEureka(found)) throw EurekaErrors.notEurekaOwned(appName, id);
    return found;
  };

  const send = (req: FastifyRequest, reply: FastifyReply, root: string, body: unknown) =>
    wantsXml(req.headers.accept)
      ? reply.type('application/xml; charset=utf-8').send(toXml(root, body))
      : reply.type('application/json; charset=utf-8').send({ [root]: body });

  const self: HttpOperation = { kind: 'self' };
  const read: HttpOperation = { kind: 'read', on: onApp };
  const register: HttpOperation = { kind: 'register', on: (req) => onApp(req)() };
  const renew: HttpOperation = { kind: 'heartbeat' };
  const write: HttpOperation = { kind: 'write' };
  // Out of service (or back) is an operator's decision, as isolation is on the native API.
  const override: HttpOperation = { kind: 'write', manage: (req) => ({ level: 'write', on: onApp(req) }) };
  const hide = { schema: { hide: true } };

  app.get('/', { ...hide, config: { op: self } }, async (req, reply) =>
    send(req, reply, 'applications', fullRegistry(naming, visibleTo(grantOf(req)))),
  );

  app.get('/delta', { ...hide, config: { op: self } }, async (req, reply) =>
    send(req, reply, 'applications', await delta(naming, visibleTo(grantOf(req)), Date.now())),
  );

  app.get('/:app', { ...hide, config: { op: read } }, async (req: AppReq, reply) => {
    const service = serviceOfApp(naming, req.params.app);
    const found = service === undefined ? undefined : applicationOf(naming, service);
    if (!found || found.instance.length === 0) throw EurekaErrors.appNotFound(req.params.app);
    return send(req, reply, 'application', found);
  });

  app.post(
    '/:app',
    { ...hide, bodyLimit: REGISTRATION_BODY_LIMIT, config: { op: register } },
    async (req: AppReq, reply) => {
      const r = decodeRegistration(req.body);
      const service = serviceFor(req.params.app);
      const existing = findInstance(naming, service, r.instanceId);
      if (existing && !ownedByEureka(existing)) throw EurekaErrors.idTakenNatively(req.params.app, r.instanceId);
      const g = grantOf(req);
      await naming.register(
        NS,
        service,
        { ...r.request, id: existing?.id ?? musterIdOf(service, r.instanceId) },
        { ...credentials(g, service), ownerOnly: g.ownerOnly, caller: g.client },
        g.context(),
      );
      return reply.code(204).send();
    },
  );

  app.get('/:app/:id', { ...hide, config: { op: read } }, async (req: InstReq, reply) => {
    const service = serviceOfApp(naming, req.params.app);
    const found = service === undefined ? undefined : findInstance(naming, service, req.params.id);
    if (!found) throw EurekaErrors.instanceNotFound(req.params.app, req.params.id);
    return send(req, reply, 'instance', toEurekaInstance(found));
  });

  app.put('/:app/:id', { ...hide, config: { op: renew } }, async (req: InstReq, reply) => {
    const inst = ownInstance(req);
    const g = grantOf(req);
    const creds = credentials(g, inst.service);
    await naming.heartbeat(inst.id, creds.instanceToken, creds.writer, g.context());
    return reply.code(200).send();
  });

  app.delete('/:app/:id', { ...hide, config: { op: write } }, async (req: InstReq, reply) => {
    const inst = ownInstance(req);
    const g = grantOf(req);
    await naming.deregister(inst.id, credentials(g, inst.service), g.context());
    return reply.code(200).send();
  });

  const setOverride = async (req: InstReq, isolate: boolean) => {
    const inst = ownInstance(req);
    const g = grantOf(req);
    await naming.patchInstance(inst.id, { isolate }, credentials(g, inst.service), g.context());
  };

  app.put('/:app/:id/status', { ...hide, config: { op: override } }, async (req: InstReq, reply) => {
    const value = req.query['value'];
    if (typeof value !== 'string' || !isStatus(value)) throw EurekaErrors.badStatus(String(value ?? ''));
    await setOverride(req, value !== 'UP');
    return reply.code(200).send();
  });

  app.delete('/:app/:id/status', { ...hide, config: { op: override } }, async (req: InstReq, reply) => {
    await setOverride(req, false);
    return reply.code(200).send();
  });

  app.put('/:app/:id/metadata', { ...hide, config: { op: write } }, async (req: InstReq, reply) => {
    const inst = ownInstance(req);
    const update = Object.entries(req.query);
    if (update.length === 0) throw EurekaErrors.badMetadata('give the metadata as query parameters, key=value');
    const metadata = { ...inst.metadata };
    for (const [k, v] of update) {
      if (k.startsWith(META_PREFIX)) throw EurekaErrors.badMetadata(`keys starting with ${META_PREFIX} are Muster's`);
      if (typeof v !== 'string') throw EurekaErrors.badMetadata(`${k} is given more than once`);
      metadata[k] = v;
    }
    metadata[META.instanceId] = inst.metadata[META.instanceId]!;
    const g = grantOf(req);
    await naming.patchInstance(inst.id, { metadata }, credentials(g, inst.service), g.context());
    return reply.code(200).send();
  });
}
