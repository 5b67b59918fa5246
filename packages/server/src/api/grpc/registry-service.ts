import type { ServerUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { AnswerEncoder } from './answers.js';
import { CallRecorder, unary, type GrpcDeps } from './context.js';
import { heartbeatStream } from './heartbeat-stream.js';
import type { DiscoverRequestMsg, RegisterRequestMsg, TokenRequestMsg } from './requests.js';
import { discoverParams, given, namespaceOf, registrationBody } from './requests.js';
import { watchStream } from './watch-stream.js';

/**
 * muster.v1.Registry: each method makes the call its HTTP route makes, with the same arguments
 * (see api/http/routes/instances.ts and discovery.ts), and nothing else.
 */
export function registryService(deps: GrpcDeps, answers: AnswerEncoder): UntypedServiceImplementation {
  const { naming, hub, metrics } = deps;
  const recorder = new CallRecorder(deps);

  const discover = async (req: DiscoverRequestMsg, call: ServerUnaryCall<DiscoverRequestMsg, unknown>): Promise<object | Buffer> => {
    const { namespace: ns, service: svc, revision: known, filter, waitMs } = discoverParams(req);
    let entry = naming.resolveService(ns, svc);
    if (known !== undefined && known === entry.rec.revision) {
      if (waitMs > 0) {
        const aborted = new AbortController();
        const onCancel = () => aborted.abort();
        call.once('cancelled', onCancel);
        metrics.watchers.labels('long_poll').inc();
        const changed = await hub.waitForChange(ns, svc, waitMs, aborted.signal).finally(() => {
          metrics.watchers.labels('long_poll').dec();
          call.off('cancelled', onCancel);
        });
        if (changed) entry = naming.resolveService(ns, svc);
      }
      if (entry.rec.revision === known) {
        metrics.disc.notModified.inc();
        return answers.unchanged(entry);
      }
    }
    return answers.answer(entry, filter);
  };

  return {
    Register: unary(recorder, 'Register', (req: RegisterRequestMsg) =>
      naming.register(namespaceOf(req.namespace), req.service ?? '', registrationBody(req), given(req.heartbeatToken))),
    Deregister: unary(recorder, 'Deregister', async (req: TokenRequestMsg) => {
      await naming.deregister(req.id ?? '', given(req.heartbeatToken));
      return {};
    }),
    Heartbeat: unary(recorder, 'Heartbeat', async (req: TokenRequestMsg) => {
      await naming.heartbeat(req.id ?? '', given(req.heartbeatToken));
      return {};
    }),
    HeartbeatStream: heartbeatStream(deps, recorder),
    Discover: unary(recorder, 'Discover', discover),
    Watch: watchStream(deps, recorder, answers),
  };
}
