import type { Counter } from 'prom-client';
import type { Metrics } from './metrics.js';

/** One point of the history: what this node did per second over the interval ending at `at`. */
export interface RateSample {
  /** End of the interval, ms since the epoch. */
  at: number;
  registrations: number;
  heartbeats: number;
  discoveries: number;
}

export interface RateHistoryOptions {
  /** Time between samples. Default 5 s. */
  intervalMs?: number;
  /** Samples kept. Default 120 (ten minutes at 5 s). */
  keep?: number;
}

type Totals = Omit<RateSample, 'at'>;

/**
 * Per-second rates of the registry's own counters over the last minutes, for the console's
 * chart (GET /v1/stats): sampled here, so a page opened now shows the minutes before it without
 * parsing the Prometheus text or running a Prometheus.
 */
export class RateHistory {
  readonly intervalMs: number;
  private readonly keep: number;
  private readonly samples: RateSample[] = [];
  private last: { at: number; totals: Totals } | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly metrics: Metrics,
    opts: RateHistoryOptions = {},
    private readonly now: () => number = Date.now,
  ) {
    this.intervalMs = opts.intervalMs ?? 5000;
    this.keep = opts.keep ?? 120;
  }

  start(): void {
    if (this.timer) return;
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Oldest first. */
  list(): RateSample[] {
    return this.samples.slice();
  }

  /** Reads the counters and appends the rates since the previous reading. */
  async sample(): Promise<void> {
    const at = this.now();
    const totals: Totals = {
      registrations: await sum(this.metrics.registrations, (l) => l['result'] !== 'rejected'),
      heartbeats: await sum(this.metrics.heartbeats, (l) => l['result'] === 'ok'),
      discoveries: await sum(this.metrics.discoveries),
    };
    const prev = this.last;
    this.last = { at, totals };
    if (!prev || at <= prev.at) return;
    const seconds = (at - prev.at) / 1000;
    const rate = (k: keyof Totals) => Math.max(0, Math.round(((totals[k] - prev.totals[k]) / seconds) * 10) / 10);
    this.samples.push({
      at,
      registrations: rate('registrations'),
      heartbeats: rate('heartbeats'),
      discoveries: rate('discoveries'),
    });
    if (this.samples.length > this.keep) this.samples.shift();
  }
}

async function sum<L extends string>(
  counter: Counter<L>,
  match: (labels: Record<string, unknown>) => boolean = () => true,
): Promise<number> {
  let total = 0;
  for (const v of (await counter.get()).values) if (match(v.labels)) total += v.value;
  return total;
}
