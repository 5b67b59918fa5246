import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { Errors } from '../errors.js';
import { clientKey } from './client-key.js';
import type { Caller } from './guard.js';

export interface RateLimitOptions {
  /** Writes per second per client address; 0: no limit. */
  perAddress: number;
  /** Writes per second per access token; 0: no limit. */
  perToken: number;
  /** Open watches (SSE, long-polls, gRPC Watch) per client address. */
  watchesPerClient: number;
  /** An IPv6 client is counted by this many leading bits of its address (see clientKey). */
  ipv6Prefix: number;
}

/**
 * Per-node limits on what one client can make the registry do: writes (they cost a store
 * transaction) per address and per token, and open watches per address. Heartbeats are not
 * counted: they touch memory only and are bound to an instance's token already. A refused
 * request (bad input, no or wrong credentials) counts as a write of its address: refusing is
 * work too, and a client that keeps being refused is stopped before its bodies are read.
 * "Address" is the client as clientKey counts it, not the exact address.
 */
export class RateLimits {
  private readonly byAddress: RateLimiterMemory | undefined;
  private readonly byToken: RateLimiterMemory | undefined;
  private readonly watches = new Map<string, number>();
  /** Callers whose request already counted as a write: its refusal is not counted twice. */
  private readonly counted = new WeakSet<Caller>();

  constructor(private readonly opts: RateLimitOptions) {
    // A bucket of one second's worth: a burst up to the rate, then the rate.
    if (opts.perAddress > 0) this.byAddress = new RateLimiterMemory({ points: opts.perAddress, duration: 1 });
    if (opts.perToken > 0) this.byToken = new RateLimiterMemory({ points: opts.perToken, duration: 1 });
  }

  /** Whether writes per address are limited: only then is a request screened before its body is read. */
  get screens(): boolean {
    return this.byAddress !== undefined;
  }

  /** The client an address counts as. */
  keyOf(address: string): string {
    return clientKey(address, this.opts.ipv6Prefix);
  }

  /** Who a caller is as one client: its access token, or else its address as the limits count it. */
  clientOf(c: Caller): string {
    return c.principal ? `token:${c.principal.id}` : this.keyOf(c.address);
  }

  /** Counts one write of this caller; rejects with RESOURCE_EXHAUSTED (and when to retry) past a limit. */
  async write(c: Caller): Promise<void> {
    this.counted.add(c);
    const key = this.keyOf(c.address);
    try {
      if (this.byAddress) await this.byAddress.consume(key);
    } catch (err) {
      throw limited(`address ${key}`, err);
    }
    if (!c.principal || !this.byToken) return;
    try {
      await this.byToken.consume(c.principal.id);
    } catch (err) {
      throw limited(`token "${c.principal.name}"`, err);
    }
  }

  /** Counts a refused request against its address, unless it counted as a write already. */
  refused(address: string, caller?: Caller): void {
    if (!this.byAddress || (caller && this.counted.has(caller))) return;
    // Past the limit the bucket only gets emptier: the rejection itself is the point.
    this.byAddress.consume(this.keyOf(address)).catch(() => {});
  }

  /**
   * Before anything of a request is read: rejects it when its address has used up its writes
   * (or refusals) of this second. Counts nothing.
   */
  async screen(address: string): Promise<void> {
    if (!this.byAddress) return;
    const key = this.keyOf(address);
    const res = await this.byAddress.get(key);
    if (res && res.remainingPoints <= 0) throw limited(`address ${key}`, res);
  }

  /** Takes a watch slot of the address; answers the release (call it once the watch ends). */
  openWatch(address: string): () => void {
    const key = this.keyOf(address);
    const n = this.watches.get(key) ?? 0;
    if (n >= this.opts.watchesPerClient) throw Errors.tooManyWatches(key, this.opts.watchesPerClient);
    this.watches.set(key, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.watches.get(key) ?? 1) - 1;
      if (left <= 0) this.watches.delete(key);
      else this.watches.set(key, left);
    };
  }
}

function limited(what: string, err: unknown): Error {
  if (!(err instanceof RateLimiterRes)) return err instanceof Error ? err : new Error(String(err));
  return Errors.rateLimited(what, Math.max(1, Math.ceil(err.msBeforeNext / 1000)));
}
