import type { ServerUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { AnswerEncoder } from './answers.js';
import type { Caller } from '../../auth/guard.js';
import type { InstanceCredentials } from '../../naming/naming-service.js';
import { CallRecorder, callerOf, contextOf, unary, type GrpcCall, type GrpcDeps } from './context.js';
import { heartbeatStream } from './heartbeat-stream.js';
import type { DiscoverRequestMsg, RegisterRequestMsg, TokenRequestMsg } from './requests.js';
import { discoverParams, given, namespaceOf, registrationBody } from './requests.js';
import { watchStream } from './watch-stream.js';

/**
 * muster.v1.Registry: each method makes the call its HTTP route makes, with the same arguments
 * (see api/http/routes/instances.ts and discovery.ts), and nothing else.
 */
export function registryService(deps: GrpcDeps, answers: AnswerEncoder): UntypedServiceImplementation {
  const { naming, hub, metrics, guard, limits, applied, staleness } = deps;
  const recorder = new CallRecorder(deps);
  /** The instance's token travels in the message; an access token in the metadata. */
  const creds = (c: Caller, heartbeatToken: string | undefined): InstanceCredentials =>
    ({ instanceToken: given(heartbeatToken) ?? c.instanceToken, writer: guard.writer(c) });
  const caller = (call: GrpcCall) => callerOf(call, guard);
  /** The revision a call's write committed; one that changed nothing: what this node has applied. */
  const revisionOf = (call: object) => contextOf(call)?.revision || applied.get();

  const discover = async (req: DiscoverRequestMsg, call: ServerUnaryCall<DiscoverRequestMsg, unknown>): Promise<object | Buffer> => {
    const { namespace: ns, service: svc, revision: known, filter, waitMs } = discoverParams(req);
    guard.requireClient(caller(call), 'read', [ns, svc]);
    let entry = naming.resolveService(ns, svc);
    if (known !== undefined && known === entry.rec.revision) {
      if (waitMs > 0) {
        const releaseSlot = limits.openWatch(caller(call).address);
        const aborted = new AbortController();
        const onCancel = () => aborted.abort();
        call.once('cancelled', onCancel);
        metrics.watchers.labels('long_poll').inc();
        const changed = await hub.waitForChange(ns, svc, waitMs, aborted.signal).finally(() => {
          metrics.watchers.labels('long_poll').dec();
          call.off('cancelled', onCancel);
          releaseSlot();
        });
        if (changed) entry = naming.resolveService(ns, svc);
      }
      if (entry.rec.revision === known) {
        metrics.disc.notModified.inc();
        return answers.unchanged(entry, staleness());
      }
    }
    return answers.answer(entry, filter, staleness());
  };

  return {
    Register: unary(deps, recorder, 'Register', async (req: RegisterRequestMsg, call) => {
      const ns = namespaceOf(req.namespace);
      const svc = req.service ?? '';
      const c = caller(call);
      const { ownerOnly } = guard.requireRegistration({ ...c, instanceToken: given(req.heartbeatToken) ?? c.instanceToken }, ns, svc);
      await limits.write(c);
      const r = await naming.register(ns, svc, registrationBody(req), { ...creds(c, req.heartbeatToken), ownerOnly, mayIsolate: guard.mayIsolate(c, ns, svc), caller: limits.clientOf(c) }, contextOf(call));
      return { ...r, revision: revisionOf(call) };
    }),
    Deregister: unary(deps, recorder, 'Deregister', async (req: TokenRequestMsg, call) => {
      const c = caller(call);
      await limits.write(c);
      await naming.deregister(req.id ?? '', creds(c, req.heartbeatToken), contextOf(call));
      return { revision: revisionOf(call) };
    }),
    Heartbeat: unary(deps, recorder, 'Heartbeat', async (req: TokenRequestMsg, call) => {
      const c = caller(call);
      await naming.heartbeat(req.id ?? '', given(req.heartbeatToken) ?? c.instanceToken, guard.writer(c), contextOf(call));
      return {};
    }),
    HeartbeatStream: heartbeatStream(deps, recorder),
    Discover: unary(deps, recorder, 'Discover', discover),
    Watch: watchStream(deps, recorder, answers),
  };
}
