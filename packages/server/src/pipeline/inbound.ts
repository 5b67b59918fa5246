import type { Caller } from '../auth/guard.js';

/**
 * What an adapter tells the pipeline about one request, whatever its protocol: who sent it
 * (the Authorization value as sent, the client's address), when it arrived, and whether its
 * client is still there. Made once per request (or per message of a stream).
 */
export interface Inbound {
  /** The Authorization header (HTTP) or metadata value (gRPC), as sent. */
  readonly authorization: unknown;
  /** The client's address, without port: what the per-address limits count. */
  readonly address: string;
  /** performance.now() of its arrival (ArrivalClock). */
  readonly receivedAt: number;
  /** How long the client itself gives the request from its arrival (a gRPC deadline); undefined: no bound of its own. */
  readonly budgetMs?: number;
  /** True once the client has gone (connection closed, call cancelled). */
  gone(): boolean;
  /** Calls `fn` when the client goes away; answers the function that stops listening. */
  onGone(fn: () => void): () => void;
  /**
   * The caller, once the pipeline has worked it out (RequestPipeline.identify): kept on the
   * request itself, as a WeakMap keyed by every request cost a measurable share of a heartbeat.
   */
  caller?: Caller;
}

/** The access token or instance token of `Bearer <token>`, if that is what was sent. */
export function bearerToken(authorization: unknown): string | undefined {
  if (typeof authorization !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  return m ? m[1] : undefined;
}
