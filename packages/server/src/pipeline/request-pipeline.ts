import { MusterError, type ErrorCode } from '@muster/api';
import type { AuditLog } from '../auth/audit-log.js';
import { Guard, type Caller } from '../auth/guard.js';
import type { RateLimits } from '../auth/rate-limits.js';
import type { RequestContext } from '../batch/request-context.js';
import { Errors } from '../errors.js';
import type { AppliedRevision } from '../index/applied-revision.js';
import type { Metrics } from '../metrics/metrics.js';
import type { WatchHub } from '../watch/watch-hub.js';
import { Grant } from './grant.js';
import { bearerToken, type Inbound } from './inbound.js';
import { LongPolls } from './long-poll.js';
import { screenOf, type ImmediateOperation, type Operation, type Right } from './operation.js';

/** Refusals of a request as bad or unauthorized: each counts against its address's write limit. */
const COUNTED: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'INVALID_ARGUMENT',
  'UNAUTHENTICATED',
  'PERMISSION_DENIED',
]);
/** Refusals as unauthorized or over a limit: each goes to the audit trail. */
const AUDITED: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'UNAUTHENTICATED',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
]);

export interface PipelineDeps {
  guard: Guard;
  limits: RateLimits;
  audit: AuditLog;
  hub: WatchHub;
  metrics: Metrics;
  /** How far this node has applied the change sequence: a request's minimum revision waits on it. */
  applied: AppliedRevision;
  /** limits.writeWait: how long after its arrival a request's writes may still be applied. */
  writeWaitMs: number;
  /** cluster.revisionWait: how long a request waits for its minimum revision. */
  revisionWaitMs: number;
  /** A service's current revision; throws NOT_FOUND for one that does not exist. */
  revisionOf(namespace: string, service: string): number;
}

/** Where a request went, for its audit entry: described by its adapter, asked only when one is written. */
export interface AuditedAction {
  action: string;
  namespace: string;
  service?: string;
  instanceId?: string;
}

/** How a request ended; a refusal (unauthorized, forbidden, over a limit) with its error's code and message. */
export interface Ending {
  outcome: 'ok' | 'failed' | 'refused';
  code?: string;
  reason?: string;
}

/**
 * The steps every request of every protocol goes through, written once (as Fastify's hooks and
 * PolarisMesh's interceptors wrap the handlers): who is calling; before the body is read, the
 * screen of callers that can only be refused; a minimum revision to wait for (read-your-writes);
 * the guard and the write limits for what the operation is; a long-poll parked until its
 * service moves; watch slots; refusals counted against their address and written to the audit
 * trail. An adapter declares what each of its operations is (an Operation) and calls these at
 * its protocol's points; its handlers get a Grant and never see the guard, the limits or the hub.
 */
export class RequestPipeline {
  private readonly longPolls: LongPolls;
  private readonly guard: Guard;
  private readonly limits: RateLimits;

  constructor(private readonly deps: PipelineDeps) {
    this.guard = deps.guard;
    this.limits = deps.limits;
    this.longPolls = new LongPolls(deps.hub, deps.limits, deps.metrics, deps.revisionOf);
  }

  /** Whether auth is on, and whether client APIs need a token: what a caller may ask about itself. */
  get auth(): { enabled: boolean; clientsRequired: boolean } {
    return { enabled: this.guard.enabled, clientsRequired: this.guard.opts.clientsRequired };
  }

  /**
   * The caller of a request, worked out once. An access token that does not check out is refused
   * here (UNAUTHENTICATED), whatever the operation: a client that sends a credential must learn it is wrong.
   */
  identify(inbound: Inbound): Caller {
    return (inbound.caller ??= this.guard.caller(bearerToken(inbound.authorization), inbound.address));
  }

  /**
   * Before anything of a request's body is read: refuses an address over its write limit
   * (refusals count) when a body is coming, then a caller the operation can only refuse for want
   * of credentials, so that nobody without them can make the server parse anything.
   */
  screen(op: Operation<never> | undefined, inbound: Inbound, bodyAhead: boolean): Promise<void> | undefined {
    const access = screenOf(op);
    const byCredentials = () => {
      if (access !== undefined) this.guard.screen(this.identify(inbound), access);
    };
    if (bodyAhead && this.limits.screens) return this.limits.screen(inbound.address).then(byCredentials);
    byCredentials();
    return undefined;
  }

  /**
   * Read-your-writes: a request carrying a revision (`text`, as sent) goes on once this node has
   * applied it, within cluster.revisionWait, or fails UNAVAILABLE. Undefined when it carries none.
   */
  minRevision(text: string | undefined): Promise<void> | undefined {
    if (text === undefined) return undefined;
    const t = text.trim();
    if (!/^\d{1,15}$/.test(t)) return Promise.reject(Errors.badMinRevision());
    return this.deps.applied.reach(Number(t), this.deps.revisionWaitMs);
  }

