import { Type, type TSchema } from '@sinclair/typebox';
import { EventTypes, LIMITS } from '@muster/api';

/**
 * Route schemas: they check the shape of what arrives (types, unknown fields) and document the
 * API in the OpenAPI document. The data model's rules are the naming service's; ranges here
 * come from the same LIMITS table, for the document.
 */
const Name = (description: string) =>
  Type.String({ minLength: LIMITS.name.min, maxLength: LIMITS.name.max, pattern: LIMITS.name.pattern, description });
const Strict = { additionalProperties: false } as const;

// Not Type.Record: its key pattern ^(.*)$ does not match a key holding a line break, and the
// response serializer silently left such keys out of every answer that has a schema.
export const Metadata = Type.Object(
  {},
  { additionalProperties: Type.String({ maxLength: LIMITS.metadata.valueMax }), description: LIMITS.metadata.describe },
);
export const Location = Type.Object(
  { region: Type.Optional(Type.String()), zone: Type.Optional(Type.String()), campus: Type.Optional(Type.String()) },
  Strict,
);

export const ErrorReply = Type.Object(
  {
    error: Type.Object({ code: Type.String(), message: Type.String(), field: Type.Optional(Type.String()) }),
  },
  { $id: 'Error', description: 'Every failure: a code from the shared vocabulary, a message, the field at fault' },
);

export const Namespace = Type.Object({
  name: Type.String(),
  comment: Type.String(),
  createdAt: Type.String(),
  updatedAt: Type.String(),
  serviceCount: Type.Optional(Type.Integer()),
});

export const ServiceVerificationStatus = Type.Union(
  [
    Type.Object({ enabled: Type.Literal(false) }),
    Type.Object({
      enabled: Type.Literal(true),
      path: Type.String({ description: 'where instances are challenged' }),
      pendingInstanceCount: Type.Integer({ description: 'instances not yet checked: invisible to discovery' }),
      failedInstanceCount: Type.Integer({ description: 'instances whose check failed: invisible to discovery' }),
    }),
  ],
  { description: 'Verified registration; the secret is write-only and never answered' },
);

export const Service = Type.Object({
  namespace: Type.String(),
  name: Type.String(),
  metadata: Metadata,
  comment: Type.String(),
  revision: Type.Integer(),
  instanceCount: Type.Integer(),
  healthyInstanceCount: Type.Integer(),
  isolatedInstanceCount: Type.Integer({
    description: 'isolated instances (healthy or not): out of discovery until un-isolated',
  }),
  verification: ServiceVerificationStatus,
  createdAt: Type.String(),
  updatedAt: Type.String(),
});

export const InstanceVerification = Type.Object({
  state: Type.Union([Type.Literal('verified'), Type.Literal('pending'), Type.Literal('failed')], {
    description: 'only verified instances are discovered; every instance of a service without verification is verified',
  }),
  reason: Type.Optional(Type.String({ description: 'why the last check failed (state failed)' })),
  at: Type.Optional(
    Type.String({ description: 'ISO-8601 time of the last change of state; absent when never checked' }),
  ),
});

export const Instance = Type.Object({
  id: Type.String(),
  namespace: Type.String(),
  service: Type.String(),
  host: Type.String(),
  port: Type.Integer(),
  protocol: Type.String(),
  version: Type.String(),
  weight: Type.Integer(),
  priority: Type.Integer(),
  metadata: Metadata,
  location: Location,
  healthCheck: Type.Object({ type: Type.Literal('heartbeat'), ttl: Type.Integer() }),
  healthy: Type.Boolean(),
  isolate: Type.Boolean(),
  lastHeartbeat: Type.String({ description: 'ISO-8601 time of the last heartbeat' }),
  lastHeartbeatAgeMs: Type.Integer({ description: 'How old the last heartbeat was when this answer was built' }),
  revision: Type.Integer(),
  verification: InstanceVerification,
  createdAt: Type.String(),
  updatedAt: Type.String(),
});

