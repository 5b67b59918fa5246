import type { FastifyInstance, FastifyRequest } from 'fastify';
import { LIMITS } from '@muster/api';
import { parseDuration } from '../../../config/config.js';
import { Errors } from '../../../errors.js';
import type { HttpDeps, HttpOperation } from '../context.js';
import { filterFromQuery } from '../discover-filter.js';
import { DiscoverQuery, DiscoverReply, SvcParams, errors } from '../schemas.js';

type Query = Record<string, unknown> & { revision?: number; wait?: string };

/** `"12"`, `W/"12"` or `12` -> 12; anything else is no revision. */
function revisionFromEtag(h: string | undefined): number | undefined {
  if (h === undefined) return undefined;
  const m = /^(?:W\/)?"?(\d+)"?$/.exec(h.trim());
  return m ? Number(m[1]) : undefined;
}

/** `wait=30s` (or `30`): how long a long-poll may wait, at most LIMITS.longPollMaxSeconds. */
function waitOf(q: Query): number {
  if (q.wait === undefined) return 0;
  const ms = parseDuration(/^\d+$/.test(q.wait) ? `${q.wait}s` : q.wait);
  if (ms === undefined || ms > LIMITS.longPollMaxSeconds * 1000) throw Errors.waitTooLong();
  return ms;
}

type DiscoverRequest = FastifyRequest<{ Params: { ns: string; svc: string }; Querystring: Query }>;
const knownRevision = (req: DiscoverRequest) => req.query.revision ?? revisionFromEtag(req.headers['if-none-match']);

/** A client read that, given the revision the caller holds and a wait, parks until the service moves. */
const discover: HttpOperation = {
  kind: 'read',
  on: (req) => {
    const { ns, svc } = (req as DiscoverRequest).params;
    return [ns, svc];
  },
  parks: (raw) => {
    const req = raw as DiscoverRequest;
    const waitMs = waitOf(req.query);
    const revision = knownRevision(req);
    if (revision === undefined || waitMs === 0) return undefined;
    filterFromQuery(req.query); // a filter that does not parse is refused before any wait
    return { namespace: req.params.ns, service: req.params.svc, revision, waitMs };
  },
};

export function discoveryRoutes(app: FastifyInstance, { naming, metrics, staleness }: HttpDeps): void {
  app.get<{ Params: { ns: string; svc: string }; Querystring: Query }>(
    '/v1/namespaces/:ns/services/:svc/instances',
    {
      config: { op: discover },
      schema: {
        tags: ['discovery'],
        summary: 'Discover instances',
        description:
          'Answers the service revision and its instances (healthy and not isolated by default). ETag is the revision; ' +
          'If-None-Match or revision=R answer 304 when unchanged, and with wait=30s (at most 60s) wait for a change first. ' +
          'In cluster mode, while this node cannot read the shared database, 200 and 304 carry the header x-muster-stale (the reason) and 200 the fields stale and staleReason.',
        params: SvcParams,
        querystring: DiscoverQuery,
        response: {
          200: DiscoverReply,
          304: { type: 'null', description: 'unchanged (with x-muster-stale while this node is stale)' },
          ...errors(400, 401, 403, 404, 429),
        },
      },
    },
    async (req, reply) => {
      // A long-poll has been parked by the pipeline already, until the revision moved or the wait ended.
      const { ns, svc } = req.params;
      const filter = filterFromQuery(req.query);
      const entry = naming.resolveService(ns, svc);
      const known = knownRevision(req);
      if (known !== undefined && known === entry.rec.revision) {
        metrics.disc.notModified.inc();
        const stale = staleness();
        if (stale !== undefined) reply.header('x-muster-stale', stale);
        return reply.code(304).header('etag', `"${known}"`).send();
      }
      const body = naming.answerBytes(entry, filter);
      const stale = staleness();
      reply.header('etag', `"${entry.rec.revision}"`).type('application/json; charset=utf-8');
      if (stale === undefined) return reply.send(body);
      // Served from this node's index, which cannot follow other nodes' writes right now.
      return reply
        .header('x-muster-stale', stale)
        .send({ ...(JSON.parse(body.toString('utf8')) as object), stale: true, staleReason: stale });
    },
  );
}
