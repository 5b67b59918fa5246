import { LIMITS, MIN_REVISION_FIELD, MusterError, REVISION_HEADER } from '@muster/api';

export { MusterError };

/**
 * Every error the server raises, declared once (the way fastify's lib/errors.js does). Code
 * throws these by name; adapters map `code` to their wire status in one table each.
 */
export const Errors = {
  invalid: (field: string, message: string) => new MusterError('INVALID_ARGUMENT', message, { field }),
  invalidLimit: (field: string, describe: string) =>
    new MusterError('INVALID_ARGUMENT', `${field} must be ${describe}`, { field }),
  unknownField: (field: string) => new MusterError('INVALID_ARGUMENT', `unknown field "${field}"`, { field }),
  requiredField: (field: string) => new MusterError('INVALID_ARGUMENT', `${field} is required`, { field }),
  badJson: (detail: string) =>
    new MusterError('INVALID_ARGUMENT', `request body is not valid JSON: ${detail}`, { field: 'body' }),
  unsupportedMediaType: (type: string) =>
    new MusterError(
      'INVALID_ARGUMENT',
      `content type ${JSON.stringify(type)} is not supported; send application/json`,
      { field: 'body' },
    ),
  jsonTooDeep: (max: number) =>
    new MusterError('INVALID_ARGUMENT', `request body nests arrays and objects deeper than ${max} levels`, {
      field: 'body',
    }),
  headersTooLarge: (max: number) =>
    new MusterError('RESOURCE_EXHAUSTED', `request headers are larger than ${max} bytes`, { field: 'headers' }),
  malformedRequest: () => new MusterError('INVALID_ARGUMENT', 'the request is not valid HTTP/1.1'),
  requestTimeout: () => new MusterError('DEADLINE_EXCEEDED', 'the request was not received in time'),
  bodyTooLarge: (limit: number) =>
    new MusterError('RESOURCE_EXHAUSTED', `request body is larger than ${limit} bytes`, { field: 'body' }),
  undecodable: (detail: string) => new MusterError('INVALID_ARGUMENT', `request message does not decode: ${detail}`),
  verificationAddressRefused: (host: string, why: string) =>
    new MusterError(
      'INVALID_ARGUMENT',
      `host ${host} cannot be verified: ${why}. The service requires verified registration, and the registry never connects there`,
      { field: 'host' },
    ),
  badPath: () =>
    new MusterError(
      'INVALID_ARGUMENT',
      'the request path has a malformed percent-encoding (% must be followed by two hex digits of UTF-8)',
      { field: 'path' },
    ),
  pathTooLong: () =>
    new MusterError(
      'INVALID_ARGUMENT',
      `a path parameter is too long (names and ids have at most ${LIMITS.name.max} characters)`,
      { field: 'path' },
    ),
  waitTooLong: () =>
    new MusterError('INVALID_ARGUMENT', `wait must be a duration of at most ${LIMITS.longPollMaxSeconds}s (e.g. 30s)`, {
      field: 'wait',
    }),
  badMinRevision: () =>
    new MusterError(
      'INVALID_ARGUMENT',
      `${MIN_REVISION_FIELD} must be a non-negative integer: the revision a write answered (${REVISION_HEADER})`,
      { field: MIN_REVISION_FIELD },
    ),

  routeNotFound: (method: string, url: string) => new MusterError('NOT_FOUND', `no route ${method} ${url}`),
  namespaceNotFound: (ns: string) =>
    new MusterError('NOT_FOUND', `namespace "${ns}" does not exist`, { field: 'namespace' }),
  serviceNotFound: (ns: string, svc: string) =>
    new MusterError('NOT_FOUND', `service "${svc}" does not exist in namespace "${ns}"`, { field: 'service' }),
  instanceNotFound: (id: string) =>
    new MusterError('NOT_FOUND', `instance "${id}" does not exist; register it again`, { field: 'id' }),

  namespaceExists: (ns: string) =>
    new MusterError('ALREADY_EXISTS', `namespace "${ns}" already exists`, { field: 'name' }),
  serviceExists: (ns: string, svc: string) =>
    new MusterError('ALREADY_EXISTS', `service "${svc}" already exists in namespace "${ns}"`, { field: 'name' }),
  instanceIdTaken: (id: string) =>
    new MusterError('ALREADY_EXISTS', `instance id "${id}" belongs to another service`, { field: 'id' }),
  instanceAlive: (id: string) =>
    new MusterError(
      'ALREADY_EXISTS',
      `instance "${id}" is registered and alive; re-register it with its heartbeatToken (HTTP: Authorization: Bearer; gRPC: heartbeat_token) or wait until it expires`,
      { field: 'id' },
    ),
  namespaceNotEmpty: (ns: string, services: number) =>
    new MusterError('FAILED_PRECONDITION', `namespace "${ns}" still has ${services} service(s); delete them first`, {
      field: 'namespace',
    }),
  serviceNotEmpty: (ns: string, svc: string, instances: number) =>
    new MusterError(
      'FAILED_PRECONDITION',
      `service "${svc}" in namespace "${ns}" still has ${instances} instance(s); deregister them or pass force=true`,
      { field: 'service' },
    ),
  defaultNamespace: () =>
    new MusterError('FAILED_PRECONDITION', 'namespace "default" cannot be deleted', { field: 'namespace' }),
  revisionAhead: (revision: number, newest: number) =>
    new MusterError(
      'FAILED_PRECONDITION',
      `revision ${revision} was never committed in this registry (its newest is ${newest}): it comes from another registry, or this one's store was reset; ask again without it`,
      { field: MIN_REVISION_FIELD },
    ),
  autoCreateOff: (ns: string, svc: string) =>
    new MusterError(
      'NOT_FOUND',
      `service "${svc}" does not exist in namespace "${ns}" and autoCreateService is off; create it first`,
      { field: 'service' },
    ),

  tokenMissing: () =>
    new MusterError(
      'UNAUTHENTICATED',
      'this instance needs its heartbeatToken: send it as Authorization: Bearer <heartbeatToken> (HTTP) or in heartbeat_token (gRPC)',
      { field: 'authorization' },
    ),
  tokenWrong: (id: string) =>
    new MusterError('PERMISSION_DENIED', `the token presented does not belong to instance "${id}"`, {
      field: 'authorization',
    }),

  unauthenticated: (why: string) =>
    new MusterError(
      'UNAUTHENTICATED',
      `${why}: send an access token as Authorization: Bearer mst_... (HTTP) or in the authorization metadata (gRPC)`,
      { field: 'authorization' },
    ),
  accessTokenRefused: () =>
    new MusterError('UNAUTHENTICATED', 'the access token is unknown or revoked: no active token matches it', {
      field: 'authorization',
    }),
  /** A Bearer was sent where an access token is needed, but it does not have an access token's shape. */
  accessTokenMalformed: (why: string) =>
    new MusterError(
      'UNAUTHENTICATED',
      `${why}, and the token sent is not an access token: it is malformed (an access token reads mst_<12 hex digits>_<43 characters>, 60 in all) or it is an instance's heartbeatToken, which does not open this API`,
      { field: 'authorization' },
    ),
  accessDenied: (who: string, right: string, scope: string) =>
    new MusterError('PERMISSION_DENIED', `${who} has no ${right} right on ${scope}`, { field: 'authorization' }),
  noWriteRight: (ns: string, svc: string) =>
    new MusterError(
      'PERMISSION_DENIED',
      `the access token has no write right on namespace "${ns}", service "${svc}", and no heartbeatToken of the instance was given`,
      { field: 'authorization' },
    ),
  moveNeedsWriteRight: (id: string, field: 'host' | 'port') =>
    new MusterError(
      'PERMISSION_DENIED',
      `moving instance "${id}" to another host or port is registering another endpoint: it needs an access token with write on its service, not its heartbeatToken (auth.clients is required)`,
      { field },
    ),
  isolationNeedsAccessToken: (id: string) =>
    new MusterError(
      'PERMISSION_DENIED',
      `changing the isolation of instance "${id}" is an operator's action: it needs an access token with write on its service, not its heartbeatToken (leave isolate out to keep it)`,
      { field: 'isolate' },
    ),
  tokenNameTaken: (name: string) =>
    new MusterError('ALREADY_EXISTS', `an active token named "${name}" exists; revoke it first or pick another name`, {
      field: 'name',
    }),
  tokenNotFound: (ref: string) =>
    new MusterError('NOT_FOUND', `no active token with id or name "${ref}"`, { field: 'id' }),
  rateLimited: (what: string, retryAfterS: number) =>
    new MusterError('RESOURCE_EXHAUSTED', `too many writes from ${what}; retry in ${retryAfterS} s`, { retryAfterS }),
  tooManyPendingChecks: () =>
    new MusterError(
      'RESOURCE_EXHAUSTED',
      "too many of this caller's registrations are waiting for their verification check (verification.maxPendingPerCaller); retry once some are checked",
      { retryAfterS: 2 },
    ),
  tooManyWatches: (address: string, max: number) =>
    new MusterError(
      'RESOURCE_EXHAUSTED',
      `${address} already has ${max} open watches (limits.watchesPerClient); close some first`,
      { retryAfterS: 1 },
    ),

  slowWatcher: () =>
    new MusterError(
      'RESOURCE_EXHAUSTED',
      'the client did not read its watch stream; watch again with the last revision',
    ),
  backupUnsupported: (store: string) =>
    new MusterError(
      'FAILED_PRECONDITION',
      `the ${store} store has no online backup here: back up a MySQL store with mariadb-dump or mariadb-backup (docs/operations.md)`,
    ),
  shuttingDown: () => new MusterError('UNAVAILABLE', 'the server is shutting down; retry on another node'),
  storeUnavailable: (cause: unknown) =>
    new MusterError('UNAVAILABLE', 'the store could not commit the write; nothing was changed, retry', { cause }),
  /** A shared database (MySQL) could not do it now but a retry can: a concurrent write of another node, a slow or unreachable database. */
  storeRetry: (why: string, cause: unknown) => new MusterError('UNAVAILABLE', `${why}; retry`, { cause }),
  revisionNotApplied: (revision: number, applied: number, waitedMs: number) =>
    new MusterError(
      'UNAVAILABLE',
      `this node has applied changes up to revision ${applied} and did not reach ${revision} within ${waitedMs} ms; retry, or ask another node`,
    ),
  revisionUnreachable: (revision: number, applied: number, cause: Error) =>
    new MusterError(
      'UNAVAILABLE',
      `this node has applied changes up to revision ${applied} and cannot read the shared store to reach ${revision} (${cause.message}); ask another node`,
      { cause },
    ),
  instanceLookupFailed: (id: string, cause: unknown) =>
    new MusterError(
      'UNAVAILABLE',
      `instance "${id}" is not in this node's index yet and the shared store could not be asked for it; retry`,
      { cause },
    ),

  clientGone: () =>
    new MusterError('DEADLINE_EXCEEDED', 'the client went away before the write was applied: nothing was changed'),
  waitedTooLong: (waitedMs: number, limitMs: number) =>
    new MusterError(
      'DEADLINE_EXCEEDED',
      `the request waited ${Math.round(waitedMs)} ms before it could be applied, past its deadline of ${Math.round(limitMs)} ms (limits.writeWait, or the gRPC call's own): nothing was changed; retry`,
    ),
  internal: (cause: unknown) => new MusterError('INTERNAL', 'internal error', { cause }),
} as const;