export const NamespaceBody = Type.Object(
  { name: Name('namespace name'), comment: Type.Optional(Type.String({ maxLength: LIMITS.comment.max })) },
  Strict,
);
const VerificationBody = Type.Object(
  {
    secret: Type.String({
      minLength: LIMITS.verificationSecret.min,
      maxLength: LIMITS.verificationSecret.max,
      pattern: LIMITS.verificationSecret.pattern,
      description: `the shared secret of the service's providers (write-only): ${LIMITS.verificationSecret.describe}`,
    }),
    path: Type.Optional(
      Type.String({
        maxLength: LIMITS.verificationPath.max,
        pattern: LIMITS.verificationPath.pattern,
        default: LIMITS.verificationPath.default,
        description: `where instances answer the challenge: ${LIMITS.verificationPath.describe}`,
      }),
    ),
  },
  {
    ...Strict,
    description:
      'Verified registration: new instances stay invisible until they answer the challenge at host:port + path',
  },
);

export const ServiceBody = Type.Object(
  {
    name: Name('service name'),
    comment: Type.Optional(Type.String({ maxLength: LIMITS.comment.max })),
    metadata: Type.Optional(Metadata),
    verification: Type.Optional(VerificationBody),
  },
  Strict,
);
export const ServicePatchBody = Type.Object(
  {
    comment: Type.Optional(Type.String({ maxLength: LIMITS.comment.max })),
    metadata: Type.Optional(Metadata),
    verification: Type.Optional(
      Type.Union([VerificationBody, Type.Null()], {
        description: 'set or replace the setting (path absent: the default path); null turns verification off',
      }),
    ),
  },
  Strict,
);

export const RegisterBody = Type.Object(
  {
    id: Type.Optional(Name('instance id; derived from namespace, service, host and port when absent')),
    host: Type.String({ minLength: 1, maxLength: LIMITS.host.max, description: LIMITS.host.describe }),
    port: Type.Integer({ minimum: LIMITS.port.min, maximum: LIMITS.port.max }),
    protocol: Type.Optional(Type.String({ maxLength: LIMITS.shortText.max })),
    version: Type.Optional(Type.String({ maxLength: LIMITS.shortText.max })),
    weight: Type.Optional(
      Type.Integer({ minimum: LIMITS.weight.min, maximum: LIMITS.weight.max, default: LIMITS.weight.default }),
    ),
    priority: Type.Optional(Type.Integer({ minimum: LIMITS.priority.min, maximum: LIMITS.priority.max })),
    metadata: Type.Optional(Metadata),
    location: Type.Optional(Location),
    healthCheck: Type.Optional(
      Type.Object(
        {
          type: Type.Optional(Type.Literal('heartbeat')),
          ttl: Type.Optional(
            Type.Integer({
              minimum: LIMITS.ttl.min,
              maximum: LIMITS.ttl.max,
              default: LIMITS.ttl.default,
              description: LIMITS.ttl.describe,
            }),
          ),
        },
        Strict,
      ),
    ),
    isolate: Type.Optional(Type.Boolean()),
  },
  Strict,
);

export const RegisterReply = Type.Object({
  created: Type.Boolean(),
  instance: Instance,
  heartbeatToken: Type.String(),
});

export const InstancePatchBody = Type.Object(
  {
    weight: Type.Optional(Type.Integer({ minimum: LIMITS.weight.min, maximum: LIMITS.weight.max })),
    priority: Type.Optional(Type.Integer({ minimum: LIMITS.priority.min, maximum: LIMITS.priority.max })),
    isolate: Type.Optional(Type.Boolean()),
    metadata: Type.Optional(Metadata),
  },
  Strict,
);

export const HeartbeatBatchBody = Type.Object(
  {
    heartbeats: Type.Array(Type.Object({ id: Type.String(), token: Type.String() }, Strict), {
      maxItems: LIMITS.heartbeatBatchMax,
    }),
  },
  Strict,
);

