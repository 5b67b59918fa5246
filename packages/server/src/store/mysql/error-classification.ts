import { Errors, MusterError } from '../../errors.js';
import { COLLISION_ERRNOS, CONNECTION_ERRNOS, ER, STATEMENT_TIMEOUT_ERRNOS } from './sql.js';

/**
 * What a driver or server error means for the transaction and its connection: `txDead`, the
 * transaction cannot go on; `connDead`, the connection is thrown away.
 */
export type Failure = { error: Error; txDead: boolean; connDead: boolean };

/**
 * Turns driver and server errors into MusterErrors: what the database reports as a collision
 * with another node (a duplicate key from two nodes inserting the same new row, a deadlock, a
 * lock wait timeout, a foreign key another node just removed), a timeout or an unreachable
 * server answers UNAVAILABLE, which callers retry, never an internal error.
 */
export class FailureClassifier {
  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly writeTimeoutMs: number,
  ) {}

  timeoutError(what: string, cause: unknown): MusterError {
    return Errors.storeRetry(
      `the database at ${this.host}:${this.port} did not answer within ${this.writeTimeoutMs} ms (${what})`,
      cause,
    );
  }

  /** What a driver or server error means here: a retryable MusterError or, when it is neither, a bug. */
  classify(err: unknown): Failure {
    if (err instanceof MusterError) return { error: err, txDead: false, connDead: false };
    const e = err as { errno?: number; code?: string; fatal?: boolean; message?: string };
    switch (e.errno) {
      case ER.DUP_ENTRY:
        return {
          error: Errors.storeRetry('another node wrote the same row at the same time: concurrent write', err),
          txDead: false,
          connDead: false,
        };
      case ER.BAD_NULL:
        // Only ever the guard of a revision bump (SQL.bumpService): every value written is set.
        return {
          error: Errors.storeRetry(
            "another node changed the service's settings at the same time: concurrent write",
            err,
          ),
          txDead: false,
          connDead: false,
        };
      case ER.NO_REFERENCED_ROW:
      case ER.NO_REFERENCED_ROW_2:
      case ER.ROW_IS_REFERENCED:
      case ER.ROW_IS_REFERENCED_2:
        return {
          error: Errors.storeRetry('another node changed a related row at the same time: concurrent write', err),
          txDead: false,
          connDead: false,
        };
      case ER.LOCK_DEADLOCK:
        // The server rolled the whole transaction back.
        return {
          error: Errors.storeRetry("the write deadlocked with another node's: concurrent write", err),
          txDead: true,
          connDead: false,
        };
      case ER.LOCK_WAIT_TIMEOUT:
        return {
          error: Errors.storeRetry('a row stayed locked by another node too long: concurrent write', err),
          txDead: true,
          connDead: false,
        };
      case ER.SP_DOES_NOT_EXIST:
        return {
          error: Errors.storeRetry('the transaction was rolled back by the database', err),
          txDead: true,
          connDead: false,
        };
    }
    if (e.errno !== undefined && STATEMENT_TIMEOUT_ERRNOS.has(e.errno))
      return { error: this.timeoutError('statement time limit', err), txDead: true, connDead: false };
    if (e.code === 'PROTOCOL_SEQUENCE_TIMEOUT')
      return { error: this.timeoutError('query', err), txDead: true, connDead: true };
    if (
      e.fatal ||
      (e.errno !== undefined && CONNECTION_ERRNOS.has(e.errno)) ||
      (typeof e.code === 'string' && /^(E[A-Z]+|PROTOCOL_.*|HANDSHAKE_.*)$/.test(e.code))
    ) {
      return {
        error: Errors.storeRetry(`the database at ${this.host}:${this.port} is not reachable: ${describe(err)}`, err),
        txDead: true,
        connDead: true,
      };
    }
    return { error: err instanceof Error ? err : new Error(String(err)), txDead: false, connDead: false };
  }
}

/** A collision with another node's concurrent write: the same writes in smaller transactions may succeed. */
export function collided(err: unknown): boolean {
  const errno = err instanceof MusterError ? (err.cause as { errno?: number } | undefined)?.errno : undefined;
  return errno !== undefined && COLLISION_ERRNOS.has(errno);
}

export function isDuplicate(err: unknown): boolean {
  return err instanceof MusterError && (err.cause as { errno?: number } | undefined)?.errno === ER.DUP_ENTRY;
}

/** A driver error as one line: its code and message. */
export function describe(err: unknown): string {
  const e = err as { code?: string; message?: string };
  if (e.code && e.message && !e.message.includes(e.code)) return `${e.code}: ${e.message}`;
  return e.message || e.code || String(err);
}
