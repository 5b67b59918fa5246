import crypto from 'node:crypto';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Ajv } from 'ajv';
import type { Logger } from 'pino';
import { trustedProxies } from '../../config/config.js';
import type { ServerTls } from '../../config/tls-files.js';
import { Errors } from '../../errors.js';
import { inboundOf, noteArrival, type HttpDeps } from './context.js';
import { admitHook, screenRequest } from './pipeline-hooks.js';
import { auditResponse, noteRefusal } from './audit-hook.js';
import { clientErrorHandler } from './client-errors.js';
import { toHttpError } from './error-mapping.js';
import { answerRevisions, minRevisionWait } from './read-your-writes.js';
import { consoleAssets } from './console-assets.js';
import { EUREKA_PREFIXES, eurekaRoutes } from '../eureka/eureka-routes.js';
import { backupRoutes } from './routes/backup.js';
import { boundedJsonBodies } from './json-body.js';
import { clusterRoutes } from './routes/cluster.js';
import { discoveryRoutes } from './routes/discovery.js';
import { eventRoutes } from './routes/events.js';
import { instanceRoutes } from './routes/instances.js';
import { namespaceRoutes } from './routes/namespaces.js';
import { selfRoutes } from './routes/self.js';
import { serviceRoutes } from './routes/services.js';
import { statsRoutes } from './routes/stats.js';
import { systemRoutes } from './routes/system.js';
import { tokenRoutes } from './routes/tokens.js';
import { watchRoutes } from './routes/watch.js';
import { ErrorReply } from './schemas.js';
import { drainBody, hasUnreadBody } from './unread-body.js';

/** Answers that refuse a request as bad or unauthorized: each counts against its address's write limit. */
const REFUSED = new Set([400, 401, 403, 413, 414, 415]);

/**
 * The native HTTP adapter: decodes and shape-checks requests, calls the naming service, and
 * maps every failure through the one error table. With `tls` it is HTTPS only, and with `tls.ca`
 * a client without a certificate that CA signed fails the handshake, before any route runs.
 */
