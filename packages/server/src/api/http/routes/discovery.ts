import type { FastifyInstance } from 'fastify';
import { LIMITS } from '@muster/api';
import { parseDuration } from '../../../config/config.js';
import { Errors } from '../../../errors.js';
import { callerOf, type HttpDeps } from '../context.js';
import { filterFromQuery } from '../discover-filter.js';
import { DiscoverQuery, DiscoverReply, SvcParams, errors } from '../schemas.js';

type Query = Record<string, unknown> & { revision?: number; wait?: string };

/** `"12"`, `W/"12"` or `12` -> 12; anything else is no revision. */
function revisionFromEtag(h: string | undefined): number | undefined {
  if (h === undefined) return undefined;
  const m = /^(?:W\/)?"?(\d+)"?$/.exec(h.trim());
  return m ? Number(m[1]) : undefined;
}

export function discoveryRoutes(app: FastifyInstance, { naming, hub, metrics, staleness, guard, limits }: HttpDeps): void {
  app.get<{ Params: { ns: string; svc: string }; Querystring: Query }>('/v1/namespaces/:ns/services/:svc/instances', {
    schema: {
      tags: ['discovery'], summary: 'Discover instances',
      description: 'Answers the service revision and its instances (healthy and not isolated by default). ETag is the revision; ' +
        'If-None-Match or revision=R answer 304 when unchanged, and with wait=30s (at most 60s) wait for a change first. ' +
        'In cluster mode, while this node cannot read the shared database, 200 and 304 carry the header x-muster-stale (the reason) and 200 the fields stale and staleReason.',
      params: SvcParams, querystring: DiscoverQuery, response: { 200: DiscoverReply, 304: { type: 'null', description: 'unchanged (with x-muster-stale while this node is stale)' }, ...errors(400, 401, 403, 404, 429) },
    },
  }, async (req, reply) => {
    const { ns, svc } = req.params;
    guard.requireClient(callerOf(req, guard), 'read', [ns, svc]);
    const q = req.query;
    let waitMs = 0;
    if (q.wait !== undefined) {
      const ms = parseDuration(/^\d+$/.test(q.wait) ? `${q.wait}s` : q.wait);
      if (ms === undefined || ms > LIMITS.longPollMaxSeconds * 1000) throw Errors.waitTooLong();
      waitMs = ms;
    }
    const filter = filterFromQuery(q);
    let entry = naming.resolveService(ns, svc);
    const known = q.revision ?? revisionFromEtag(req.headers['if-none-match']);
    if (known !== undefined && known === entry.rec.revision) {
      if (waitMs > 0) {
        const release = limits.openWatch(req.ip);
        const aborted = new AbortController();
        const onClose = () => aborted.abort();
        reply.raw.once('close', onClose);
        metrics.watchers.labels('long_poll').inc();
        const changed = await hub.waitForChange(ns, svc, waitMs, aborted.signal).finally(() => {
          metrics.watchers.labels('long_poll').dec();
          reply.raw.off('close', onClose);
          release();
        });
        if (changed) entry = naming.resolveService(ns, svc);
      }
      if (entry.rec.revision === known) {
        metrics.disc.notModified.inc();
        const stale = staleness();
        if (stale !== undefined) reply.header('x-muster-stale', stale);
        return reply.code(304).header('etag', `"${known}"`).send();
      }
    }
    const body = naming.answerBytes(entry, filter);
    const stale = staleness();
    reply.header('etag', `"${entry.rec.revision}"`).type('application/json; charset=utf-8');
    if (stale === undefined) return reply.send(body);
    // Served from this node's index, which cannot follow other nodes' writes right now.
    return reply.header('x-muster-stale', stale).send({ ...(JSON.parse(body.toString('utf8')) as object), stale: true, staleReason: stale });
  });
}
