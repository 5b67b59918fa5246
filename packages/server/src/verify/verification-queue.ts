import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { RegistryIndex } from '../index/registry-index.js';
import type { Metrics } from '../metrics/metrics.js';
import type { NamingService } from '../naming/naming-service.js';
import type { Verifier } from './verifier.js';

export interface VerificationQueueOptions {
  /** Checks running at once at most: a burst of registrations waits its turn. */
  concurrency: number;
  /** How often unverified instances are looked over for checks that are due again. */
  sweepIntervalMs: number;
  /**
   * A pending instance that no check of this node holds, pending for longer than this, is
   * checked here: the node that registered it died, or the write of its result failed.
   */
  stalePendingMs: number;
  /** A failed instance that is alive is checked again after this, doubling per failure... */
  retryBaseMs: number;
  /** ...up to this. */
  retryMaxMs: number;
}

/** Cluster mode: only the lease holder picks up other nodes' leftovers and retries failures. */
export interface QueueGate {
  holdsLease(): boolean;
}

/**
 * Runs verification checks (Verifier) and writes their outcome (NamingService): the checks due
 * after a commit, the pending ones found at start, and, on a timer, what is due again. Each
 * instance is checked by one check at a time; asked again while its check runs, it is checked
 * once more afterwards (the registration that asked may have changed what is checked).
 */
export class VerificationQueue {
  /** Insertion order is the order checks start in. */
  private readonly queued = new Set<string>();
  private readonly running = new Map<string, AbortController>();
  private readonly again = new Set<string>();
  private readonly inFlight = new Set<Promise<void>>();
  /** Failures in a row of instances still failed, for the retry backoff; in memory only. */
  private readonly retries = new Map<string, { failures: number; nextAt: number }>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly index: RegistryIndex,
    private readonly naming: NamingService,
    private readonly verifier: Verifier,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly opts: VerificationQueueOptions,
    private readonly gate?: QueueGate,
  ) {
    naming.onVerificationNeeded((ids) => this.enqueue(ids));
  }

  /**
   * A single node checks again at once whatever was left pending when it stopped; in a cluster
   * another node may be checking those right now, so they are left to the lease holder's sweep.
   */
  start(): void {
    if (!this.gate) {
      const pending: string[] = [];
      for (const rec of this.index.instances.values()) if (rec.verification.state === 'pending') pending.push(rec.id);
      if (pending.length > 0) {
        this.log.info({ instances: pending.length }, 'checking instances left pending at the last stop');
        this.enqueue(pending);
      }
    }
    this.timer = setInterval(() => this.sweep(), this.opts.sweepIntervalMs);
    this.timer.unref();
  }

  /** Abandons the checks under way (their instances stay pending, checked at the next start) and waits for them to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.queued.clear();
    for (const ac of this.running.values()) ac.abort();
    await Promise.allSettled([...this.inFlight]);
  }

  enqueue(ids: Iterable<string>): void {
    if (this.stopped) return;
    for (const id of ids) {
      if (this.running.has(id)) this.again.add(id);
      else this.queued.add(id);
    }
    this.pump();
  }

  /** Picks up the checks due again. Public so tests can drive it with an injected clock. */
  sweep(): void {
    if (this.stopped || (this.gate && !this.gate.holdsLease())) return;
    const now = this.clock.now();
    const due: string[] = [];
    for (const rec of this.index.instances.values()) {
      const v = rec.verification;
      if (v.state === 'verified' || this.queued.has(rec.id) || this.running.has(rec.id)) continue;
      if (!this.index.service(rec.namespace, rec.service)?.rec.verification) continue;
      if (v.state === 'pending') {
        if (now - v.at >= this.opts.stalePendingMs) due.push(rec.id);
      } else if (rec.healthy && now >= (this.retries.get(rec.id)?.nextAt ?? v.at + this.opts.retryBaseMs)) {
        // A failed instance nobody keeps alive is not worth a request: it expires.
        due.push(rec.id);
      }
    }
    for (const id of this.retries.keys()) if (this.index.instances.get(id)?.verification.state !== 'failed') this.retries.delete(id);
    if (due.length > 0) this.enqueue(due);
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.opts.concurrency && this.queued.size > 0) {
      const id = this.queued.values().next().value as string;
      this.queued.delete(id);
      const ac = new AbortController();
      this.running.set(id, ac);
      const p: Promise<void> = this.run(id, ac.signal)
        .catch((err: unknown) => this.log.warn({ err, instance: id }, 'could not record a verification result; the instance is checked again later'))
        .finally(() => {
          this.running.delete(id);
          this.inFlight.delete(p);
          if (this.again.delete(id)) this.queued.add(id);
          this.pump();
        });
      this.inFlight.add(p);
    }
  }

  private async run(id: string, signal: AbortSignal): Promise<void> {
    const rec = this.index.instances.get(id);
    const setting = rec && this.index.service(rec.namespace, rec.service)?.rec.verification;
    if (!rec || !setting || rec.verification.state === 'verified') return;
    const target = { namespace: rec.namespace, service: rec.service, host: rec.host, port: rec.port, path: setting.path, secret: setting.secret };
    let outcome;
    try {
      outcome = await this.verifier.check(target, signal);
    } catch (err) {
      if (signal.aborted) return; // stopping: it stays pending for the next start
      throw err;
    }
    if (signal.aborted) return;
    this.metrics.verificationChecks.labels(outcome.ok ? 'verified' : outcome.kind).inc();
    const written = await this.naming.completeVerification(id, target, outcome);
    const about = { instance: id, namespace: rec.namespace, service: rec.service, host: rec.host, port: rec.port };
    if (outcome.ok) {
      this.retries.delete(id);
      if (written === 'written') this.log.info(about, 'instance verified: visible to discovery');
      return;
    }
    const failures = (this.retries.get(id)?.failures ?? 0) + 1;
    const waitMs = Math.min(this.opts.retryMaxMs, this.opts.retryBaseMs * 2 ** Math.min(failures - 1, 20));
    this.retries.set(id, { failures, nextAt: this.clock.now() + waitMs });
    if (written === 'written') this.log.warn({ ...about, kind: outcome.kind, reason: outcome.reason, retryInMs: waitMs }, 'instance failed verification: invisible to discovery until a check passes');
    else this.log.debug({ ...about, kind: outcome.kind, reason: outcome.reason, written }, 'verification failed again');
  }
}
