import { performance } from 'node:perf_hooks';
import { status as Status, type ServerWritableStream } from '@grpc/grpc-js';
import { Errors } from '../../errors.js';
import type { AnswerEncoder } from './answers.js';
import { isUndecodable, type Undecodable } from './codec.js';
import type { Operation } from '../../pipeline/operation.js';
import { inboundOf, minRevisionWait, type CallRecorder, type GrpcDeps } from './context.js';
import type { WatchRequestMsg } from './requests.js';
import { watchParams } from './requests.js';

/**
 * Watch: a snapshot on connect (unless the caller's revision is current and the node not stale), then one after each
 * change, the changes of one tick coalesced, as the SSE route does. Snapshots supersede each
 * other, so at most one write is in flight: changes meanwhile only mark the stream stale, and
 * the newest snapshot goes out when that write completes. A client that does not read holds one
 * unsent snapshot (HTTP/2 flow control stops the rest), never a backlog. The stream ends with
 * the error when the service goes away (unless the caller allows a missing service: then it is
 * empty, at revision 0, until it exists again), and with UNAVAILABLE at shutdown. A call
 * carrying a revision (muster-min-revision) starts once this node has applied it.
 */
export function watchStream(deps: GrpcDeps, recorder: CallRecorder, answers: AnswerEncoder) {
  const { naming, hub, metrics, pipeline } = deps;
  type Params = ReturnType<typeof watchParams>;
  // The service must exist (or be allowed missing) before the stream takes a watch slot.
  const op: Extract<Operation<Params>, { kind: 'watch' }> = {
    kind: 'watch',
    on: (p) => [p.namespace, p.service],
    before: (p) => void naming.watchedService(p.namespace, p.service, p.allowMissing),
  };
  const gauge = metrics.watchers.labels('grpc');
  const slowAfterMs = deps.config.watch.keepAlive * 2;

  const open = (call: ServerWritableStream<WatchRequestMsg | Undecodable, Buffer>, t0: number): void => {
    if (call.cancelled) return;
    let params;
    let entry;
    let releaseSlot: () => void;
    try {
      const req = call.request;
      if (isUndecodable(req)) throw Errors.undecodable(req.detail);
      params = watchParams(req);
      releaseSlot = pipeline.admit(op, inboundOf(call, deps), params).release;
      entry = naming.watchedService(params.namespace, params.service, params.allowMissing);
    } catch (err) {
      call.emit('error', recorder.failed('Watch', err, t0, undefined, call));
      return;
    }
    const { namespace: ns, service: svc, filter, allowMissing } = params;
    gauge.inc();

    let ended = false;
    let scheduled = false;
    let writing = false;
    let stale = false;
    let snapshots = 0;
    let writeStarted = 0;
    let offClose: (() => void) | undefined;
    let sentStale = false;

    const release = () => {
      if (ended) return false;
      ended = true;
      clearInterval(staleCheck);
      releaseSlot();
      unsubscribe();
      offClose?.();
      gauge.dec();
      return true;
    };
    const fail = (err: unknown) => {
      if (release()) call.emit('error', recorder.failed('Watch', err, t0, { snapshots }));
    };
    const send = () => {
      scheduled = false;
      if (ended) return;
      if (writing) {
        stale = true;
        // The last snapshot has not left for this long: the client does not read. One snapshot
        // is all that is ever held for it, but it is dropped rather than held forever.
        if (performance.now() - writeStarted > slowAfterMs) fail(Errors.slowWatcher());
        return;
      }
      let bytes: Buffer;
      try {
        const now = naming.watchedService(ns, svc, allowMissing);
        const behind = deps.staleness();
        bytes = now ? answers.answer(now, filter, behind) : answers.missing(ns, svc, behind);
        sentStale = behind !== undefined;
      } catch (err) {
        fail(err);
        return;
      }
      writing = true;
      writeStarted = performance.now();
      snapshots++;
      call.write(bytes, () => {
        writing = false;
        if (stale) {
          stale = false;
          send();
        }
      });
    };

    const schedule = () => {
      if (scheduled) return;
      scheduled = true;
      setImmediate(send);
    };
    const unsubscribe = hub.subscribe(ns, svc, schedule);
    // The index does not move while this node cannot read the store: a change of staleness alone is sent too.
    const staleCheck = setInterval(
      () => (deps.staleness() !== undefined) !== sentStale && schedule(),
      deps.config.watch.keepAlive,
    );
    // The client went away (or the deadline passed): nothing of the stream may stay subscribed.
    call.on('cancelled', () => {
      if (release()) recorder.record('Watch', Status.CANCELLED, t0, { snapshots });
    });
    offClose = hub.onClose(() => fail(Errors.shuttingDown()));
    // A stale node sends its first snapshot even at the caller's revision: the caller must not take its silence as current.
    if (!ended && (params.revision !== (entry?.rec.revision ?? 0) || deps.staleness() !== undefined)) send();
  };

  return (call: ServerWritableStream<WatchRequestMsg | Undecodable, Buffer>): void => {
    const t0 = performance.now();
    const waiting = minRevisionWait(call, deps);
    if (!waiting) return open(call, t0);
    waiting.then(
      () => open(call, t0),
      (err: unknown) => call.emit('error', recorder.failed('Watch', err, t0, undefined, call)),
    );
  };
}
