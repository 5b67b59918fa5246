import { performance } from 'node:perf_hooks';
import { Errors } from '../errors.js';

/**
 * What a request brings to the writes it makes, and takes back from them: its deadline and
 * cancellation (as a Go context carries them), and the revision it committed. A node that was paused
 * (a long GC pause, a frozen VM, SIGSTOP) or fell behind must not apply what its clients have
 * given up on: a write is applied only while its client is still there and its deadline has not
 * passed, and a heartbeat counts from when it arrived, not from when it was read.
 */
export interface RequestContext {
  /** performance.now() when the request arrived, as early as it can have (ArrivalClock). */
  readonly receivedAt: number;
  /** performance.now() past which nothing is applied for it: limits.writeWait after arrival, or sooner (a gRPC deadline). */
  readonly deadline: number;
  /** True once its client has gone: the connection closed, the gRPC call was cancelled. */
  gone(): boolean;
  /**
   * Set by the write batcher once a write of this request committed: the highest change number
   * its writes took, 0 when they changed nothing.
   */
  revision?: number;
}

/** Throws DEADLINE_EXCEEDED when nothing may be applied for this request any more. */
export function checkContext(ctx: RequestContext): void {
  if (ctx.gone()) throw Errors.clientGone();
  const now = performance.now();
  if (now > ctx.deadline) throw Errors.waitedTooLong(now - ctx.receivedAt, ctx.deadline - ctx.receivedAt);
}
