import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { LIMITS } from '@muster/api';
import { Guard } from '../../../auth/guard.js';
import { ALL } from '../../../auth/rules.js';
import { callerOf, requestContexts, type HttpDeps } from '../context.js';
import { errors } from '../schemas.js';

const AccessToken = Type.Object({
  id: Type.String(), name: Type.String(), rules: Type.Array(Type.String()), createdAt: Type.String(), createdBy: Type.String(),
  revokedAt: Type.Optional(Type.String()),
});

/** Access tokens: admin on every namespace and service only. */
export function tokenRoutes(app: FastifyInstance, { tokens, guard, limits, config }: HttpDeps): void {
  const tags = ['tokens'];
  const contextOf = requestContexts(config.limits.writeWait);
  const security = [{ accessToken: [] as string[] }];
  app.post('/v1/tokens', {
    config: { access: 'management' },
    schema: {
      tags, security, summary: 'Create an access token; the answer holds its secret, shown only this once',
      body: Type.Object({
        name: Type.String({ minLength: LIMITS.name.min, maxLength: LIMITS.name.max }),
        rules: Type.Array(Type.String({ maxLength: 300 }), { minItems: 1, maxItems: 64, description: 'right:namespacePattern/servicePattern, right one of read, write, admin' }),
      }, { additionalProperties: false }),
      response: { 201: Type.Object({ token: AccessToken, secret: Type.String() }), ...errors(400, 401, 403, 409, 429) },
    },
  }, async (req, reply) => {
    const c = callerOf(req, guard);
    guard.requireManagement(c, 'admin', [ALL, ALL]);
    await limits.write(c);
    return reply.code(201).send(await tokens.create(req.body, Guard.who(c), undefined, contextOf(req, reply)));
  });

  app.get<{ Querystring: { revoked: boolean } }>('/v1/tokens', {
    config: { access: 'management' },
    schema: {
      tags, security, summary: 'List access tokens (never their secrets)',
      querystring: Type.Object({ revoked: Type.Boolean({ default: false, description: 'include revoked tokens' }) }, { additionalProperties: false }),
      response: { 200: Type.Object({ tokens: Type.Array(AccessToken) }), ...errors(400, 401, 403) },
    },
  }, async (req) => {
    guard.requireManagement(callerOf(req, guard), 'admin', [ALL, ALL]);
    return { tokens: tokens.list(req.query.revoked) };
  });

  app.delete<{ Params: { ref: string } }>('/v1/tokens/:ref', {
    config: { access: 'management' },
    schema: {
      tags, security, summary: 'Revoke a token by id (or by name): refused from then on, on every node',
      params: Type.Object({ ref: Type.String({ minLength: 1, maxLength: 128 }) }),
      response: { 200: AccessToken, ...errors(400, 401, 403, 404, 429) },
    },
  }, async (req, reply) => {
    const c = callerOf(req, guard);
    guard.requireManagement(c, 'admin', [ALL, ALL]);
    await limits.write(c);
    return tokens.revoke(req.params.ref, Guard.who(c), contextOf(req, reply));
  });
}
