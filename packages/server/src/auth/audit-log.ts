import type { AuditDetail } from '@muster/api';
import type { Logger } from 'pino';
import type { WriteBatcher } from '../batch/write-batcher.js';
import type { Clock } from '../clock.js';

export interface AuditEntry extends AuditDetail {
  /** The namespace acted on; `*` for registry-wide actions (tokens, cluster, listings). */
  namespace: string;
  service?: string;
  instanceId?: string;
}

export interface AuditOptions {
  /** Refused requests recorded one by one per caller and second; the rest are counted in one entry. */
  refusedPerSecond: number;
  /** How often buffered entries are written (one batched write for all of them). */
  flushMs: number;
}

const MAX_BUFFERED = 10_000;

/**
 * The audit trail: `audit` events in the event log, queryable with GET /v1/events?type=audit.
 * Entries are buffered and written in one batched write, so auditing adds no store round trip to
 * the request it describes. Refused requests are what a flood is made of: past
 * `refusedPerSecond` per caller, they are counted and written as one entry with `suppressed`.
 */
export class AuditLog {
  private buffer: AuditEntry[] = [];
  private refused = new Map<string, { second: number; count: number; suppressed: AuditEntry | undefined }>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private dropped = 0;

  constructor(
    private readonly batcher: WriteBatcher,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly opts: AuditOptions,
  ) {}

  record(e: AuditEntry): void {
    if (e.outcome === 'refused' && !this.admitRefused(e)) return;
    this.push(e);
  }

  /** Writes what is buffered; `final` (at stop, before the batcher closes) also the counts of this second. */
  async flush(final = false): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const second = Math.floor(this.clock.now() / 1000);
    for (const [who, w] of this.refused) {
      if (!final && w.second === second) continue;
      if (w.suppressed) this.buffer.push(w.suppressed);
      this.refused.delete(who);
    }
    if (this.refused.size > 0) this.schedule();
    await this.flushing;
    const entries = this.buffer;
    if (entries.length === 0) return;
    this.buffer = [];
    const now = this.clock.now();
    this.flushing = this.batcher
      .submit(async (tx) => {
        for (const { namespace, service, instanceId, ...detail } of entries) {
          const event: Parameters<typeof tx.appendEvent>[0] = {
            type: 'audit',
            namespace,
            at: now,
            detail: { ...detail },
          };
          if (service !== undefined) event.service = service;
          if (instanceId !== undefined) event.instanceId = instanceId;
          await tx.appendEvent(event);
        }
      })
      .catch((err: unknown) => {
        // The trail must not take requests down with it; the loss is logged with its size.
        this.log.error({ err, entries: entries.length }, 'audit entries could not be written');
      })
      .finally(() => (this.flushing = undefined));
    await this.flushing;
  }

  private admitRefused(e: AuditEntry): boolean {
    const second = Math.floor(this.clock.now() / 1000);
    let w = this.refused.get(e.who);
    if (!w || w.second !== second) {
      if (w?.suppressed) this.push(w.suppressed);
      w = { second, count: 0, suppressed: undefined };
      this.refused.set(e.who, w);
    }
    if (++w.count <= this.opts.refusedPerSecond) return true;
    w.suppressed ??= { ...e, action: 'refused requests (flood)', suppressed: 0 };
    w.suppressed.suppressed! += 1;
    this.schedule();
    return false;
  }

  private push(e: AuditEntry): void {
    if (this.buffer.length >= MAX_BUFFERED) {
      if (this.dropped++ % 1000 === 0) this.log.warn({ dropped: this.dropped }, 'audit buffer full: entries dropped');
      return;
    }
    this.buffer.push(e);
    this.schedule();
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.opts.flushMs);
    this.timer.unref();
  }
}
