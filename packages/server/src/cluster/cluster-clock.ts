import type { Clock } from '../clock.js';
import { type ClusterLog, errorMessage, silentLog } from './redis-common.js';

interface Sample {
  /** Redis's clock minus the base clock, ms. */
  offset: number;
  /** The round trip it was measured over, ms. */
  rtt: number;
}

/**
 * The one clock of a cluster (DESIGN, cluster mode: no node compares its wall clock with
 * another's). Every time a node stamps, whether a heartbeat, a registration, an event, a health
 * transition or the cutoff of event pruning, is its own clock corrected by its measured distance
 * to Redis's clock, so two nodes stamp the same moment alike however wrong their machines' clocks
 * are, and the sweeping node compares like with like.
 *
 * The distance is measured every `intervalMs` with Redis's TIME, the way NTP does: Redis read its
 * clock about halfway through the round trip, and of the recent samples the one with the shortest
 * round trip counts (a slow answer says least about when Redis read its clock). A sample far from
 * the current distance means the machine's clock was stepped: it counts at once. Until the first
 * sample, and while Redis is out, the last known distance stands (a clock drifts milliseconds a
 * day, not seconds).
 */
export class ClusterClock implements Clock {
  private offset = 0;
  private samples: Sample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private failing = false;

  constructor(
    private readonly base: Clock,
    private readonly opts: { window?: number; log?: ClusterLog } = {},
  ) {}

  now(): number {
    return this.base.now() + this.offset;
  }

  /** This machine's own clock, uncorrected: to report how far it is off. */
  machineNow(): number {
    return this.base.now();
  }

  /** This node's own clock minus the cluster's, in ms (positive: it runs ahead); undefined before the first sample. */
  get skewMs(): number | undefined {
    return this.samples.length > 0 ? Math.round(0 - this.offset) : undefined;
  }

  /**
   * One measurement: `remote` is Redis's clock as read by a round trip that started at `before`
   * and ended at `after` on the base clock.
   */
  sample(before: number, remote: number, after: number): void {
    if (!(Number.isFinite(before) && Number.isFinite(remote) && after >= before)) return;
    const s: Sample = { offset: remote - (before + after) / 2, rtt: after - before };
    const best = this.best();
    // Farther from the current distance than both round trips can explain, plus slack for a slow
    // event loop: the machine's clock moved, and the old samples no longer say anything.
    if (best && Math.abs(s.offset - best.offset) > best.rtt + s.rtt + 250) this.samples = [];
    this.samples.push(s);
    if (this.samples.length > (this.opts.window ?? 8)) this.samples.shift();
    // Whole milliseconds, as every time the stores keep.
    this.offset = Math.round(this.best()!.offset);
  }

  /** Measures now and then every `intervalMs` with `readRemote` (Redis's TIME, in ms). */
  async start(readRemote: () => Promise<number>, intervalMs: number): Promise<void> {
    const measure = async () => {
      const before = this.base.now();
      try {
        const remote = await readRemote();
        this.sample(before, remote, this.base.now());
        if (this.failing) this.opts.log?.info({ skewMs: this.skewMs }, "cluster clock: reading Redis's clock again");
        this.failing = false;
      } catch (e) {
        if (!this.failing) {
          (this.opts.log ?? silentLog).warn(
            { err: errorMessage(e), skewMs: this.skewMs },
            this.samples.length > 0
              ? "cluster clock: cannot read Redis's clock; keeping the last measured distance"
              : "cluster clock: cannot read Redis's clock yet; using this machine's own until it can",
          );
        }
        this.failing = true;
      }
    };
    clearInterval(this.timer);
    this.timer = setInterval(() => void measure(), intervalMs);
    this.timer.unref();
    await measure();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private best(): Sample | undefined {
    let best: Sample | undefined;
    for (const s of this.samples) if (!best || s.rtt < best.rtt) best = s;
    return best;
  }
}
