import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { RegistryIndex } from '../index/registry-index.js';
import type { Metrics } from '../metrics/metrics.js';
import type { NamingService, VerificationSink } from '../naming/naming-service.js';
import type { Verifier } from './verifier.js';

export interface VerificationQueueOptions {
  /** Checks running at once at most: a burst of registrations waits its turn. */
  concurrency: number;
  /** Checks waiting or running for one caller at most; its registrations past it are refused. */
  maxPendingPerCaller: number;
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

/** Where outcomes are written: the naming service. */
export type VerificationWrites = Pick<NamingService, 'completeVerification'>;

/** Cluster mode: only the lease holder picks up other nodes' leftovers and retries failures. */
export interface QueueGate {
  holdsLease(): boolean;
}

/** Whose checks these are, for the checks the registry asks for itself (a start, a sweep, a PATCH). */
const REGISTRY = 'registry';

/** One caller's share of the queue: its waiting checks per service, and how many of its checks run. */
interface CallerQueue {
  /** Service key -> instance ids, first come first; the services take turns. */
  services: Map<string, string[]>;
  waiting: number;
  running: number;
}

/**
 * Runs verification checks (Verifier) and writes their outcome (NamingService): the checks due
 * after a commit, the pending ones found at start, and, on a timer, what is due again. Each
 * instance is checked by one check at a time; asked again while its check runs, it is checked
 * once more afterwards (the registration that asked may have changed what is checked).
 *
 * Fair: a check may wait for a silent endpoint for the whole verification.timeout, so one caller
 * registering many silent endpoints must not hold every slot. The callers with waiting checks
 * take turns, and within a caller its services do; a caller runs at most half of the slots, so
 * another caller's check starts at once; and a caller has at most maxPendingPerCaller checks
 * waiting or running (NamingService refuses its registrations past that).
 */
export class VerificationQueue implements VerificationSink {
  /** Caller key -> its share; the Map's order is the turn order (a caller served goes last). */
  private readonly callers = new Map<string, CallerQueue>();
  /** Every waiting instance, and whose it is. */
  private readonly waiting = new Map<string, { caller: string; service: string }>();
  private readonly running = new Map<string, { ac: AbortController; caller: string }>();
  /** Asked for again while running: checked once more afterwards, for this caller. */
  private readonly again = new Map<string, string>();
  /** Places taken by registrations not answered yet (their checks are queued when they commit). */
  private readonly reserved = new Map<string, number>();
  /** Who asked for an instance's check, so the checks due again count as theirs; in memory only. */
  private readonly askedBy = new Map<string, string>();
  private readonly inFlight = new Set<Promise<void>>();
  /** Failures in a row of instances still failed, for the retry backoff; in memory only. */
  private readonly retries = new Map<string, { failures: number; nextAt: number }>();
  private readonly maxRunningPerCaller: number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly index: RegistryIndex,
    private readonly naming: VerificationWrites,
    private readonly verifier: Verifier,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly opts: VerificationQueueOptions,
    private readonly gate?: QueueGate,
  ) {
    this.maxRunningPerCaller = Math.max(1, Math.floor(opts.concurrency / 2));
  }

  /** The naming service's writes made these checks due (VerificationSink). */
  checksDue(ids: readonly string[], caller?: string): void {
    this.enqueue(ids, caller);
  }

  /** A registration about to make a check due takes its caller's place first (VerificationSink). */
  reserve(caller: string): boolean {
    if (this.pendingOf(caller) >= this.opts.maxPendingPerCaller) return false;
    this.reserved.set(caller, (this.reserved.get(caller) ?? 0) + 1);
    return true;
  }

  release(caller: string): void {
    const n = (this.reserved.get(caller) ?? 1) - 1;
    if (n > 0) this.reserved.set(caller, n);
    else this.reserved.delete(caller);
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
    this.callers.clear();
    this.waiting.clear();
    for (const r of this.running.values()) r.ac.abort();
    await Promise.allSettled([...this.inFlight]);
  }

  /** Checks waiting or running for this caller, and places its unanswered registrations took. */
  pendingOf(caller: string): number {
    const q = this.callers.get(caller);
    return (q ? q.waiting + q.running : 0) + (this.reserved.get(caller) ?? 0);
  }

