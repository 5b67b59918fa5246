import type { ErrorCode } from '@muster/api';
import { MusterError } from '@muster/api';

/**
 * Every error the SDK raises of its own. An error the registry answered is re-thrown as the
 * registry's MusterError (its code, message and field, as @muster/api declares it); the ones
 * here are what the SDK itself finds wrong. Each is a MusterError with the code a caller
 * branches on, a `name` of its own, and the `cause` it came from. Code elsewhere throws them by
 * name and never matches on a message.
 */

/** An option of MusterClient, MusterHttpClient, `tls` or the verification responder is wrong: thrown by the constructor. */
export class InvalidOptionError extends MusterError {
  override readonly name = 'InvalidOptionError';

  constructor(field: string, message: string, cause?: unknown) {
    super('INVALID_ARGUMENT', message, cause === undefined ? { field } : { field, cause });
  }
}

/** A server could not be reached, or its answer broke off (refused, unknown host, reset, TLS refused); `message` says which and how. */
export class ServerUnreachableError extends MusterError {
  override readonly name = 'ServerUnreachableError';

  constructor(message: string, cause?: unknown) {
    super('UNAVAILABLE', message, cause === undefined ? {} : { cause });
  }
}

/** No registry server of the list could be asked: each is down or backing off. */
export class NoServerReachableError extends MusterError {
  override readonly name = 'NoServerReachableError';

  constructor() {
    super('UNAVAILABLE', 'no registry server is reachable');
  }
}

/** A request had no answer within `timeoutMs`. */
export class RequestTimeoutError extends MusterError {
  override readonly name = 'RequestTimeoutError';

  constructor(message: string, cause?: unknown) {
    super('DEADLINE_EXCEEDED', message, cause === undefined ? {} : { cause });
  }
}

/**
 * A status without a Muster error body: something in between (a proxy, a load balancer) or a
 * server bug answered; the code is picked from the status so callers can still branch on it.
 */
export class HttpStatusError extends MusterError {
  override readonly name = 'HttpStatusError';

  constructor(
    readonly status: number,
    statusText: string,
    body: string,
  ) {
    const snippet = body.trim().slice(0, 200);
    super(codeForStatus(status), `HTTP ${status}${statusText ? ` ${statusText}` : ''}${snippet ? `: ${snippet}` : ''}`);
  }
}

/** A gRPC status the registry did not send: the channel's own (connection failed, UNIMPLEMENTED from a server that is not Muster). */
export class GrpcChannelError extends MusterError {
  override readonly name = 'GrpcChannelError';

  constructor(code: ErrorCode, message: string, cause: unknown, field?: string) {
    super(code, message, field === undefined ? { cause } : { cause, field });
  }
}

/** An answer that is not JSON: the server is not a Muster server (or a proxy answered for it). */
export class NotJsonAnswerError extends MusterError {
  override readonly name = 'NotJsonAnswerError';

  constructor(what: string, cause: unknown) {
    super('UNAVAILABLE', `${what}: the answer is not JSON (is this a Muster server?)`, { cause });
  }
}

/** A watch or heartbeat stream ended without a word from the server, or because the client closed it: reconnect. */
export class StreamEndedError extends MusterError {
  override readonly name = 'StreamEndedError';

  constructor(message: string) {
    super('UNAVAILABLE', message);
  }
}

/** A watch stream sent something the SDK cannot read: a snapshot that is not JSON, an error event that is not a Muster error. */
export class MalformedStreamError extends MusterError {
  override readonly name = 'MalformedStreamError';

  constructor(message: string, cause?: unknown) {
    super('INTERNAL', message, cause === undefined ? {} : { cause });
  }
}

/** The caller's snapshot handler threw: the watch ends with this (the handler's error is the cause). */
export class SnapshotHandlerError extends MusterError {
  override readonly name = 'SnapshotHandlerError';

  constructor(cause: unknown) {
    super('INTERNAL', `the snapshot handler threw: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}

/** `call` found no instance of the service to call (none served, or all tried). */
export class NoInstanceError extends MusterError {
  override readonly name = 'NoInstanceError';

  constructor(service: string) {
    super('UNAVAILABLE', `service "${service}" has no instance to call`, { field: 'service' });
  }
}

/** A MusterClient was used after `close()`. */
export class ClientClosedError extends MusterError {
  override readonly name = 'ClientClosedError';

  constructor() {
    super('FAILED_PRECONDITION', 'the client is closed');
  }
}

/** `register` with verification was called before the instance's server listens: the registry checks it right away. */
export class VerificationNotListeningError extends MusterError {
  override readonly name = 'VerificationNotListeningError';

  constructor() {
    super(
      'FAILED_PRECONDITION',
      'verification.server is not listening: the registry checks the instance right after it registers, so call register() once server.listen() is done',
      { field: 'verification.server' },
    );
  }
}

/** A heartbeat the server answered with a failure the SDK cannot read, or did not answer at all in a batch. */
export class HeartbeatFailedError extends MusterError {
  override readonly name = 'HeartbeatFailedError';

  constructor(message: string) {
    super('INTERNAL', message);
  }
}

/** The disk cache could not be read or written: emitted as a `warning`, never thrown into a call. */
export class DiskCacheError extends MusterError {
  override readonly name = 'DiskCacheError';

  constructor(cause: Error) {
    super('INTERNAL', `disk cache: ${cause.message}`, { cause });
  }
}

/** A service's watch failed twice in a row and the SDK long-polls instead: emitted as a `warning`, with the watch's code. */
export class WatchFallbackError extends MusterError {
  override readonly name = 'WatchFallbackError';

  constructor(service: string, cause: MusterError) {
    super(cause.code, `watching ${service} keeps failing (${cause.message}); long-polling instead`, { cause });
  }
}

/** Something that is not a MusterError reached the SDK's loops (a bug, or a throw from the caller's code): the message is its own. */
export class UnexpectedError extends MusterError {
  override readonly name = 'UnexpectedError';

  constructor(cause: unknown) {
    super('INTERNAL', cause instanceof Error ? cause.message : String(cause), { cause });
  }
}

/** A MusterError as it is; anything else as an UnexpectedError. */
export function asMusterError(err: unknown): MusterError {
  return err instanceof MusterError ? err : new UnexpectedError(err);
}

/** The code of a status without a Muster error body. */
function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 400:
      return 'INVALID_ARGUMENT';
    case 401:
      return 'UNAUTHENTICATED';
    case 403:
      return 'PERMISSION_DENIED';
    case 404:
      return 'NOT_FOUND';
    case 409:
      return 'FAILED_PRECONDITION';
    case 413:
    case 429:
      return 'RESOURCE_EXHAUSTED';
    case 504:
      return 'DEADLINE_EXCEEDED';
    case 502:
    case 503:
      return 'UNAVAILABLE';
    default:
      return status >= 500 ? 'INTERNAL' : 'INVALID_ARGUMENT';
  }
}
