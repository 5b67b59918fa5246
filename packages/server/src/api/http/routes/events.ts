import type { FastifyInstance } from 'fastify';
import type { EventType } from '@muster/api';
import { EventTypes } from '@muster/api';
import { Type } from '@sinclair/typebox';
import { parseDuration } from '../../../config/config.js';
import { Errors } from '../../../errors.js';
import type { EventFilter } from '../../../store/store.js';
import { ALL } from '../../../auth/rules.js';
import type { HttpDeps, HttpOperation } from '../context.js';
import { Event, EventsQuery, errors } from '../schemas.js';

/** What a listing without `type` shows: changes of the registry, not the audit trail. */
const REGISTRY_EVENTS = EventTypes.filter((t) => t !== 'audit');

interface Query {
  namespace?: string;
  service?: string;
  instance?: string;
  type?: string;
  since?: string;
  after?: number;
  limit: number;
  order: 'asc' | 'desc';
}

/** `type=a,b`: each one an event type. */
function typesOf(q: Query): EventType[] | undefined {
  if (q.type === undefined) return undefined;
  const types = q.type
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  for (const t of types)
    if (!(EventTypes as readonly string[]).includes(t))
      throw Errors.invalid('type', `type must be a comma-separated list of: ${EventTypes.join(', ')}`);
  return types as EventType[];
}

/** Events of a scope need read on all of it; the audit trail, asked for by name (type=audit), admin on it. */
const events: HttpOperation = {
  kind: 'manage',
  rights: (req) => {
    const q = req.query as Query;
    const types = typesOf(q);
    const on = [q.namespace ?? ALL, q.service ?? ALL] as const;
    return types?.includes('audit')
      ? [
          { level: 'read', on },
          { level: 'admin', on },
        ]
      : [{ level: 'read', on }];
  },
};

export function eventRoutes(app: FastifyInstance, { naming }: HttpDeps): void {
  app.get<{ Querystring: Query }>(
    '/v1/events',
    {
      config: { op: events },
      schema: {
        tags: ['events'],
        summary: 'Recent events, newest first unless order=asc; the audit trail only with type=audit',
        querystring: EventsQuery,
        response: { 200: Type.Object({ events: Type.Array(Event) }), ...errors(400, 401, 403) },
      },
    },
    async (req) => {
      const q = req.query;
      const f: EventFilter = { limit: q.limit, newestFirst: q.order !== 'asc' };
      if (q.namespace !== undefined) f.namespace = q.namespace;
      if (q.service !== undefined) f.service = q.service;
      if (q.instance !== undefined) f.instanceId = q.instance;
      if (q.after !== undefined) f.afterId = q.after;
      f.types = typesOf(q) ?? REGISTRY_EVENTS;
      if (q.since !== undefined) {
        const ago = parseDuration(q.since);
        const at = ago !== undefined && !/^\d+$/.test(q.since) ? Date.now() - ago : Date.parse(q.since);
        if (!Number.isFinite(at))
          throw Errors.invalid('since', 'since must be an ISO-8601 time or a duration ago such as 10m');
        f.since = at;
      }
      return { events: await naming.listEvents(f) };
    },
  );
}
