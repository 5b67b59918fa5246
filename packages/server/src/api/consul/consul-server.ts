import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { trustedProxies } from '../../config/config.js';
import type { ServerTls } from '../../config/tls-files.js';
import { auditResponse, noteRefusal } from '../http/audit-hook.js';
import { inboundOf, noteArrival, type HttpDeps } from '../http/context.js';
import { admitHook, screenRequest } from '../http/pipeline-hooks.js';
import { toHttpError } from '../http/error-mapping.js';
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../http/json-body.js';
import { drainBody, hasUnreadBody } from '../http/unread-body.js';
import { Errors } from '../../errors.js';
import { ConsulAccess, consulTokenAsAuthorization } from './consul-access.js';
import { consulAgentRoutes, REGISTRATION_BODY_LIMIT } from './consul-agent-routes.js';
import { consulCatalogRoutes } from './consul-catalog-routes.js';
import { consulIndex } from './consul-blocking.js';
import { ConsulErrors } from './consul-errors.js';

/** Answers that refuse a request as bad or unauthorized: each counts against its address's write limit. */
const REFUSED = new Set([400, 401, 403, 413, 414, 415]);
/** Check-ins are heartbeats: as quiet in the request log as Muster's own. */
const QUIET = /^\/v1\/agent\/check\/(pass|warn)\//;

/**
 * Consul's agent, health, catalog and status API (paths under /v1) on a listener of its own: the
 * same request pipeline as the native HTTP API (screen before the body, admit before the
 * handler), with errors answered as Consul answers them, in plain text.
 */
export async function buildConsulServer(
  deps: HttpDeps,
  log: Logger,
  address: () => string,
  tls?: ServerTls,
): Promise<FastifyInstance> {
  const { config, metrics, pipeline } = deps;
  const sendError = async (err: unknown, req: FastifyRequest, reply: import('fastify').FastifyReply) => {
    const { status, error } = toHttpError(err, REGISTRATION_BODY_LIMIT, req.headers['content-type']);
    if (status >= 500) req.log.error({ err }, 'Consul request failed');
    if (status === 401 || status === 403 || status === 429) noteRefusal(req, error.code, error.message);
    if (REFUSED.has(status)) pipeline.refused(inboundOf(req, reply));
    if (error.retryAfterS !== undefined) reply.header('retry-after', String(error.retryAfterS));
    if (hasUnreadBody(req.raw) && !(await drainBody(req.raw))) reply.header('connection', 'close');
    return reply.code(status).type('text/plain; charset=utf-8').send(error.message);
  };
  const proxies = trustedProxies(config);
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    frameworkErrors: (err, req, reply) => void sendError(err, req, reply),
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: REGISTRATION_BODY_LIMIT,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 512 },
    return503OnClosing: true,
    ...(proxies.length > 0 ? { trustProxy: proxies } : {}),
    ...(tls
      ? {
          https: {
            cert: tls.cert,
            key: tls.key,
            ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: true } : {}),
          },
        }
      : {}),
  }) as unknown as FastifyInstance;

  // Consul's clients send JSON with or without a content type: every body is read as JSON.
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (req, body, done) => {
    // A path not served (a KV write) is answered as such, whatever its body.
    if (req.routeOptions.url === undefined) done(null, undefined);
    else if (nestsDeeperThan(body as string, MAX_JSON_DEPTH)) done(Errors.jsonTooDeep(MAX_JSON_DEPTH), undefined);
    else parse(req, body as string, done);
  });

  app.addHook('onRequest', (req, reply, done) => {
    consulTokenAsAuthorization(req);
    const inbound = noteArrival(req, reply, deps.arrivals.receivedAt());
    screenRequest(pipeline, req, inbound, () => done(), done);
  });
  app.addHook('preHandler', admitHook(pipeline));
  // Every read carries an index: the service's revision where the route set one, else this node's.
  app.addHook('onSend', (req, reply, payload, done) => {
    if (req.method === 'GET' && reply.statusCode < 400 && !reply.hasHeader('x-consul-index'))
      reply.header('x-consul-index', consulIndex(deps.applied.get()));
    done(null, payload);
  });
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unknown';
    const status = reply.statusCode;
    metrics.httpRequests.labels(req.method, route, String(status)).inc();
    const isRead = req.method === 'GET' || QUIET.test(route);
    const mode = config.log.requests;
    if (status >= 400 || mode === 'all' || (mode === 'writes' && !isRead))
      req.log[status >= 500 ? 'error' : 'info'](
        { api: 'consul', method: req.method, route, url: req.url, status, latencyMs: Math.round(reply.elapsedTime) },
        'request',
      );
    if (status === 401 || status === 403 || status === 429 || !isRead) auditResponse(deps, req, reply, route);
    done();
  });

  app.setErrorHandler(sendError);
  app.setNotFoundHandler((req, reply) =>
    sendError(ConsulErrors.notServed(req.method, req.url.split('?')[0] ?? ''), req, reply),
  );

  const access = new ConsulAccess(pipeline);
  await app.register(
    async (v1) => {
      consulAgentRoutes(v1, deps, access, address);
      consulCatalogRoutes(v1, deps, access, address);
    },
    { prefix: '/v1' },
  );
  return app;
}
