import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction, preHandlerHookHandler } from 'fastify';
import type { Inbound } from '../../pipeline/inbound.js';
import type { RequestPipeline } from '../../pipeline/request-pipeline.js';
import { inboundOf, setGrant, type HttpOperation } from './context.js';

/** Routes that declare nothing (documents, probes) ask nothing of their callers. */
const PUBLIC: HttpOperation = { kind: 'public' };

/**
 * The pipeline's screen for a Fastify server's onRequest hook, before anything of the body is
 * read; `next` runs once the request passed it, `done` takes a refusal.
 */
export function screenRequest(
  pipeline: RequestPipeline,
  req: FastifyRequest,
  inbound: Inbound,
  next: () => void,
  done: HookHandlerDoneFunction,
): void {
  let screening: Promise<void> | undefined;
  try {
    screening = pipeline.screen(req.routeOptions.config.op, inbound, req.method !== 'GET' && req.method !== 'HEAD');
  } catch (err) {
    return done(err as Error);
  }
  if (screening) screening.then(next, done);
  else next();
}

/**
 * The preHandler hook of every Fastify server the pipeline guards: once the body is read and
 * checked, the route's operation is admitted (auth, limits, long-poll) and its grant kept for the handler.
 */
export function admitHook(pipeline: RequestPipeline): preHandlerHookHandler {
  return (req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    let admitted;
    try {
      admitted = pipeline.admit(req.routeOptions.config.op ?? PUBLIC, inboundOf(req, reply), req);
    } catch (err) {
      return done(err as Error);
    }
    if (!(admitted instanceof Promise)) {
      setGrant(req, admitted);
      return done();
    }
    admitted.then((grant) => {
      setGrant(req, grant);
      done();
    }, done);
  };
}
