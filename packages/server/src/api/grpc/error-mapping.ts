import { Metadata, status as Status, type StatusObject } from '@grpc/grpc-js';
import { GRPC_FIELD_KEY, GRPC_STATUS, MusterError } from '@muster/api';

/**
 * Field names the domain uses for where HTTP carries a value, renamed to where gRPC carries it:
 * HTTP sends the heartbeat token as an Authorization header, gRPC as the `heartbeat_token` field.
 */
const FIELD_NAMES: Readonly<Record<string, string>> = { authorization: 'heartbeatToken' };

export const grpcField = (field: string | undefined): string | undefined =>
  field === undefined ? undefined : (FIELD_NAMES[field] ?? field);

export type GrpcStatus = Pick<StatusObject, 'code' | 'details' | 'metadata'>;

/** The name of a numeric gRPC status (`NOT_FOUND`), for metrics and logs. */
export const statusName = (code: number): string => Status[code] ?? String(code);

/**
 * The one mapping from a failure to a gRPC status. A MusterError keeps its code (GRPC_STATUS is
 * one to one); its field goes in the trailer `muster-error-field` and in front of the message,
 * because many clients show only the message. Anything else is a bug: INTERNAL, with nothing of
 * it shown to the caller (see isBug).
 */
export function toGrpcStatus(err: unknown): GrpcStatus {
  const metadata = new Metadata();
  if (!(err instanceof MusterError)) return { code: Status.INTERNAL, details: 'internal error', metadata };
  const field = grpcField(err.field);
  if (field !== undefined) metadata.set(GRPC_FIELD_KEY, field);
  return {
    code: GRPC_STATUS[err.code],
    details: field !== undefined ? `${field}: ${err.message}` : err.message,
    metadata,
  };
}

/** A failure no request should cause: logged with its cause. */
export const isBug = (err: unknown): boolean => !(err instanceof MusterError) || err.code === 'INTERNAL';

/** A per-item error (a heartbeat of a batch) as the proto's muster.v1.Error. */
export function toGrpcItemError(e: { code: string; message: string; field?: string }): {
  code: string;
  message: string;
  field?: string;
} {
  const field = grpcField(e.field);
  return field === undefined ? { code: e.code, message: e.message } : { code: e.code, message: e.message, field };
}