  /**
   * Admits a request to its handler, or throws (rejects) why not: the guard for what the
   * operation is, the write limits, a watch slot, and a long-poll parked until its service moves.
   */
  admit<Req>(op: ImmediateOperation<Req>, inbound: Inbound, req: Req): Grant;
  admit<Req>(op: Operation<Req>, inbound: Inbound, req: Req): Grant | Promise<Grant>;
  admit<Req>(op: Operation<Req>, inbound: Inbound, req: Req): Grant | Promise<Grant> {
    op.check?.(req);
    if (op.kind === 'public') return this.grant(inbound, undefined, undefined);
    const c = this.identify(inbound);
    switch (op.kind) {
      case 'self':
        return this.grant(inbound, c, c.instanceToken);
      case 'heartbeat':
        return this.grant(inbound, c, op.instanceToken?.(req) ?? c.instanceToken);
      case 'read': {
        this.guard.requireClient(c, 'read', op.on(req));
        const grant = this.grant(inbound, c, c.instanceToken);
        const parked = this.longPolls.park(op.parks?.(req), c.address, inbound);
        return parked ? parked.then(() => grant) : grant;
      }
      case 'watch': {
        this.guard.requireClient(c, 'read', op.on(req));
        op.before?.(req);
        return this.grant(inbound, c, c.instanceToken, false, this.limits.openWatch(c.address));
      }
      case 'register': {
        const token = op.instanceToken?.(req) ?? c.instanceToken;
        const [namespace, service] = op.on(req);
        const { ownerOnly } = this.guard.requireRegistration(
          token === c.instanceToken ? c : { ...c, instanceToken: token },
          namespace,
          service,
        );
        return this.limits.write(c).then(() => this.grant(inbound, c, token, ownerOnly));
      }
      case 'write': {
        const right = op.manage?.(req);
        if (right) this.guard.requireManagement(c, right.level, right.on);
        return this.limits.write(c).then(() => this.grant(inbound, c, op.instanceToken?.(req) ?? c.instanceToken));
      }
      case 'manage': {
        this.requireRights(c, op.rights?.(req) ?? []);
        const grant = this.grant(inbound, c, c.instanceToken);
        return op.writes ? this.limits.write(c).then(() => grant) : grant;
      }
    }
  }

  /**
   * A whole request, for an adapter with no steps of its own to place (no body read apart, no
   * error statuses finer than the codes): admits it, answers it with `handle`, and records how
   * it ended, a refusal counted and audited by its error's code.
   */
  async run<Req, Res>(
    op: Operation<Req>,
    inbound: Inbound,
    req: Req,
    handle: (req: Req, grant: Grant) => Res | Promise<Res>,
    describe: (req: Req) => AuditedAction,
  ): Promise<Res> {
    let res: Res;
    try {
      res = await handle(req, await this.admit(op, inbound, req));
    } catch (err) {
      const code: ErrorCode = err instanceof MusterError ? err.code : 'INTERNAL';
      if (COUNTED.has(code)) this.refused(inbound);
      const end: Ending = AUDITED.has(code)
        ? { outcome: 'refused', code, reason: (err as Error).message }
        : { outcome: 'failed' };
      this.finished(op, inbound, end, () => describe(req));
      throw err;
    }
    this.finished(op, inbound, { outcome: 'ok' }, () => describe(req));
    return res;
  }

  /**
   * The context of one request (or one message of a stream) for the writes it makes: applied
   * only while its client is there, and within limits.writeWait (or the client's own deadline,
   * if sooner) of its arrival.
   */
  context(inbound: Inbound): RequestContext {
    const budget =
      inbound.budgetMs === undefined ? this.deps.writeWaitMs : Math.min(this.deps.writeWaitMs, inbound.budgetMs);
    return { receivedAt: inbound.receivedAt, deadline: inbound.receivedAt + budget, gone: () => inbound.gone() };
  }

  /**
   * A request refused as bad or unauthorized: it counts against its address's write limit,
   * unless it counted as a write already. Refusing is work too, and a client that keeps being
   * refused is stopped before its bodies are read.
   */
  refused(inbound: Inbound): void {
    this.limits.refused(inbound.address, inbound.caller);
  }

  /** A connection refused before it made a request (a malformed one): counted against its address. */
  refusedAt(address: string): void {
    this.limits.refused(address);
  }

  /**
   * The end of a request, for the audit trail: every refusal (unauthorized, forbidden, over a
   * limit), and every management action that succeeded, including an operator's change of an
   * instance; not the client traffic itself (registrations, heartbeats, an instance's changes by its own token).
   */
  finished(op: Operation<never> | undefined, inbound: Inbound, end: Ending, describe: () => AuditedAction): void {
    if (!this.audits(op, inbound, end.outcome)) return;
    const caller = inbound.caller;
    const refused = end.outcome === 'refused';
    const { action, namespace, service, instanceId } = describe();
    this.deps.audit.record({
      who: caller ? Guard.who(caller) : `anonymous@${inbound.address}`,
      address: inbound.address,
      action,
      outcome: refused ? 'refused' : 'ok',
      ...(refused && end.code !== undefined ? { code: end.code, reason: end.reason } : {}),
      namespace,
      ...(service !== undefined ? { service } : {}),
      ...(instanceId !== undefined ? { instanceId } : {}),
    });
  }

  /**
   * Whether a request that ended so goes to the audit trail: a refusal always; a success only as
   * a management action. Asked first, so that the traffic itself allocates nothing for it.
   */
  audits(op: Operation<never> | undefined, inbound: Inbound, outcome: Ending['outcome']): boolean {
    if (outcome === 'refused') return true;
    if (outcome === 'failed' || !op) return false;
    return (
      (op.kind === 'manage' && op.writes === true) || (op.kind === 'write' && inbound.caller?.principal !== undefined)
    );
  }

  private requireRights(c: Caller, rights: readonly Right[]): void {
    if (rights.length === 0) this.guard.requireManagement(c);
    for (const r of rights) {
      if (r.partly) {
        this.guard.requireManagement(c);
        const [namespace] = typeof r.on === 'function' ? r.on() : r.on;
        if (this.guard.sees(c, namespace)) continue;
      }
      this.guard.requireManagement(c, r.level, r.on);
    }
  }

  private grant(
    inbound: Inbound,
    caller: Caller | undefined,
    instanceToken: string | undefined,
    ownerOnly = false,
    release?: () => void,
  ): Grant {
    return new Grant(this.guard, this.limits, this, inbound, caller, instanceToken, ownerOnly, release);
  }
}
