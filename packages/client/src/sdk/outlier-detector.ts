import { InvalidOptionError } from '../errors.js';

/**
 * Outlier ejection, as Envoy's outlier detection and PolarisMesh's circuit breaker do it: calls
 * that fail in a row take an instance out of `pick` for a while, before the registry notices
 * (a crashed process is only expired after 3 × ttl without heartbeats).
 */
export interface OutlierOptions {
  /** Failed calls in a row that eject an instance. Default 3. */
  consecutiveFailures?: number;
  /** How long the first ejection lasts; each further one of the same instance doubles it. Default 2000 ms. */
  baseEjectionMs?: number;
  /** The longest ejection. Default 60000 ms. */
  maxEjectionMs?: number;
  /**
   * At most this share (0..1) of a service's served instances is ejected at once, so failures
   * of the caller's own network cannot empty a service: with the default 0.5, one instance of
   * two, never the only one.
   */
  maxEjectedShare?: number;
}

export type ResolvedOutlierOptions = Required<OutlierOptions>;

export function resolveOutlierOptions(o: OutlierOptions = {}, field = 'outlierDetection'): ResolvedOutlierOptions {
  const r = {
    consecutiveFailures: o.consecutiveFailures ?? 3,
    baseEjectionMs: o.baseEjectionMs ?? 2000,
    maxEjectionMs: o.maxEjectionMs ?? 60_000,
    maxEjectedShare: o.maxEjectedShare ?? 0.5,
  };
  if (!Number.isInteger(r.consecutiveFailures) || r.consecutiveFailures < 1)
    throw new InvalidOptionError(
      `${field}.consecutiveFailures`,
      `${field}.consecutiveFailures must be an integer >= 1`,
    );
  for (const k of ['baseEjectionMs', 'maxEjectionMs'] as const) {
    if (!Number.isFinite(r[k]) || r[k] <= 0)
      throw new InvalidOptionError(`${field}.${k}`, `${field}.${k} must be a number of milliseconds > 0`);
  }
  if (!(r.maxEjectedShare >= 0 && r.maxEjectedShare <= 1))
    throw new InvalidOptionError(`${field}.maxEjectedShare`, `${field}.maxEjectedShare must be a share in 0..1`);
  return r;
}

interface Record {
  /** Failed calls in a row. */
  failures: number;
  /** Times ejected without a success in between: the next ejection lasts base × 2^ejections. */
  ejections: number;
  /** Ejected until then (ms); 0: not ejected. */
  until: number;
}

export interface Ejection {
  id: string;
  ejectedForMs: number;
  consecutiveFailures: number;
}

/**
 * The call outcomes of one service's instances. An instance with `consecutiveFailures` failed
 * calls in a row is ejected for a backoff that doubles with each ejection; when it ends the
 * instance is picked again, on probation: its next failure ejects it again at once (for longer),
 * a success clears its record. `version` moves whenever the set of ejected instances changes, so
 * pickers are rebuilt only then.
 */
export class OutlierDetector {
  private readonly records = new Map<string, Record>();
  /** Instances ejected now (until in the future, as of the last expire). */
  ejected = 0;
  version = 0;
  private nextExpiry = Infinity;

  constructor(
    private readonly opts: ResolvedOutlierOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * One call's outcome. `served`: how many instances the service serves now, for the share.
   * Answers the ejection when this outcome caused one.
   */
  report(id: string, ok: boolean, served: number): Ejection | undefined {
    const now = this.now();
    this.expire(now);
    const rec = this.records.get(id);
    if (ok) {
      // A success ends probation; a call that started before the ejection does not cut it short.
      if (rec && rec.until === 0) this.records.delete(id);
      else if (rec) rec.failures = 0;
      return undefined;
    }
    const r = rec ?? { failures: 0, ejections: 0, until: 0 };
    if (!rec) this.records.set(id, r);
    r.failures++;
    if (r.until !== 0) return undefined;
    const onProbation = r.ejections > 0;
    if (!onProbation && r.failures < this.opts.consecutiveFailures) return undefined;
    if (this.ejected + 1 > Math.floor(this.opts.maxEjectedShare * served)) return undefined;
    const ms = Math.min(this.opts.maxEjectionMs, this.opts.baseEjectionMs * 2 ** r.ejections);
    const ejection = { id, ejectedForMs: ms, consecutiveFailures: r.failures };
    r.ejections++;
    r.failures = 0;
    r.until = now + ms;
    this.ejected++;
    this.version++;
    if (r.until < this.nextExpiry) this.nextExpiry = r.until;
    return ejection;
  }

  /** Whether `pick` leaves the instance out now (after `expire`). */
  isEjected(id: string): boolean {
    const r = this.records.get(id);
    return r !== undefined && r.until !== 0;
  }

  /** When an ejection is over, its instance is picked again (on probation). Cheap when nothing is due. */
  expire(now = this.now()): void {
    if (now < this.nextExpiry) return;
    let next = Infinity;
    for (const r of this.records.values()) {
      if (r.until === 0) continue;
      if (r.until <= now) {
        r.until = 0;
        this.ejected--;
        this.version++;
      } else if (r.until < next) next = r.until;
    }
    this.nextExpiry = next;
  }

  /** Forgets instances the service no longer has. */
  retain(ids: ReadonlySet<string>): void {
    for (const [id, r] of this.records) {
      if (ids.has(id)) continue;
      if (r.until !== 0) (this.ejected--, this.version++);
      this.records.delete(id);
    }
  }

  /** The ejection ends of the ejected instances, longest first: which stay out when fewer may. */
  ejectedOrder(ids: readonly string[]): string[] {
    return ids
      .filter((id) => this.isEjected(id))
      .sort((a, b) => this.records.get(b)!.until - this.records.get(a)!.until);
  }
}
