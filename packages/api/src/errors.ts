/**
 * The error vocabulary shared by every Muster protocol and by the SDK. Codes follow gRPC's
 * canonical names so the gRPC adapter maps them one to one; each adapter owns exactly one table
 * from code to its wire status.
 */
export const ErrorCodes = [
  'INVALID_ARGUMENT',
  'UNAUTHENTICATED',
  'PERMISSION_DENIED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'FAILED_PRECONDITION',
  'RESOURCE_EXHAUSTED',
  'UNAVAILABLE',
  'DEADLINE_EXCEEDED',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ErrorCodes)[number];

/** The JSON body of every error answer: `{"error": {...}}`. */
export interface ErrorBody {
  error: {
    code: ErrorCode;
    message: string;
    /** The request field at fault, as a dotted path (`port`, `metadata.env`, `items.3.token`). */
    field?: string;
  };
}

/**
 * Thrown by the server for every failure a caller can see, and re-thrown by the SDK with the
 * same code. Code elsewhere never matches on `message`: the code (and `field`) are the contract.
 */
export class MusterError extends Error {
  /** `MusterError`, or the name of the subclass (the SDK's own errors: packages/client/src/errors.ts). */
  override readonly name: string = 'MusterError';
  readonly code: ErrorCode;
  readonly field: string | undefined;
  /** When a retry may succeed (RESOURCE_EXHAUSTED from a rate limit): HTTP sends it as Retry-After. */
  readonly retryAfterS: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: { field?: string; cause?: unknown; retryAfterS?: number } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.field = options.field;
    this.retryAfterS = options.retryAfterS;
  }

  toJSON(): ErrorBody {
    const error: ErrorBody['error'] = { code: this.code, message: this.message };
    if (this.field !== undefined) error.field = this.field;
    return { error };
  }

  static isErrorBody(value: unknown): value is ErrorBody {
    if (typeof value !== 'object' || value === null) return false;
    const e = (value as { error?: unknown }).error;
    return (
      typeof e === 'object' &&
      e !== null &&
      typeof (e as { code?: unknown }).code === 'string' &&
      (ErrorCodes as readonly string[]).includes((e as { code: string }).code)
    );
  }

  static fromBody(body: ErrorBody): MusterError {
    return new MusterError(
      body.error.code,
      body.error.message,
      body.error.field === undefined ? {} : { field: body.error.field },
    );
  }
}
