import type { Caller } from '../../auth/guard.js';
import { performance } from 'node:perf_hooks';
import { status as Status, type Deadline, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { MIN_REVISION_METADATA } from '@muster/api';
import type { Logger } from 'pino';
import type { ArrivalClock } from '../arrival-clock.js';
import type { RequestContext } from '../../batch/request-context.js';
import type { AppliedRevision } from '../../index/applied-revision.js';
import type { MusterConfig } from '../../config/config.js';
import { Errors } from '../../errors.js';
import type { Metrics } from '../../metrics/metrics.js';
import type { NamingService } from '../../naming/naming-service.js';
import type { Grant } from '../../pipeline/grant.js';
import type { Inbound } from '../../pipeline/inbound.js';
import type { Operation } from '../../pipeline/operation.js';
import type { RequestPipeline } from '../../pipeline/request-pipeline.js';
import type { WatchHub } from '../../watch/watch-hub.js';
import { isUndecodable, type Undecodable } from './codec.js';
import { isBug, statusName, toGrpcStatus, type GrpcStatus } from './error-mapping.js';

/** Codes that refuse a call as bad or unauthorized: each counts against its address's write limit. */
const REFUSED = new Set<number>([Status.INVALID_ARGUMENT, Status.UNAUTHENTICATED, Status.PERMISSION_DENIED]);
/** Codes that refuse a call as unauthorized or over a limit: each goes to the audit trail. */
const AUDITED = new Set<number>([Status.UNAUTHENTICATED, Status.PERMISSION_DENIED, Status.RESOURCE_EXHAUSTED]);

/** What the gRPC handlers may call: the domain, the pipeline and the watch hub, never the store or the index. */
export interface GrpcDeps {
  naming: NamingService;
  /** Auth, limits, audit and long-poll: every call goes through it. */
  pipeline: RequestPipeline;
  /** For the Watch streams' subscriptions and shutdown; long-polls park in the pipeline. */
  hub: WatchHub;
  metrics: Metrics;
  config: MusterConfig;
  log: Logger;
  /** When each call arrived. */
  arrivals: ArrivalClock;
  /** How far this node has applied the change sequence: what a write that changed nothing answers. */
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
    if (!call) return status;
    const inbound = inboundOf(call, this.deps);
    // As over HTTP, a refusal counts against the write limit of its address.
    if (REFUSED.has(status.code)) this.deps.pipeline.refused(inbound);
    if (AUDITED.has(status.code)) {
      this.deps.pipeline.finished(
        undefined,
        inbound,
        { outcome: 'refused', code: statusName(status.code), reason: status.details },
        () => {
          const req = (call as { request?: { namespace?: string; service?: string; id?: string } }).request;
          return {
            action: `grpc ${method}`,
            namespace: typeof req?.namespace === 'string' && req.namespace !== '' ? req.namespace : '*',
            ...(typeof req?.service === 'string' && req.service !== '' ? { service: req.service } : {}),
            ...(typeof req?.id === 'string' && req.id !== '' ? { instanceId: req.id } : {}),
          };
        },
      );
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
    const level =
      code === Status.OK || code === Status.CANCELLED ? 'debug' : code === Status.INTERNAL ? 'error' : 'warn';
    if (!log.isLevelEnabled(level)) return;
    const line = {
      grpcMethod: method,
      code: name,
      latencyMs: Math.round((performance.now() - t0) * 100) / 100,
      ...extra,
      ...(details ? { details } : {}),
    };
    log[level](line, code === Status.INTERNAL ? 'gRPC call failed' : 'gRPC call');
  }
}

/** What every kind of call has: its metadata, its peer, its deadline, and its cancellation. */
export interface GrpcCall {
  metadata: { get(key: string): Array<string | Buffer> };
  getPeer(): string;
  readonly cancelled: boolean;
  getDeadline(): Deadline;
  once(event: 'cancelled', fn: () => void): unknown;
  off(event: 'cancelled', fn: () => void): unknown;
}

/**
 * A call (or a message of a stream) as the pipeline knows it, read now. Its own budget is the
 * client's deadline: grpc-js dates that deadline from when it read the call, which after a stall
 * is late, so the client's timeout is counted from the arrival instead.
 */
class GrpcInbound implements Inbound {
  caller: Caller | undefined = undefined;
  readonly receivedAt: number;
  readonly budgetMs: number;
  readonly address: string;

  constructor(
    private readonly call: GrpcCall,
    arrivals: ArrivalClock,
  ) {
    this.receivedAt = arrivals.receivedAt();
    const d = call.getDeadline();
    this.budgetMs = d instanceof Date ? d.getTime() - Date.now() : d - Date.now();
    this.address = peerAddress(call);
  }

  get authorization(): unknown {
    return this.call.metadata.get('authorization')[0];
  }

  gone(): boolean {
    return this.call.cancelled;
  }

  onGone(fn: () => void): () => void {
    this.call.once('cancelled', fn);
    return () => this.call.off('cancelled', fn);
  }
}

const inbounds = new WeakMap<GrpcCall, Inbound>();

/** The call as the pipeline knows it, made when the call is first handled. */
export function inboundOf(call: GrpcCall, deps: Pick<GrpcDeps, 'arrivals'>): Inbound {
  let i = inbounds.get(call);
  if (!i) inbounds.set(call, (i = new GrpcInbound(call, deps.arrivals)));
  return i;
}

/**
 * A new RequestContext for a message of a stream read now: its deadline is limits.writeWait
 * after it arrived, or the client's own deadline if sooner.
 */
export function newMessageContext(call: GrpcCall, deps: Pick<GrpcDeps, 'arrivals' | 'pipeline'>): RequestContext {
  return deps.pipeline.context(new GrpcInbound(call, deps.arrivals));
}

/** `127.0.0.1:5123`, `[::1]:5123` or `ipv4:...` -> the address alone. */
function peerAddress(call: Pick<GrpcCall, 'getPeer'>): string {
  const peer = call.getPeer().replace(/^ipv[46]:/, '');
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(peer);
  if (v6) return v6[1]!;
  return peer.replace(/:\d+$/, '');
}

/**
 * The wait for the revision in the call's `muster-min-revision` metadata (read-your-writes), or
 * undefined when it carries none.
 */
export function minRevisionWait(call: GrpcCall, deps: Pick<GrpcDeps, 'pipeline'>): Promise<void> | undefined {
  const [raw] = call.metadata.get(MIN_REVISION_METADATA);
  return raw === undefined ? undefined : deps.pipeline.minRevision(String(raw));
}

/**
 * A unary handler: a request that did not decode is refused before anything else; one carrying
 * a revision waits until this node has applied it; then `decode` turns the message into the
 * request (refusing a malformed one), the pipeline admits it as `op`, and `fn` answers it.
 */
export function unary<Msg, Req, Res>(
  deps: GrpcDeps,
  recorder: CallRecorder,
  method: string,
  op: Operation<Req>,
  decode: (msg: Msg) => Req,
  fn: (req: Req, grant: Grant) => Promise<Res | Buffer>,
): (call: ServerUnaryCall<Msg | Undecodable, Res>, callback: sendUnaryData<Res | Buffer>) => void {
  return (call, callback) => {
    const t0 = performance.now();
    const inbound = inboundOf(call, deps);
    const run = (msg: Msg): Promise<Res | Buffer> => {
      const req = decode(msg);
      const admitted = deps.pipeline.admit(op, inbound, req);
      return admitted instanceof Promise ? admitted.then((grant) => fn(req, grant)) : fn(req, admitted);
    };
    let answer: Promise<Res | Buffer>;
    try {
      const msg = call.request;
      if (isUndecodable(msg)) throw Errors.undecodable(msg.detail);
      const waiting = minRevisionWait(call, deps);
      answer = waiting ? waiting.then(() => run(msg)) : run(msg);
    } catch (err) {
      answer = Promise.reject(err);
    }
    answer.then(
      (res) => {
        recorder.record(method, Status.OK, t0);
        callback(null, res);
      },
      (err: unknown) => callback(recorder.failed(method, err, t0, undefined, call)),
    );
  };
}
