import type { FastifyInstance, FastifyRequest } from 'fastify';
import { MusterError } from '@muster/api';
import { NamingService } from '../../../naming/naming-service.js';
import { grantOf, type HttpDeps, type HttpOperation } from '../context.js';
import { filterFromQuery } from '../discover-filter.js';
import { WatchQuery, errors } from '../schemas.js';

/**
 * Server-Sent Events: a snapshot on connect and after every change. Snapshots supersede each
 * other, so while a reader has not drained the last one, changes only mark it stale and the
 * newest is sent at the next drain; a reader with more than watch.maxBufferedBytes unsent is
 * dropped and reconnects with its revision.
 */
type WatchRequest = FastifyRequest<{
  Querystring: Record<string, string> & { namespace: string; service: string; allowMissing?: boolean };
}>;

export function watchRoutes(app: FastifyInstance, { naming, hub, metrics, config, staleness }: HttpDeps): void {
  const watch: HttpOperation = {
    kind: 'watch',
    check: (req) => void filterFromQuery((req as WatchRequest).query),
    on: (req) => [(req as WatchRequest).query.namespace, (req as WatchRequest).query.service],
    // 404 before the stream starts (and before it takes a watch slot).
    before: (req) =>
      void naming.watchedService(
        (req as WatchRequest).query.namespace,
        (req as WatchRequest).query.service,
        (req as WatchRequest).query.allowMissing ?? false,
      ),
  };
  app.get<{ Querystring: Record<string, string> & { namespace: string; service: string; allowMissing?: boolean } }>(
    '/v1/watch',
    {
      config: { op: watch },
      schema: {
        tags: ['discovery'],
        summary: 'Watch a service as Server-Sent Events',
        description:
          'Each `snapshot` event carries the same JSON as discovery, with the revision as the event id. Takes the discovery filters. ' +
          'A service that does not exist is 404, unless allowMissing=true: then it is watched as empty (revision 0) until it exists. ' +
          'In cluster mode a snapshot carries stale and staleReason while this node cannot read the shared database, and a new snapshot ' +
          'is sent within watch.keepAlive when that changes.',
        querystring: WatchQuery,
        response: { 200: { description: 'text/event-stream', type: 'string' }, ...errors(400, 401, 403, 404, 429) },
      },
    },
    async (req, reply) => {
      const { namespace: ns, service: svc, allowMissing = false } = req.query;
      const filter = filterFromQuery(req.query);
      const { release } = grantOf(req);

      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        // A stream owns its connection: when it ends (shutdown, slow reader, service gone) the
        // socket closes too, instead of idling until the keep-alive timeout.
        connection: 'close',
        'x-accel-buffering': 'no',
        'x-request-id': req.id,
      });
      metrics.watchers.labels('sse').inc();
      req.log.info({ namespace: ns, service: svc }, 'watch stream opened');

      let pending = false;
      let awaitingDrain = false;
      let ended = false;
      let sentStale = false;
      const end = (reason?: string, message?: string) => {
        if (ended) return;
        ended = true;
        if (reason && !res.destroyed) res.write(`event: close\ndata: ${JSON.stringify({ reason, message })}\n\n`);
        res.end();
      };
      const send = (event: string, data: string, id?: number) => {
        res.write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${data}\n\n`);
      };
      const snapshot = () => {
        pending = false;
        if (ended || res.destroyed) return;
        // A reader still behind on the last snapshot gets only the newest one once it catches up.
        if (res.writableNeedDrain) {
          if (res.writableLength > config.watch.maxBufferedBytes) {
            req.log.warn({ buffered: res.writableLength }, 'watch stream dropped: client does not read');
            end('slow-consumer', 'the client did not read its stream; reconnect with the last revision');
          } else if (!awaitingDrain) {
            awaitingDrain = true;
            res.once('drain', () => {
              awaitingDrain = false;
              snapshot();
            });
          }
          return;
        }
        try {
          const entry = naming.watchedService(ns, svc, allowMissing);
          const stale = staleness();
          sentStale = stale !== undefined;
          if (stale !== undefined) {
            // As discovery answers it: this node's index, which cannot follow other nodes' writes right now.
            const answer = entry ? naming.answer(entry, filter) : NamingService.missingAnswer(ns, svc);
            send('snapshot', JSON.stringify({ ...answer, stale: true, staleReason: stale }), entry?.rec.revision ?? 0);
          } else if (entry) send('snapshot', naming.answerBytes(entry, filter).toString('utf8'), entry.rec.revision);
          else send('snapshot', JSON.stringify(NamingService.missingAnswer(ns, svc)), 0);
        } catch (err) {
          const body =
            err instanceof MusterError ? err.toJSON() : { error: { code: 'INTERNAL', message: 'internal error' } };
          send('error', JSON.stringify(body));
          end();
        }
      };

      const schedule = () => {
        if (pending) return;
        pending = true;
        setImmediate(snapshot); // coalesce the changes of one tick into one snapshot
      };
      const unsubscribe = hub.subscribe(ns, svc, schedule);
      const offClose = hub.onClose(() => end('shutdown', 'the server is shutting down; reconnect'));
      // The index does not move while this node cannot read the store: a change of staleness alone is sent too.
      const keepAlive = setInterval(() => {
        if ((staleness() !== undefined) !== sentStale) schedule();
        else if (!res.destroyed) res.write(': keep-alive\n\n');
      }, config.watch.keepAlive);
      res.on('close', () => {
        ended = true;
        release();
        clearInterval(keepAlive);
        unsubscribe();
        offClose();
        metrics.watchers.labels('sse').dec();
      });
      snapshot();
    },
  );
}
