import type { RateLimits } from '../auth/rate-limits.js';
import type { Metrics } from '../metrics/metrics.js';
import type { WatchHub } from '../watch/watch-hub.js';
import type { Inbound } from './inbound.js';
import type { Parking } from './operation.js';

/**
 * Parks a long-poll until the service's revision moves from the one its caller holds, the wait
 * ends, the client goes, or the server stops; answers at once when the revision has moved
 * already. A parked request holds one of its address's watch slots and shows in the
 * `muster_watchers{kind="long_poll"}` gauge from the moment it waits.
 */
export class LongPolls {
  private readonly gauge: { inc(): void; dec(): void };

  constructor(
    private readonly hub: WatchHub,
    private readonly limits: RateLimits,
    metrics: Metrics,
    /** The service's current revision; throws NOT_FOUND for a service that does not exist. */
    private readonly revisionOf: (namespace: string, service: string) => number,
  ) {
    this.gauge = metrics.watchers.labels('long_poll');
  }

  /** Undefined when there is nothing to wait for: the common case, which costs no promise. */
  park(p: Parking | undefined, address: string, inbound: Inbound): Promise<void> | undefined {
    if (p === undefined || p.revision === undefined || p.waitMs <= 0) return undefined;
    if (this.revisionOf(p.namespace, p.service) !== p.revision) return undefined;
    const release = this.limits.openWatch(address);
    const aborted = new AbortController();
    const stopListening = inbound.onGone(() => aborted.abort());
    this.gauge.inc();
    return this.hub
      .waitForChange(p.namespace, p.service, p.waitMs, aborted.signal)
      .then(() => {})
      .finally(() => {
        this.gauge.dec();
        stopListening();
        release();
      });
  }
}
