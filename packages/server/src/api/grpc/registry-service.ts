import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Grant } from '../../pipeline/grant.js';
import type { Operation } from '../../pipeline/operation.js';
import type { AnswerEncoder } from './answers.js';
import { CallRecorder, unary, type GrpcDeps } from './context.js';
import { heartbeatStream } from './heartbeat-stream.js';
import type { DiscoverRequestMsg, RegisterRequestMsg, TokenRequestMsg } from './requests.js';
import { discoverParams, given, namespaceOf, registrationBody } from './requests.js';
import { watchStream } from './watch-stream.js';

type DiscoverParams = ReturnType<typeof discoverParams>;

/** What each unary method is to the pipeline. The instance's token travels in the message; an access token in the metadata. */
const REGISTER: Operation<RegisterRequestMsg> = {
  kind: 'register',
  on: (req) => [namespaceOf(req.namespace), req.service ?? ''],
  instanceToken: (req) => given(req.heartbeatToken),
};
const DEREGISTER: Operation<TokenRequestMsg> = { kind: 'write', instanceToken: (req) => given(req.heartbeatToken) };
const HEARTBEAT: Operation<TokenRequestMsg> = { kind: 'heartbeat', instanceToken: (req) => given(req.heartbeatToken) };
const DISCOVER: Operation<DiscoverParams> = {
  kind: 'read',
  on: (p) => [p.namespace, p.service],
  parks: (p) => ({ namespace: p.namespace, service: p.service, revision: p.revision, waitMs: p.waitMs }),
};
const asIs = <T>(msg: T): T => msg;

/**
 * muster.v1.Registry: each method makes the call its HTTP route makes, with the same arguments
 * (see api/http/routes/instances.ts and discovery.ts), and nothing else.
 */
export function registryService(deps: GrpcDeps, answers: AnswerEncoder): UntypedServiceImplementation {
  const { naming, metrics, applied, staleness } = deps;
  const recorder = new CallRecorder(deps);
  /** The revision a call's write committed; one that changed nothing: what this node has applied. */
  const revisionOf = (grant: Grant) => grant.contextIfAny?.revision || applied.get();

  return {
    Register: unary(deps, recorder, 'Register', REGISTER, asIs<RegisterRequestMsg>, async (req, g) => {
      const ns = namespaceOf(req.namespace);
      const svc = req.service ?? '';
      const r = await naming.register(
        ns,
        svc,
        registrationBody(req),
        { ...g.credentials(), ownerOnly: g.ownerOnly, mayIsolate: g.mayIsolate(ns, svc), caller: g.client },
        g.context(),
      );
      return { ...r, revision: revisionOf(g) };
    }),
    Deregister: unary(deps, recorder, 'Deregister', DEREGISTER, asIs<TokenRequestMsg>, async (req, g) => {
      await naming.deregister(req.id ?? '', g.credentials(), g.context());
      return { revision: revisionOf(g) };
    }),
    Heartbeat: unary(deps, recorder, 'Heartbeat', HEARTBEAT, asIs<TokenRequestMsg>, async (req, g) => {
      const { instanceToken, writer } = g.credentials();
      await naming.heartbeat(req.id ?? '', instanceToken, writer, g.context());
      return {};
    }),
    HeartbeatStream: heartbeatStream(deps, recorder),
    // A long-poll has been parked by the pipeline already, until the revision moved or the wait ended.
    Discover: unary(
      deps,
      recorder,
      'Discover',
      DISCOVER,
      (req: DiscoverRequestMsg) => discoverParams(req),
      async (p) => {
        const entry = naming.resolveService(p.namespace, p.service);
        if (p.revision !== undefined && p.revision === entry.rec.revision) {
          metrics.disc.notModified.inc();
          return answers.unchanged(entry, staleness());
        }
        return answers.answer(entry, p.filter, staleness());
      },
    ),
    Watch: watchStream(deps, recorder, answers),
  };
}
