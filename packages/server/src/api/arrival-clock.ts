import { performance } from 'node:perf_hooks';

const TICK_MS = 50;
/**
 * A tick this much later than due means the event loop stalled. A busy loop lags by less: a
 * request that waited that long is dated to when it was read, as a heartbeat dated back by our
 * own load would make its instance expire early.
 */
const STALL_MS = 1000;
/** Requests read this soon after a stall (or as long as it lasted, if shorter) may still be ones that arrived during it. */
const AFTER_STALL_MS = 1000;

/**
 * When a request arrived, as far as this process can tell. The event loop reads a request when it
 * gets to it: after a stall (a long GC pause, a frozen VM, SIGSTOP) it reads at once everything
 * that arrived meanwhile, and cannot tell when each came. Such a request counts as having arrived
 * when the stall began, the earliest it can have, so that a bound on how long a request may wait
 * (limits.writeWait) never lets one through late, and a heartbeat that waited out the stall does
 * not count as fresh. A tick every 50 ms notes when the loop last ran; a request read while the
 * loop is more than a second late, or soon after such a stall (as long as it lasted, a second at
 * most), is dated back.
 */
export class ArrivalClock {
  private lastTick = performance.now();
  private stallFrom = 0;
  private stallEnd = -Infinity;
  /** How long after a stall requests are still dated back to its start. */
  private window = 0;
  private timer: NodeJS.Timeout | undefined;

  start(): void {
    this.lastTick = performance.now();
    this.timer ??= setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** performance.now() of the arrival of a request being read now. */
  receivedAt(): number {
    const now = performance.now();
    // The loop has not ticked for too long: it is only now catching up with what came meanwhile.
    if (this.timer && now - this.lastTick > TICK_MS + STALL_MS) return this.lastTick;
    if (now - this.stallEnd < this.window) return this.stallFrom;
    return now;
  }

  private tick(): void {
    const now = performance.now();
    if (now - this.lastTick > TICK_MS + STALL_MS) {
      this.stallFrom = this.lastTick;
      this.stallEnd = now;
      this.window = Math.min(AFTER_STALL_MS, now - this.lastTick);
    }
    this.lastTick = now;
  }
}
