import type { ErrorCode } from '@muster/api';
import { LIMITS, MusterError } from '@muster/api';
import { Errors } from '../../errors.js';

/** The one table from error code to HTTP status (etcd's toGRPCErrorMap, for HTTP). */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  INVALID_ARGUMENT: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  FAILED_PRECONDITION: 409,
  RESOURCE_EXHAUSTED: 429,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
  INTERNAL: 500,
};

interface AjvError {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

interface FastifyLikeError {
  statusCode?: number;
  code?: string;
  message: string;
  validation?: AjvError[];
  validationContext?: string;
}

/** Per-field descriptions, so a schema failure reads the same as the domain's own check. */
const DESCRIBE: Record<string, string> = {
  port: LIMITS.port.describe,
  weight: LIMITS.weight.describe,
  priority: LIMITS.priority.describe,
  'healthCheck.ttl': LIMITS.ttl.describe,
  host: LIMITS.host.describe,
  id: LIMITS.name.describe,
  name: LIMITS.name.describe,
  status: 'one of healthy, unhealthy, all',
  isolated: 'one of false, true, all',
  order: 'one of asc, desc',
  'verification.secret': LIMITS.verificationSecret.describe,
  'verification.path': LIMITS.verificationPath.describe,
};

/**
 * Turns anything a request can fail with into a MusterError plus the HTTP status to send. A
 * few transport errors keep a more exact status (413, 414, 415) under the shared code.
 */
export function toHttpError(
  err: unknown,
  bodyLimit: number,
  contentType?: string,
): { status: number; error: MusterError } {
  if (err instanceof MusterError) return { status: HTTP_STATUS[err.code], error: err };
  const e = err as FastifyLikeError;
  if (e.validation && e.validation.length > 0)
    return { status: 400, error: fromValidation(e.validation[0]!, e.validationContext ?? 'body') };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, error: Errors.bodyTooLarge(bodyLimit) };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      // Fastify 5's message no longer carries the type, so it comes from the request.
      return { status: 415, error: Errors.unsupportedMediaType(contentType ?? '') };
    case 'FST_ERR_BAD_URL':
      return { status: 400, error: Errors.badPath() };
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return { status: 414, error: Errors.pathTooLong() };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, error: Errors.invalid('body', 'request body is empty; send a JSON object') };
  }
  if (e.statusCode === 400 || err instanceof SyntaxError) return { status: 400, error: Errors.badJson(e.message) };
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, error: new MusterError('INVALID_ARGUMENT', e.message) };
  }
  return { status: 500, error: Errors.internal(err) };
}

function fromValidation(v: AjvError, context: string): MusterError {
  const path = v.instancePath.split('/').filter(Boolean).join('.');
  const at = (child: unknown) => [path, String(child)].filter(Boolean).join('.');
  if (v.keyword === 'additionalProperties') return Errors.unknownField(at(v.params['additionalProperty']));
  if (v.keyword === 'required') return Errors.requiredField(at(v.params['missingProperty']));
  if (path === '' && v.keyword === 'type') {
    return context === 'body'
      ? Errors.invalid('body', 'request body must be a JSON object')
      : Errors.invalid(context, `${context} is malformed`);
  }
  const describe = DESCRIBE[path];
  if (describe) return Errors.invalidLimit(path, describe);
  return Errors.invalid(path, `${path} ${v.message ?? 'is invalid'}`);
}
