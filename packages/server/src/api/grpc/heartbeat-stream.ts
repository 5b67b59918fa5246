import { performance } from 'node:perf_hooks';
import { status as Status, type ServerDuplexStream } from '@grpc/grpc-js';
import { MusterError } from '@muster/api';
import type { RequestContext } from '../../batch/request-context.js';
import { Errors } from '../../errors.js';
import { isUndecodable, type Undecodable } from './codec.js';
import type { ServiceWriter } from '../../naming/naming-service.js';
import type { Operation } from '../../pipeline/operation.js';
import { inboundOf, newMessageContext, type CallRecorder, type GrpcDeps } from './context.js';
import { toGrpcItemError, toGrpcStatus, type GrpcStatus } from './error-mapping.js';
import type { HeartbeatBatchMsg } from './requests.js';
import { given } from './requests.js';

/**
 * Batches read but not yet answered before the stream stops reading; it also stops while the
 * client does not read its answers. HTTP/2 flow control then holds the client back, so a client
 * that only sends cannot grow the server's buffers.
 */
const MAX_PENDING_BATCHES = 32;

interface ResultsMsg {
  results: Array<{ id: string; ok: boolean; error?: ReturnType<typeof toGrpcItemError> }>;
}

/**
 * HeartbeatStream: each batch read is applied at once (heartbeats touch memory only), and the
 * answers are written in the order the batches came, since an answer names no batch.
 *
 * A batch the naming service refuses whole (more than LIMITS.heartbeatBatchMax heartbeats) is
 * answered with that error on every one of its items, not by ending the stream: the stream
 * carries the heartbeats of many instances, and the other batches must not be lost with it. A
 * message that does not decode ends the stream with INVALID_ARGUMENT: its items are unknown, so
 * no answer could have one result per item. At shutdown the stream answers what it read, then
 * ends with UNAVAILABLE.
 */
export function heartbeatStream(deps: GrpcDeps, recorder: CallRecorder) {
  const { naming, hub, log, pipeline } = deps;
  const op: Extract<Operation<undefined>, { kind: 'heartbeat' }> = { kind: 'heartbeat' };

  const answer = async (
    batch: HeartbeatBatchMsg,
    writer: ServiceWriter | undefined,
    ctx: RequestContext,
  ): Promise<ResultsMsg> => {
    const items = (batch.heartbeats ?? []).map((h) => ({ id: h.id ?? '', token: given(h.heartbeatToken) }));
    try {
      const r = await naming.heartbeatBatch(items, writer, ctx);
      return {
        results: r.results.map((x) =>
          'error' in x ? { id: x.id, ok: false, error: toGrpcItemError(x.error) } : { id: x.id, ok: x.ok },
        ),
      };
    } catch (err) {
      if (!(err instanceof MusterError)) log.error({ err }, 'heartbeat batch failed');
      const error = toGrpcItemError((err instanceof MusterError ? err : Errors.internal(err)).toJSON().error);
      return { results: items.map((i) => ({ id: i.id, ok: false, error })) };
    }
  };

  return (call: ServerDuplexStream<HeartbeatBatchMsg | Undecodable, ResultsMsg>): void => {
    const t0 = performance.now();
    // An access token in the metadata (write on a service) vouches for that service's items.
    let writer: ServiceWriter | undefined;
    try {
      writer = pipeline.admit(op, inboundOf(call, deps), undefined).credentials().writer;
    } catch (err) {
      call.emit('error', recorder.failed('HeartbeatStream', err, t0, undefined, call));
      return;
    }
    let tail: Promise<void> = Promise.resolve();
    let pending = 0;
    let batches = 0;
    let closing = false;
    let done = false;
    let blocked = false;
    let offClose: (() => void) | undefined;

    const finish = (status?: GrpcStatus) => {
      if (done) return;
      done = true;
      offClose?.();
      recorder.record('HeartbeatStream', status?.code ?? Status.OK, t0, { batches });
      if (status) call.emit('error', status);
      else call.end();
    };
    const maybeResume = () => {
      if (!closing && !blocked && pending < MAX_PENDING_BATCHES) call.resume();
    };
    /** Reads nothing more; ends once every batch read so far is answered. */
    const closeAfterPending = (status?: GrpcStatus) => {
      if (closing) return;
      closing = true;
      call.pause();
      tail = tail.then(() => finish(status));
    };

    call.on('data', (msg: HeartbeatBatchMsg | Undecodable) => {
      if (closing || done) return;
      if (isUndecodable(msg)) {
        closeAfterPending(toGrpcStatus(Errors.undecodable(msg.detail)));
        return;
      }
      batches++;
      // Each batch counts from when it arrived; the stream's deadline, if any, bounds them all.
      const answered = answer(msg, writer, newMessageContext(call, deps));
      if (++pending >= MAX_PENDING_BATCHES) call.pause();
      tail = tail
        .then(() => answered)
        .then((res) => {
          pending--;
          if (!done && !call.write(res) && !blocked) {
            blocked = true;
            call.once('drain', () => {
              blocked = false;
              maybeResume();
            });
          }
          if (blocked) call.pause();
          else maybeResume();
        });
    });
    // The client half-closed: answer what it sent, then end with OK.
    call.on('end', () => closeAfterPending());
    // Also after a normal end (grpc-js reports every finished call so): then it changes nothing.
    call.on('cancelled', () => {
      if (!done) recorder.record('HeartbeatStream', Status.CANCELLED, t0, { batches });
      done = true;
      closing = true;
      offClose?.();
    });
    offClose = hub.onClose(() => closeAfterPending(toGrpcStatus(Errors.shuttingDown())));
  };
}