export const HeartbeatBatchReply = Type.Object({
  results: Type.Array(
    Type.Object({
      id: Type.String(),
      ok: Type.Boolean(),
      error: Type.Optional(
        Type.Object({ code: Type.String(), message: Type.String(), field: Type.Optional(Type.String()) }),
      ),
    }),
  ),
});

const Duration = Type.String({
  pattern: '^\\d+(ms|s|m)?$',
  description: `long-poll duration such as 30s or 500ms, at most ${LIMITS.longPollMaxSeconds}s`,
});

export const DiscoverQuery = Type.Object(
  {
    status: Type.Optional(
      Type.Union([Type.Literal('healthy'), Type.Literal('unhealthy'), Type.Literal('all')], { default: 'healthy' }),
    ),
    isolated: Type.Optional(
      Type.Union([Type.Literal('false'), Type.Literal('true'), Type.Literal('all')], { default: 'false' }),
    ),
    region: Type.Optional(Type.String()),
    zone: Type.Optional(Type.String()),
    campus: Type.Optional(Type.String()),
    revision: Type.Optional(
      Type.Integer({ minimum: 0, description: 'the revision the caller holds: answered 304 when unchanged' }),
    ),
    wait: Type.Optional(Duration),
  },
  {
    additionalProperties: false,
    patternProperties: { '^metadata\\.': Type.String() },
    description: 'metadata.KEY=VALUE filters by metadata',
  },
);

export const WatchQuery = Type.Object(
  {
    namespace: Type.String(),
    service: Type.String(),
    allowMissing: Type.Optional(
      Type.Boolean({ description: 'watch a service that does not exist (yet) as empty, instead of 404' }),
    ),
    status: DiscoverQuery.properties.status,
    isolated: DiscoverQuery.properties.isolated,
    region: Type.Optional(Type.String()),
    zone: Type.Optional(Type.String()),
    campus: Type.Optional(Type.String()),
  },
  { additionalProperties: false, patternProperties: { '^metadata\\.': Type.String() } },
);

export const DiscoveredInstance = Type.Omit(
  Instance,
  ['namespace', 'service', 'lastHeartbeat', 'createdAt', 'updatedAt', 'verification'],
  {
    description: 'An instance as discovery answers it; GET /v1/instances/{id} has the full record',
  },
);
export const DiscoverReply = Type.Object({
  namespace: Type.String(),
  service: Type.String(),
  revision: Type.Integer(),
  instances: Type.Array(DiscoveredInstance),
  stale: Type.Optional(
    Type.Boolean({
      description:
        'present and true only in cluster mode while this node cannot read the shared store: the answer may miss changes made through other nodes',
    }),
  ),
  staleReason: Type.Optional(Type.String()),
});

export const EventsQuery = Type.Object(
  {
    namespace: Type.Optional(Type.String()),
    service: Type.Optional(Type.String()),
    instance: Type.Optional(Type.String()),
    type: Type.Optional(Type.String({ description: `comma-separated event types: ${EventTypes.join(', ')}` })),
    since: Type.Optional(Type.String({ description: 'an ISO-8601 time, or a duration ago such as 10m' })),
    after: Type.Optional(Type.Integer({ minimum: 0, description: 'only events with a larger id' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')], { default: 'desc' })),
  },
  Strict,
);

export const Event = Type.Object({
  id: Type.Integer(),
  type: Type.String(),
  namespace: Type.String(),
  service: Type.Optional(Type.String()),
  instanceId: Type.Optional(Type.String()),
  at: Type.String(),
  detail: Type.Object({}, { additionalProperties: true }),
});

export const NsParams = Type.Object({ ns: Type.String() });
export const SvcParams = Type.Object({ ns: Type.String(), svc: Type.String() });
export const IdParams = Type.Object({ id: Type.String() });

/** The usual error answers, for the document. */
export function errors(...statuses: number[]): Record<number, TSchema> {
  return Object.fromEntries(statuses.map((s) => [s, Type.Ref('Error')]));
}