export async function buildHttpServer(deps: HttpDeps, log: Logger, tls?: ServerTls): Promise<FastifyInstance> {
  const { config, metrics, pipeline } = deps;
  const reqIdPrefix = crypto.randomBytes(4).toString('hex');
  let reqCounter = 0;
  const sendError = async (err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const { status, error } = toHttpError(err, config.http.bodyLimit, req.headers['content-type']);
    if (status >= 500) req.log.error({ err }, 'request failed');
    if (status === 401 || status === 403 || status === 429) noteRefusal(req, error.code, error.message);
    if (REFUSED.has(status)) pipeline.refused(inboundOf(req, reply));
    if (error.retryAfterS !== undefined) reply.header('retry-after', String(error.retryAfterS));
    // Refused before its body was read (too large, no credentials, over the limit): the client is
    // answered once it has sent the body, or a bound of it.
    if (hasUnreadBody(req.raw) && !(await drainBody(req.raw))) reply.header('connection', 'close');
    return reply.code(status).type('application/json; charset=utf-8').send(error.toJSON());
  };
  const proxies = trustedProxies(config);
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // The router's own refusals (a path that does not percent-decode, a parameter past
    // maxParamLength) get the error body every other failure has, not Fastify's.
    frameworkErrors: (err, req, reply) => void sendError(err, req, reply),
    // Our onResponse hook writes one line per request with route, status and latency instead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.http.bodyLimit,
    requestIdHeader: 'x-request-id',
    // Unique per process start and cheap: a random prefix and a counter, not a UUID per request.
    genReqId: () => `${reqIdPrefix}-${(++reqCounter).toString(36)}`,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 512 },
    return503OnClosing: true,
    // A client behind a trusted proxy is known by X-Forwarded-For: the limits count it, not the proxy.
    ...(proxies.length > 0 ? { trustProxy: proxies } : {}),
    // Behind a proxy the socket's address is the proxy's: such refusals are not counted against it.
    clientErrorHandler: clientErrorHandler(proxies.length > 0 ? () => {} : (address) => pipeline.refusedAt(address)),
    ...(tls
      ? {
          https: {
            cert: tls.cert,
            key: tls.key,
            ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: true } : {}),
          },
        }
      : {}),
  }) as unknown as FastifyInstance; // an https.Server offers everything this code uses of the http.Server type

  // Bodies are checked exactly as sent ("80" is not a port); query strings are text, so coerced.
  const bodyAjv = new Ajv({
    coerceTypes: false,
    useDefaults: false,
    removeAdditional: false,
    allErrors: false,
    strict: false,
  });
  const queryAjv = new Ajv({
    coerceTypes: true,
    useDefaults: true,
    removeAdditional: false,
    allErrors: false,
    strict: false,
  });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : queryAjv).compile(schema));

  app.addSchema(ErrorReply);
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Muster registry API',
        version: '1',
        description: 'Service registry and discovery: namespaces, services, instances, heartbeats, watch.',
      },
      components: {
        securitySchemes: {
          heartbeatToken: {
            type: 'http',
            scheme: 'bearer',
            description: 'the heartbeatToken answered at registration',
          },
          accessToken: {
            type: 'http',
            scheme: 'bearer',
            description: 'an access token, mst_...: muster tokens create',
          },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  boundedJsonBodies(app);

  // Callback-style hooks and counters bound once per (method, route, status): these run on every
  // discovery and heartbeat, where an async hook or a label lookup is a visible share of CPU.
  // Before anything of the body is read: the pipeline's screen (an address over its write limit,
  // a caller its route can only refuse for want of credentials), then the revision the request
  // carries (read-your-writes).
  app.addHook('onRequest', (req, reply, done) => {
    const inbound = noteArrival(req, reply, deps.arrivals.receivedAt());
    reply.header('x-request-id', req.id);
    const afterScreen = () => {
      const waiting = minRevisionWait(req, deps);
      if (waiting) waiting.then(() => done(), done);
      else done();
    };
    screenRequest(pipeline, req, inbound, afterScreen, done);
  });
  // Once the body is read and checked: the route's operation admitted (auth, limits, long-poll).
  app.addHook('preHandler', admitHook(pipeline));
  answerRevisions(app, deps);

  const counters = new Map<string, { inc(): void }>();
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unknown';
    const status = reply.statusCode;
    const key = `${req.method} ${route} ${status}`;
    let counter = counters.get(key);
    if (!counter) counters.set(key, (counter = metrics.httpRequests.labels(req.method, route, String(status))));
    counter.inc();
    const mode = config.log.requests;
    // Heartbeats of every protocol (native, Eureka renewals) are as quiet as reads: the hot paths.
    const isRead = req.method === 'GET' || req.routeOptions.config.op?.kind === 'heartbeat';
    if (status >= 400 || mode === 'all' || (mode === 'writes' && !isRead)) {
      // "Not ready" (503 from /readyz while starting or stopping) is an answer, not a failure.
      const level = status >= 500 && route !== '/readyz' ? 'error' : 'info';
      // The line's object is built only when it is written: every registration passes here.
      if (log.isLevelEnabled(level))
        req.log[level](
          { method: req.method, route, url: req.url, status, latencyMs: Math.round(reply.elapsedTime * 100) / 100 },
          'request',
        );
    }
    if (status === 401 || status === 403 || status === 429 || !isRead) auditResponse(deps, req, reply, route);
    done();
  });

  app.setErrorHandler(sendError);

  app.setNotFoundHandler((req, reply) => {
    const error = Errors.routeNotFound(req.method, req.url.split('?')[0] ?? '');
    return reply.code(404).send(error.toJSON());
  });

  for (const routes of [
    namespaceRoutes,
    serviceRoutes,
    instanceRoutes,
    discoveryRoutes,
    watchRoutes,
    eventRoutes,
    systemRoutes,
    clusterRoutes,
    tokenRoutes,
  ])
    routes(app, deps);
  for (const routes of [selfRoutes, statsRoutes, backupRoutes]) routes(app, deps);
  // Eureka's apps API, an adapter of its own over the same pipeline (api/eureka/).
  if (config.eureka.enabled) for (const prefix of EUREKA_PREFIXES) await app.register(eurekaRoutes, { prefix, deps });
  await consoleAssets(app);
  app.get('/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
