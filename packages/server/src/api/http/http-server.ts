import crypto from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Ajv } from 'ajv';
import type { Logger } from 'pino';
import { Errors } from '../../errors.js';
import type { HttpDeps } from './context.js';
import { toHttpError } from './error-mapping.js';
import { discoveryRoutes } from './routes/discovery.js';
import { eventRoutes } from './routes/events.js';
import { instanceRoutes } from './routes/instances.js';
import { namespaceRoutes } from './routes/namespaces.js';
import { serviceRoutes } from './routes/services.js';
import { systemRoutes } from './routes/system.js';
import { watchRoutes } from './routes/watch.js';
import { ErrorReply } from './schemas.js';

/** Requests whose success is not worth a log line at `log.requests: writes`: the hot paths. */
const QUIET_ROUTES = new Set(['/v1/instances/:id/heartbeat', '/v1/heartbeats']);

/**
 * The native HTTP adapter: decodes and shape-checks requests, calls the naming service, and
 * maps every failure through the one error table.
 */
export async function buildHttpServer(deps: HttpDeps, log: Logger): Promise<FastifyInstance> {
  const { config, metrics } = deps;
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // Our onResponse hook writes one line per request with route, status and latency instead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.http.bodyLimit,
    requestIdHeader: 'x-request-id',
    genReqId: () => crypto.randomUUID(),
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 512 },
    return503OnClosing: true,
  });

  // Bodies are checked exactly as sent ("80" is not a port); query strings are text, so coerced.
  const bodyAjv = new Ajv({ coerceTypes: false, useDefaults: false, removeAdditional: false, allErrors: false, strict: false });
  const queryAjv = new Ajv({ coerceTypes: true, useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : queryAjv).compile(schema));

  app.addSchema(ErrorReply);
  await app.register(swagger, {
    openapi: {
      info: { title: 'Muster registry API', version: '1', description: 'Service registry and discovery: namespaces, services, instances, heartbeats, watch.' },
      components: { securitySchemes: { heartbeatToken: { type: 'http', scheme: 'bearer', description: 'the heartbeatToken answered at registration' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unknown';
    const status = reply.statusCode;
    metrics.httpRequests.labels(req.method, route, String(status)).inc();
    const mode = config.log.requests;
    const isRead = req.method === 'GET' || QUIET_ROUTES.has(route);
    if (status >= 400 || mode === 'all' || (mode === 'writes' && !isRead)) {
      req.log[status >= 500 ? 'error' : 'info']({ method: req.method, route, url: req.url, status, latencyMs: Math.round(reply.elapsedTime * 100) / 100 }, 'request');
    }
  });

  app.setErrorHandler((err, req, reply) => {
    const { status, error } = toHttpError(err, config.http.bodyLimit, req.headers['content-type']);
    if (status >= 500) req.log.error({ err }, 'request failed');
    return reply.code(status).type('application/json; charset=utf-8').send(error.toJSON());
  });

  app.setNotFoundHandler((req, reply) => {
    const error = Errors.routeNotFound(req.method, req.url.split('?')[0] ?? '');
    return reply.code(404).send(error.toJSON());
  });

  for (const routes of [namespaceRoutes, serviceRoutes, instanceRoutes, discoveryRoutes, watchRoutes, eventRoutes, systemRoutes]) routes(app, deps);
  app.get('/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
