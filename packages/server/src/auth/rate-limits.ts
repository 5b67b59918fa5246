import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { Errors } from '../errors.js';
import type { Caller } from './guard.js';

export interface RateLimitOptions {
  /** Writes per second per client address; 0: no limit. */
  perAddress: number;
  /** Writes per second per access token; 0: no limit. */
  perToken: number;
  /** Open watches (SSE, long-polls, gRPC Watch) per client address. */
  watchesPerClient: number;
}

/**
 * Per-node limits on what one client can make the registry do: writes (they cost a store
 * transaction) per address and per token, and open watches per address. Heartbeats are not
 * counted: they touch memory only and are bound to an instance's token already.
 */
export class RateLimits {
  private readonly byAddress: RateLimiterMemory | undefined;
  private readonly byToken: RateLimiterMemory | undefined;
  private readonly watches = new Map<string, number>();

  constructor(private readonly opts: RateLimitOptions) {
    // A bucket of one second's worth: a burst up to the rate, then the rate.
    if (opts.perAddress > 0) this.byAddress = new RateLimiterMemory({ points: opts.perAddress, duration: 1 });
    if (opts.perToken > 0) this.byToken = new RateLimiterMemory({ points: opts.perToken, duration: 1 });
  }

  /** Counts one write of this caller; rejects with RESOURCE_EXHAUSTED (and when to retry) past a limit. */
  async write(c: Caller): Promise<void> {
    try {
      if (this.byAddress) await this.byAddress.consume(c.address);
    } catch (err) {
      throw limited(`address ${c.address}`, err);
    }
    if (!c.principal || !this.byToken) return;
    try {
      await this.byToken.consume(c.principal.id);
    } catch (err) {
      throw limited(`token "${c.principal.name}"`, err);
    }
  }

  /** Takes a watch slot of the address; answers the release (call it once the watch ends). */
  openWatch(address: string): () => void {
    const n = this.watches.get(address) ?? 0;
    if (n >= this.opts.watchesPerClient) throw Errors.tooManyWatches(address, this.opts.watchesPerClient);
    this.watches.set(address, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.watches.get(address) ?? 1) - 1;
      if (left <= 0) this.watches.delete(address);
      else this.watches.set(address, left);
    };
  }
}

function limited(what: string, err: unknown): Error {
  if (!(err instanceof RateLimiterRes)) return err instanceof Error ? err : new Error(String(err));
  return Errors.rateLimited(what, Math.max(1, Math.ceil(err.msBeforeNext / 1000)));
}
