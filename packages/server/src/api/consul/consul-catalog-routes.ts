import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Instance } from '@muster/api';
import { MusterError } from '@muster/api';
import { grantOf, type HttpDeps, type HttpOperation } from '../http/context.js';
import type { ConsulAccess } from './consul-access.js';
import { blockingOf, consulIndex, waitForRevision } from './consul-blocking.js';
import { CONSUL_NAMESPACE as NS, isMusterName, tagsOf } from './consul-names.js';
import { catalogEntry, healthEntry, instancesOf, isPassing, serviceNames } from './consul-view.js';

type NameReq = FastifyRequest<{ Params: { name: string }; Querystring: Record<string, unknown> }>;

/** `?tag=a&tag=b`: every one must be among the instance's tags. */
function tagsWanted(q: Record<string, unknown>): string[] {
  const t = q['tag'];
  if (t === undefined) return [];
  return (Array.isArray(t) ? t : [t]).map(String);
}

/** `?passing` (bare, or `=true`/`=1`) as Consul's clients send it. */
const wantsPassing = (q: Record<string, unknown>): boolean =>
  q['passing'] !== undefined && q['passing'] !== 'false' && q['passing'] !== '0';

/**
 * Consul's health, catalog and status reads over the naming service. A service's reads are
 * blocking queries: X-Consul-Index is the service's Muster revision (the change sequence's
 * number, never 0, never backwards), and `?index=N&wait=…` parks in the pipeline's long-poll
 * until the service moves from N. Names that are no service answer `200 []`, as Consul does.
 */
export function consulCatalogRoutes(app: FastifyInstance, deps: HttpDeps, access: ConsulAccess, address: () => string) {
  const { naming, hub, applied } = deps;

  const exists = (name: string): boolean => {
    if (!isMusterName(name)) return false;
    try {
      naming.getService(NS, name);
      return true;
    } catch (err) {
      if (err instanceof MusterError && err.code === 'NOT_FOUND') return false;
      throw err;
    }
  };

  const serviceRead: HttpOperation = {
    kind: 'read',
    on: (req) => [NS, (req as NameReq).params.name],
    check: (req) => void blockingOf(req),
    parks: (raw) => {
      const req = raw as NameReq;
      const { index, waitMs } = blockingOf(req);
      if (index === undefined || waitMs === 0 || !exists(req.params.name)) return undefined;
      return { namespace: NS, service: req.params.name, revision: index, waitMs };
    },
  };
  const selfBlocking: HttpOperation = { kind: 'self', check: (req) => void blockingOf(req) };

  /**
   * A service's instances once the blocking query is over. A service that does not exist cannot
   * park in the long-poll (it has no revision): its query waits for the service's first change
   * on the watch hub instead, or the wait.
   */
  const current = async (req: NameReq): Promise<{ index: number; instances: Instance[] }> => {
    const name = req.params.name;
    if (!exists(name)) {
      const { index, waitMs } = blockingOf(req);
      if (index !== undefined && index >= applied.get() && waitMs > 0) {
        const gone = new AbortController();
        const onClose = () => gone.abort();
        req.raw.once('close', onClose);
        await hub.waitForChange(NS, name, waitMs, gone.signal).finally(() => req.raw.off('close', onClose));
      }
      if (!exists(name)) return { index: applied.get(), instances: [] };
    }
    const { revision, instances } = instancesOf(naming, name);
    const tags = tagsWanted(req.query);
    const tagged = tags.length === 0 ? instances : instances.filter((i) => tags.every((t) => tagsOf(i).includes(t)));
    return { index: revision, instances: tagged };
  };

  const send = (reply: FastifyReply, index: number, body: unknown) =>
    reply.header('x-consul-index', consulIndex(index)).header('x-consul-knownleader', 'true').send(body);

  app.get('/health/service/:name', { config: { op: serviceRead } }, async (req: NameReq, reply) => {
    const { index, instances } = await current(req);
    const shown = wantsPassing(req.query) ? instances.filter(isPassing) : instances;
    return send(reply, index, shown.map(healthEntry));
  });

  app.get('/catalog/service/:name', { config: { op: serviceRead } }, async (req: NameReq, reply) => {
    const { index, instances } = await current(req);
    return send(reply, index, instances.map(catalogEntry));
  });

  app.get('/catalog/services', { config: { op: selfBlocking } }, async (req, reply) => {
    await waitForRevision(req, () => applied.get());
    const index = applied.get();
    const out: Record<string, string[]> = {};
    for (const name of serviceNames(naming, access.visibleTo(grantOf(req)))) {
      const { instances } = instancesOf(naming, name);
      if (instances.length > 0) out[name] = [...new Set(instances.flatMap(tagsOf))].sort();
    }
    return send(reply, index, out);
  });

  app.get('/status/leader', async (_req, reply) => reply.type('application/json').send(JSON.stringify(address())));
  app.get('/status/peers', async (_req, reply) => reply.send([address()]));
}
