import type { Logger } from 'pino';
import type { EventLog } from './event-log.js';

export interface EventPruningOptions {
  /** Events kept at least, however old (events.maxCount). */
  keep: number;
  /** Events younger than this are kept, however many (events.maxAge). */
  maxAgeMs: number;
  /** How often the log is pruned. */
  intervalMs: number;
  /** Cluster mode: true while this node holds the sweep lease, the one node that prunes for all. */
  holdsLease?: () => boolean;
}

/** The prune schedule: at start, then every `intervalMs`; a failed pruning waits for the next turn. */
export class EventPruning {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly events: EventLog,
    private readonly opts: EventPruningOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.prune(), this.opts.intervalMs);
    this.timer.unref();
    void this.prune();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One pruning; never rejects. */
  async prune(): Promise<void> {
    if (this.opts.holdsLease && !this.opts.holdsLease()) return;
    try {
      const n = await this.events.prune(this.opts.keep, this.opts.maxAgeMs);
      if (n > 0) this.log.info({ removed: n }, 'old events pruned');
    } catch (err) {
      this.log.warn({ err }, 'event pruning failed; will retry');
    }
  }
}