  /** `caller`: who asked; without one, whoever asked for the instance's check last (or the registry). */
  enqueue(ids: Iterable<string>, caller?: string): void {
    if (this.stopped) return;
    for (const id of ids) {
      const by = caller ?? this.askedBy.get(id) ?? REGISTRY;
      if (caller !== undefined) this.askedBy.set(id, caller);
      if (this.running.has(id)) this.again.set(id, by);
      else if (!this.waiting.has(id)) this.push(id, by);
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
      if (v.state === 'verified' || this.waiting.has(rec.id) || this.running.has(rec.id)) continue;
      if (!this.index.service(rec.namespace, rec.service)?.rec.verification) continue;
      if (v.state === 'pending') {
        if (now - v.at >= this.opts.stalePendingMs) due.push(rec.id);
      } else if (rec.healthy && now >= (this.retries.get(rec.id)?.nextAt ?? v.at + this.opts.retryBaseMs)) {
        // A failed instance nobody keeps alive is not worth a request: it expires.
        due.push(rec.id);
      }
    }
    for (const id of this.retries.keys())
      if (this.index.instances.get(id)?.verification.state !== 'failed') this.retries.delete(id);
    for (const id of this.askedBy.keys()) {
      const state = this.index.instances.get(id)?.verification.state;
      if ((state === undefined || state === 'verified') && !this.running.has(id) && !this.waiting.has(id))
        this.askedBy.delete(id);
    }
    if (due.length > 0) this.enqueue(due);
  }

  private push(id: string, caller: string): void {
    const rec = this.index.instances.get(id);
    const service = rec ? `${rec.namespace}\u0000${rec.service}` : '';
    let q = this.callers.get(caller);
    if (!q) this.callers.set(caller, (q = { services: new Map(), waiting: 0, running: 0 }));
    const list = q.services.get(service);
    if (list) list.push(id);
    else q.services.set(service, [id]);
    q.waiting++;
    this.waiting.set(id, { caller, service });
  }

  /** The next check to run: the first caller in turn that may run one more, its first service in turn. */
  private next(): { id: string; caller: string } | undefined {
    for (const [caller, q] of this.callers) {
      if (q.waiting === 0 || q.running >= this.maxRunningPerCaller) continue;
      const [service, list] = q.services.entries().next().value as [string, string[]];
      const id = list.shift()!;
      q.services.delete(service);
      if (list.length > 0) q.services.set(service, list);
      q.waiting--;
      // Served: this caller goes to the end of the turn order.
      this.callers.delete(caller);
      this.callers.set(caller, q);
      this.waiting.delete(id);
      return { id, caller };
    }
    return undefined;
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.opts.concurrency) {
      const picked = this.next();
      if (!picked) return;
      const { id, caller } = picked;
      const q = this.callers.get(caller)!;
      q.running++;
      const ac = new AbortController();
      this.running.set(id, { ac, caller });
      const p: Promise<void> = this.run(id, ac.signal)
        .catch((err: unknown) =>
          this.log.warn(
            { err, instance: id },
            'could not record a verification result; the instance is checked again later',
          ),
        )
        .finally(() => {
          this.running.delete(id);
          this.inFlight.delete(p);
          q.running--;
          if (q.running === 0 && q.waiting === 0 && this.callers.get(caller) === q) this.callers.delete(caller);
          const by = this.again.get(id);
          if (by !== undefined) {
            this.again.delete(id);
            if (!this.stopped) this.push(id, by);
          }
          this.pump();
        });
      this.inFlight.add(p);
    }
  }

  private async run(id: string, signal: AbortSignal): Promise<void> {
    const rec = this.index.instances.get(id);
    const setting = rec && this.index.service(rec.namespace, rec.service)?.rec.verification;
    if (!rec || !setting || rec.verification.state === 'verified') return;
    const target = {
      namespace: rec.namespace,
      service: rec.service,
      host: rec.host,
      port: rec.port,
      path: setting.path,
      secret: setting.secret,
    };
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
    // The exact reason is the operator's: the registrant's record says only unreachable or wrong proof.
    if (written === 'written')
      this.log.warn(
        { ...about, kind: outcome.kind, reason: outcome.reason, retryInMs: waitMs },
        'instance failed verification: invisible to discovery until a check passes',
      );
    else this.log.debug({ ...about, kind: outcome.kind, reason: outcome.reason, written }, 'verification failed again');
  }
}
