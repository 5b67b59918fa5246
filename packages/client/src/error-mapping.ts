import { MusterError } from '@muster/api';
import { HttpStatusError, RequestTimeoutError, ServerUnreachableError } from './errors.js';
import { tlsHint } from './tls.js';

/** The error of a non-2xx answer: the server's own when the body is one, else built from the status. */
export function errorFromAnswer(status: number, statusText: string, text: string): MusterError {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (MusterError.isErrorBody(body)) return MusterError.fromBody(body);
  return new HttpStatusError(status, statusText, text);
}

/**
 * A failure before or while reading an answer. fetch says only "fetch failed"; the reason
 * (ECONNREFUSED, ENOTFOUND, a reset, a certificate not trusted) sits in its cause, so the
 * message is built from that, with what to do about a TLS failure.
 */
export function errorFromFailure(err: unknown, what: string): MusterError {
  if (err instanceof MusterError) return err;
  if (err instanceof Error && err.name === 'TimeoutError')
    return new RequestTimeoutError(`${what}: no answer in time`, err);
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  const detail = cause instanceof Error ? cause.message : String(cause);
  const hint = tlsHint((cause as { code?: unknown } | undefined)?.code);
  return new ServerUnreachableError(`${what}: ${detail}${hint ? `: ${hint}` : ''}`, err);
}

/** True when the caller's own signal ended the request: that is not a server failure. */
export function abortedByCaller(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}
