import { performance } from 'node:perf_hooks';
import { status as Status, type Deadline, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { MIN_REVISION_METADATA } from '@muster/api';
import type { Logger } from 'pino';
import type { ArrivalClock } from '../arrival-clock.js';
import type { AuditLog } from '../../auth/audit-log.js';
import type { RequestContext } from '../../batch/request-context.js';
import type { AppliedRevision } from '../../index/applied-revision.js';
import { Guard, type Caller } from '../../auth/guard.js';
import type { RateLimits } from '../../auth/rate-limits.js';
import type { MusterConfig } from '../../config/config.js';
import { Errors } from '../../errors.js';
import type { Metrics } from '../../metrics/metrics.js';
import type { NamingService } from '../../naming/naming-service.js';
import type { WatchHub } from '../../watch/watch-hub.js';
import { isUndecodable } from './codec.js';
import { isBug, statusName, toGrpcStatus, type GrpcStatus } from './error-mapping.js';

/** Codes that refuse a call as bad or unauthorized. */
const REFUSED = new Set<number>([Status.INVALID_ARGUMENT, Status.UNAUTHENTICATED, Status.PERMISSION_DENIED]);

/** What the gRPC handlers may call: the domain and the watch hub, never the store or the index. */
export interface GrpcDeps {
  naming: NamingService;
  guard: Guard;
  audit: AuditLog;
  limits: RateLimits;
  hub: WatchHub;
  metrics: Metrics;
  config: MusterConfig;
  log: Logger;
  /** When each call arrived. */
  arrivals: ArrivalClock;
  /** How far this node has applied the change sequence: a call's muster-min-revision waits on it. */
  applied: AppliedRevision;
  /** Why discovery answers may be behind other nodes' writes (cluster mode, store unreadable); undefined when current. */
  staleness(): string | undefined;
}

/**
 * The end of one call, whatever its kind: counted per method and code, logged at debug when it
 * succeeded or the caller cancelled it, at warn when it failed, at error (with the cause) for a bug.
 */
export class CallRecorder {
  private counters = new Map<string, { inc(): void }>();

  constructor(private readonly deps: GrpcDeps) {}

  /** Maps a failure to the status to send and records it; a refusal also goes to the audit trail. */
  failed(method: string, err: unknown, t0: number, extra?: Record<string, unknown>, call?: GrpcCall): GrpcStatus {
    const status = toGrpcStatus(err);
    this.record(method, status.code, t0, isBug(err) ? { ...extra, err } : extra, status.details);
    // As over HTTP, a refusal counts against the write limit of its address.
    if (call && REFUSED.has(status.code)) this.deps.limits.refused(callers.get(call)?.address ?? peerAddress(call), callers.get(call));
    if (call && (status.code === Status.UNAUTHENTICATED || status.code === Status.PERMISSION_DENIED || status.code === Status.RESOURCE_EXHAUSTED)) {
      const caller = callers.get(call);
      const address = caller?.address ?? peerAddress(call);
      const req = (call as { request?: { namespace?: string; service?: string; id?: string } }).request;
      this.deps.audit.record({
        who: caller ? Guard.who(caller) : `anonymous@${address}`, address, action: `grpc ${method}`, outcome: 'refused',
        code: statusName(status.code), reason: status.details,
        namespace: typeof req?.namespace === 'string' && req.namespace !== '' ? req.namespace : '*',
        ...(typeof req?.service === 'string' && req.service !== '' ? { service: req.service } : {}),
        ...(typeof req?.id === 'string' && req.id !== '' ? { instanceId: req.id } : {}),
      });
    }
    return status;
  }

  record(method: string, code: number, t0: number, extra?: Record<string, unknown>, details?: string): void {
    const name = statusName(code);
    const key = `${method} ${name}`;
    let counter = this.counters.get(key);
    if (!counter) this.counters.set(key, (counter = this.deps.metrics.grpcRequests.labels(method, name)));
    counter.inc();
    const log = this.deps.log;
    const level = code === Status.OK || code === Status.CANCELLED ? 'debug' : code === Status.INTERNAL ? 'error' : 'warn';
    if (!log.isLevelEnabled(level)) return;
    const line = { grpcMethod: method, code: name, latencyMs: Math.round((performance.now() - t0) * 100) / 100, ...extra, ...(details ? { details } : {}) };
    log[level](line, code === Status.INTERNAL ? 'gRPC call failed' : 'gRPC call');
  }
}

/** What every kind of call has: its metadata and its peer. */
export interface GrpcCall {
  metadata: { get(key: string): Array<string | Buffer> };
  getPeer(): string;
}

const callers = new WeakMap<object, Caller>();

/** The caller of a call, from its `authorization` metadata and peer; worked out once per call. */
export function callerOf(call: GrpcCall, guard: Guard): Caller {
  let c = callers.get(call);
  if (!c) {
    const [auth] = call.metadata.get('authorization');
    const m = typeof auth === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null;
    c = guard.caller(m?.[1], peerAddress(call));
    callers.set(call, c);
  }
  return c;
}

/** `127.0.0.1:5123`, `[::1]:5123` or `ipv4:...` -> the address alone. */
function peerAddress(call: GrpcCall): string {
  const peer = call.getPeer().replace(/^ipv[46]:/, '');
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(peer);
  if (v6) return v6[1]!;
  return peer.replace(/:\d+$/, '');
}

/** What a call has that a write needs: whether it was cancelled, and the client's deadline. */
interface CancellableCall {
  readonly cancelled: boolean;
  getDeadline(): Deadline;
}

const contexts = new WeakMap<object, RequestContext>();

/**
 * A new RequestContext for a call (or a message of a stream) read now: its deadline is
 * limits.writeWait after it arrived, or the client's own deadline if sooner. grpc-js dates that
 * deadline from when it read the call, which after a stall is late: the client's timeout is
 * counted from the arrival instead.
 */
export function newCallContext(call: CancellableCall, deps: Pick<GrpcDeps, 'arrivals' | 'config'>): RequestContext {
  const receivedAt = deps.arrivals.receivedAt();
  const d = call.getDeadline();
  const own = d instanceof Date ? d.getTime() - Date.now() : d - Date.now();
  return { receivedAt, deadline: receivedAt + Math.min(deps.config.limits.writeWait, own), gone: () => call.cancelled };
}

/** The context of a unary call, made when `unary` read it. */
export function contextOf(call: object): RequestContext | undefined {
  return contexts.get(call);
}

/**
 * The wait for the revision in the call's `muster-min-revision` metadata (read-your-writes), or
 * undefined when it carries none.
 */
export function minRevisionWait(call: GrpcCall, deps: Pick<GrpcDeps, 'applied' | 'config'>): Promise<void> | undefined {
  const [raw] = call.metadata.get(MIN_REVISION_METADATA);
  if (raw === undefined) return undefined;
  const text = String(raw).trim();
  if (!/^\d{1,15}$/.test(text)) return Promise.reject(Errors.badMinRevision());
  return deps.applied.reach(Number(text), deps.config.cluster.revisionWait);
}

/**
 * A unary handler from an async function of the decoded request. A request that did not decode
 * is refused here, before the function sees it; one carrying a revision waits until this node
 * has applied it.
 */
export function unary<Req, Res>(
  deps: GrpcDeps, recorder: CallRecorder, method: string, fn: (req: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res | Buffer>,
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res | Buffer>) => void {
  return (call, callback) => {
    const t0 = performance.now();
    contexts.set(call, newCallContext(call, deps));
    let answer: Promise<Res | Buffer>;
    try {
      const req: unknown = call.request;
      const waiting = isUndecodable(req) ? undefined : minRevisionWait(call, deps);
      answer = isUndecodable(req) ? Promise.reject(Errors.undecodable(req.detail))
        : waiting ? waiting.then(() => fn(req as Req, call)) : fn(req as Req, call);
    } catch (err) {
      answer = Promise.reject(err);
    }
    answer.then((res) => {
      recorder.record(method, Status.OK, t0);
      callback(null, res);
    }, (err: unknown) => callback(recorder.failed(method, err, t0, undefined, call)));
  };
}
