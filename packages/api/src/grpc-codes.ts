import type { ErrorCode } from './errors.js';

/**
 * The numeric gRPC status of each Muster code. Muster's codes carry gRPC's canonical names, so
 * the mapping is one to one; the server sends these and the SDK reads them back, without either
 * depending on the other's gRPC library.
 */
export const GRPC_STATUS: Record<ErrorCode, number> = {
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
};

/** The trailing-metadata key that carries the request field at fault. */
export const GRPC_FIELD_KEY = 'muster-error-field';
