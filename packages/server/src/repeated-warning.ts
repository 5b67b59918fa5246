import { performance } from 'node:perf_hooks';

/** The part of a pino logger this needs; a pino `Logger` fits as it is. */
interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * A failure that repeats for as long as its cause lasts (a publish at every commit while Redis is
 * out, a batch at every write while the database is): logged when it starts, then at most once
 * per `everyMs` with how often it happened meanwhile, and once, at info, when it stops. An outage
 * is a few lines in the log, not one per request.
 */
export class RepeatedWarning {
  private failing = false;
  /** Failures since it started, and since the last line. */
  private total = 0;
  private unlogged = 0;
  private startedAt = 0;
  private loggedAt = 0;

  constructor(
    private readonly log: Log,
    private readonly msg: string,
    private readonly recoveredMsg: string,
    private readonly opts: { everyMs?: number; level?: 'warn' | 'error' } = {},
  ) {}

  /** It failed (again). */
  failed(obj: object): void {
    const now = performance.now();
    this.total++;
    if (!this.failing) {
      this.failing = true;
      this.total = 1;
      this.unlogged = 0;
      this.startedAt = this.loggedAt = now;
      this.log[this.opts.level ?? 'warn'](obj, this.msg);
      return;
    }
    this.unlogged++;
    if (now - this.loggedAt < (this.opts.everyMs ?? 10_000)) return;
    this.log[this.opts.level ?? 'warn'](
      { ...obj, repeated: this.unlogged, failingForMs: Math.round(now - this.startedAt) },
      this.msg,
    );
    this.unlogged = 0;
    this.loggedAt = now;
  }

  /** It worked: says so once, if it had been failing. */
  worked(obj: object = {}): void {
    if (!this.failing) return;
    this.failing = false;
    this.log.info(
      { ...obj, failures: this.total, failedForMs: Math.round(performance.now() - this.startedAt) },
      this.recoveredMsg,
    );
  }
}
