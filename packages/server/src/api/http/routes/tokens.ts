import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { LIMITS } from '@muster/api';
import { ALL } from '../../../auth/rules.js';
import { grantOf, type HttpDeps, type HttpOperation } from '../context.js';
import { errors } from '../schemas.js';

const AccessToken = Type.Object({
  id: Type.String(),
  name: Type.String(),
  rules: Type.Array(Type.String()),
  createdAt: Type.String(),
  createdBy: Type.String(),
  revokedAt: Type.Optional(Type.String()),
});

/** Access tokens: admin on every namespace and service only. */
const adminOfAll = () => [{ level: 'admin' as const, on: [ALL, ALL] as const }];
const change: HttpOperation = { kind: 'manage', writes: true, rights: adminOfAll };
const list: HttpOperation = { kind: 'manage', rights: adminOfAll };

export function tokenRoutes(app: FastifyInstance, { tokens }: HttpDeps): void {
  const tags = ['tokens'];
  const security = [{ accessToken: [] as string[] }];
  app.post(
    '/v1/tokens',
    {
      config: { op: change },
      schema: {
        tags,
        security,
        summary: 'Create an access token; the answer holds its secret, shown only this once',
        body: Type.Object(
          {
            name: Type.String({ minLength: LIMITS.name.min, maxLength: LIMITS.name.max }),
            rules: Type.Array(Type.String({ maxLength: 300 }), {
              minItems: 1,
              maxItems: 64,
              description: 'right:namespacePattern/servicePattern, right one of read, write, admin',
            }),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({ token: AccessToken, secret: Type.String() }),
          ...errors(400, 401, 403, 409, 429),
        },
      },
    },
    async (req, reply) => {
      const g = grantOf(req);
      return reply.code(201).send(await tokens.create(req.body, g.who, undefined, g.context()));
    },
  );

  app.get<{ Querystring: { revoked: boolean } }>(
    '/v1/tokens',
    {
      config: { op: list },
      schema: {
        tags,
        security,
        summary: 'List access tokens (never their secrets)',
        querystring: Type.Object(
          { revoked: Type.Boolean({ default: false, description: 'include revoked tokens' }) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ tokens: Type.Array(AccessToken) }), ...errors(400, 401, 403) },
      },
    },
    async (req) => ({ tokens: tokens.list(req.query.revoked) }),
  );

  app.delete<{ Params: { ref: string } }>(
    '/v1/tokens/:ref',
    {
      config: { op: change },
      schema: {
        tags,
        security,
        summary: 'Revoke a token by id (or by name): refused from then on, on every node',
        params: Type.Object({ ref: Type.String({ minLength: 1, maxLength: 128 }) }),
        response: { 200: AccessToken, ...errors(400, 401, 403, 404, 429) },
      },
    },
    async (req) => {
      const g = grantOf(req);
      return tokens.revoke(req.params.ref, g.who, g.context());
    },
  );
}
