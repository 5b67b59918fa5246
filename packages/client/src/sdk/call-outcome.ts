/**
 * gRPC status codes that are the caller's own doing, not the instance's trouble: a call refused
 * so says nothing about the instance's health (CANCELLED, INVALID_ARGUMENT, NOT_FOUND,
 * ALREADY_EXISTS, PERMISSION_DENIED, FAILED_PRECONDITION, ABORTED, OUT_OF_RANGE, UNIMPLEMENTED,
 * UNAUTHENTICATED). UNKNOWN, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL, UNAVAILABLE and
 * DATA_LOSS count as failures.
 */
const CALLERS_OWN = new Set([1, 3, 5, 6, 7, 9, 10, 11, 12, 16]);

/**
 * The default judgement of `MusterClient.call`: a thrown error is a failure (a refused or reset
 * connection, a timeout), except a gRPC status that is the caller's own doing; a result is a
 * failure when it is an HTTP response with a 5xx status (fetch's `status`, node:http's
 * `statusCode`).
 */
export function isFailedCall(outcome: { result?: unknown; error?: unknown }): boolean {
  if ('error' in outcome) return !isGrpcStatus(outcome.error) || !CALLERS_OWN.has(outcome.error.code);
  const r = outcome.result as { status?: unknown; statusCode?: unknown } | null | undefined;
  const status =
    typeof r?.status === 'number' ? r.status : typeof r?.statusCode === 'number' ? r.statusCode : undefined;
  return status !== undefined && status >= 500 && status <= 599;
}

/** A grpc-js ServiceError: a numeric status code with its details and metadata. */
function isGrpcStatus(e: unknown): e is { code: number } {
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof (e as { code?: unknown }).code === 'number' &&
    'details' in e &&
    'metadata' in e
  );
}
