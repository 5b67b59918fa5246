import * as grpc from '@grpc/grpc-js';
import type { ErrorCode } from '@muster/api';
import { GRPC_FIELD_KEY, GRPC_STATUS, MusterError } from '@muster/api';
import { GrpcChannelError, ServerUnreachableError } from '../errors.js';

const CODE_OF_STATUS = new Map<number, ErrorCode>(
  Object.entries(GRPC_STATUS).map(([code, status]) => [status, code as ErrorCode]),
);

/**
 * A failed gRPC call as the MusterError the server raised (its code, and the field from the
 * trailers). Statuses Muster never sends come from the channel: CANCELLED and UNKNOWN without a
 * server answer mean the connection failed, UNIMPLEMENTED a server that is not Muster.
 */
export function fromGrpcError(err: unknown, what: string): MusterError {
  if (err instanceof MusterError) return err;
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e.code !== 'number') return new ServerUnreachableError(`${what}: ${String(err)}`, err);
  const field = e.metadata?.get(GRPC_FIELD_KEY)[0];
  const details = e.details ?? e.message ?? '';
  const code: ErrorCode =
    CODE_OF_STATUS.get(e.code) ??
    (e.code === grpc.status.CANCELLED || e.code === grpc.status.UNKNOWN ? 'UNAVAILABLE' : 'INTERNAL');
  // The server leads the message with the field ("port: port must be ..."), for tools that show
  // only the message; the typed error carries the field on its own.
  const message =
    typeof field === 'string' && details.startsWith(`${field}: `) ? details.slice(field.length + 2) : details;
  const own =
    CODE_OF_STATUS.has(e.code) && e.code !== grpc.status.UNAVAILABLE && e.code !== grpc.status.DEADLINE_EXCEEDED;
  const f = typeof field === 'string' ? field : undefined;
  if (own) return new MusterError(code, message, f === undefined ? { cause: err } : { cause: err, field: f });
  return new GrpcChannelError(code, `${what}: ${message || grpc.status[e.code]}`, err, f);
}
