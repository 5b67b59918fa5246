import { MusterError } from '@muster/api';

/**
 * The errors only the Consul adapter raises, declared once. Each is a MusterError, so the one
 * error table gives it its status (400, 403, 404, 409); the adapter answers them as Consul does,
 * in plain text. Bad input is never a 5xx.
 */
export const ConsulErrors = {
  badBody: (why: string) => new MusterError('INVALID_ARGUMENT', `Request decode failed: ${why}`, { field: 'body' }),
  badField: (field: string, describe: string) =>
    new MusterError('INVALID_ARGUMENT', `Invalid ${field}: must be ${describe}`, { field }),
  activeCheck: (kind: string) =>
    new MusterError(
      'INVALID_ARGUMENT',
      `Check.${kind} is an active check, which Muster does not serve yet: use a TTL check (Check.TTL) and pass it with PUT /v1/agent/check/pass/{checkId}`,
      { field: `Check.${kind}` },
    ),
  badDuration: (param: string, value: string) =>
    new MusterError(
      'INVALID_ARGUMENT',
      `Invalid ${param}: ${JSON.stringify(value)} is not a duration such as 500ms, 10s or 1m30s`,
      { field: param },
    ),
  badIndex: (value: string) =>
    new MusterError('INVALID_ARGUMENT', `Invalid index: ${JSON.stringify(value)} is not a positive integer`, {
      field: 'index',
    }),
  unknownService: (id: string) => new MusterError('NOT_FOUND', `Unknown service ID ${JSON.stringify(id)}`),
  unknownCheck: (id: string) => new MusterError('NOT_FOUND', `Unknown check ID ${JSON.stringify(id)}`),
  notConsulOwned: (id: string) =>
    new MusterError(
      'PERMISSION_DENIED',
      `instance ${id} was registered through Muster's own API or another adapter: change it there`,
    ),
  notServed: (method: string, path: string) =>
    new MusterError(
      'NOT_FOUND',
      `${method} ${path} is not served: Muster serves Consul's /v1/agent (service register, deregister, maintenance; services, checks, self; check pass, warn, fail, update), /v1/health/service, /v1/catalog/services, /v1/catalog/service and /v1/status/leader; KV, sessions, ACLs, events and the rest are not`,
    ),
};
