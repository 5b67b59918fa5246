import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { AccessRights, LIMITS, type AccessRight } from '@muster/api';
import { ALL, allows, formatRule } from '../../../auth/rules.js';
import { grantOf, type HttpDeps } from '../context.js';
import { errors } from '../schemas.js';

const Name = Type.String({
  minLength: LIMITS.name.min,
  maxLength: LIMITS.name.max,
  pattern: LIMITS.name.pattern,
  description: 'a namespace (or service) name; every one when left out',
});

/**
 * What the caller's own credentials allow: whether auth is on, which token it is and the rights
 * it holds over a scope. Open to anyone, since it tells a caller only about itself, so a console
 * or a script can offer what the token may do instead of learning it from refusals.
 */
export function selfRoutes(app: FastifyInstance, { pipeline }: HttpDeps): void {
  app.get<{ Querystring: { namespace?: string; service?: string } }>(
    '/v1/tokens/self',
    {
      // Who is calling, nothing more: a wrong token is refused, as on every route.
      config: { op: { kind: 'self' } },
      schema: {
        tags: ['tokens'],
        summary: 'The calling token: its rules and its rights over a scope (every namespace and service unless named)',
        querystring: Type.Object(
          { namespace: Type.Optional(Name), service: Type.Optional(Name) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            auth: Type.Object({
              enabled: Type.Boolean(),
              clients: Type.Union([Type.Literal('required'), Type.Literal('open')]),
            }),
            token: Type.Union([
              Type.Object({ id: Type.String(), name: Type.String(), rules: Type.Array(Type.String()) }),
              Type.Null(),
            ]),
            rights: Type.Array(Type.String(), {
              description: 'the rights granted over all of the scope: read, write, admin',
            }),
          }),
          ...errors(400, 401),
        },
      },
    },
    async (req) => {
      const c = grantOf(req).caller!;
      const auth = pipeline.auth;
      const namespace = req.query.namespace ?? ALL;
      const service = req.query.service ?? ALL;
      const p = c.principal;
      let rights: AccessRight[];
      if (!auth.enabled) rights = [...AccessRights];
      else rights = p ? AccessRights.filter((r) => allows(p.rules, r, namespace, service)) : [];
      return {
        auth: { enabled: auth.enabled, clients: auth.clientsRequired ? ('required' as const) : ('open' as const) },
        token: p ? { id: p.id, name: p.name, rules: p.rules.map(formatRule) } : null,
        rights,
      };
    },
  );
}
