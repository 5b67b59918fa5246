import type { ErrorCode } from '@muster/api';
import { MusterError } from '@muster/api';
import { tlsHint } from './tls.js';

/**
 * A status without a Muster error body came from something in between (a proxy, a load
 * balancer) or from a server bug; the code is still picked so callers can branch on it.
 */
function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 400: return 'INVALID_ARGUMENT';
    case 401: return 'UNAUTHENTICATED';
    case 403: return 'PERMISSION_DENIED';
    case 404: return 'NOT_FOUND';
    case 409: return 'FAILED_PRECONDITION';
    case 413: case 429: return 'RESOURCE_EXHAUSTED';
    case 504: return 'DEADLINE_EXCEEDED';
    case 502: case 503: return 'UNAVAILABLE';
    default: return status >= 500 ? 'INTERNAL' : 'INVALID_ARGUMENT';
  }
}

/** The error of a non-2xx answer: the server's own when the body is one, else built from the status. */
export function errorFromAnswer(status: number, statusText: string, text: string): MusterError {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (MusterError.isErrorBody(body)) return MusterError.fromBody(body);
  const snippet = text.trim().slice(0, 200);
  return new MusterError(codeForStatus(status), `HTTP ${status}${statusText ? ` ${statusText}` : ''}${snippet ? `: ${snippet}` : ''}`);
}

/**
 * A failure before or while reading an answer. fetch says only "fetch failed"; the reason
 * (ECONNREFUSED, ENOTFOUND, a reset, a certificate not trusted) sits in its cause, so the
 * message is built from that, with what to do about a TLS failure.
 */
export function errorFromFailure(err: unknown, what: string): MusterError {
  if (err instanceof MusterError) return err;
  if (err instanceof Error && err.name === 'TimeoutError') {
    return new MusterError('DEADLINE_EXCEEDED', `${what}: no answer in time`, { cause: err });
  }
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  const detail = cause instanceof Error ? cause.message : String(cause);
  const hint = tlsHint((cause as { code?: unknown } | undefined)?.code);
  return new MusterError('UNAVAILABLE', `${what}: ${detail}${hint ? `: ${hint}` : ''}`, { cause: err });
}

/** True when the caller's own signal ended the request: that is not a server failure. */
export function abortedByCaller(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}
