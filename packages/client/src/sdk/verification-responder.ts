import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { LIMITS, VERIFICATION_PARAMS, verificationProof } from '@muster/api';
import { InvalidOptionError } from '../errors.js';

/**
 * Verified registration, the provider's side: the registry sends a challenge to the instance's
 * own host and port, and the provider answers with the proof under the service's secret (the
 * protocol is in @muster/api verification.ts and docs/security.md).
 */
export interface VerificationResponderOptions {
  /** The host the instance is registered with, exactly as registered. */
  host: string;
  /** The port the instance is registered with. */
  port: number;
  /** The service's verify path; default `/.well-known/muster/verify`. */
  path?: string;
  /** Answer only for this service (for a server registered in several services with different secrets). */
  service?: string;
  namespace?: string;
}

/**
 * A part of a Node request listener: answers the verify request and returns true, or returns
 * false and leaves the request alone (the application handles it).
 */
export type VerificationResponder = ((req: IncomingMessage, res: ServerResponse) => boolean) & {
  readonly path: string;
};

const CHALLENGE_RE = /^[A-Za-z0-9_-]{16,128}$/;
const SECRET_RE = new RegExp(LIMITS.verificationSecret.pattern);

/**
 * Answers `GET <path>?challenge=...&host=...&port=...` for the given endpoint: 200 with the
 * proof for a request naming this endpoint (and service, when given); anything else on the path
 * is not answered (false). The proof is computed for the configured host and port only, never
 * for the ones a request names, so the responder cannot be used to prove another endpoint.
 */
export function verificationResponder(secret: string, opts: VerificationResponderOptions): VerificationResponder {
  const s = LIMITS.verificationSecret;
  if (typeof secret !== 'string' || secret.length < s.min || secret.length > s.max || !SECRET_RE.test(secret)) {
    throw new InvalidOptionError('verification.secret', `verification.secret must be ${s.describe}`);
  }
  const path = opts.path ?? LIMITS.verificationPath.default;
  if (!new RegExp(LIMITS.verificationPath.pattern).test(path) || path.length > LIMITS.verificationPath.max) {
    throw new InvalidOptionError('verification.path', `verification.path must be ${LIMITS.verificationPath.describe}`);
  }
  const port = String(opts.port);
  const respond = (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    if ((q === -1 ? url : url.slice(0, q)) !== path || req.method !== 'GET' || q === -1) return false;
    const params = new URLSearchParams(url.slice(q + 1));
    const challenge = params.get(VERIFICATION_PARAMS.challenge);
    if (challenge === null || !CHALLENGE_RE.test(challenge)) return false;
    if (params.get(VERIFICATION_PARAMS.host) !== opts.host || params.get(VERIFICATION_PARAMS.port) !== port)
      return false;
    if (opts.service !== undefined && params.get(VERIFICATION_PARAMS.service) !== opts.service) return false;
    if (opts.namespace !== undefined && params.get(VERIFICATION_PARAMS.namespace) !== opts.namespace) return false;
    const proof = verificationProof(secret, challenge, opts.host, opts.port);
    res.writeHead(200, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(proof),
      'cache-control': 'no-store',
    });
    res.end(proof);
    return true;
  };
  return Object.assign(respond, { path });
}

const attached = new WeakMap<Server, Set<VerificationResponder>>();

/**
 * Puts a responder in front of every 'request' listener of the server, those added later
 * included: a verify request never reaches the application. A request on a verify path that no
 * responder answers (another endpoint or service named, a malformed challenge) is answered 421
 * here, so the registry's log says so (the registrant sees "wrong proof"). Answers a function
 * that takes it off again.
 */
export function attachVerificationResponder(server: Server, responder: VerificationResponder): () => void {
  let set = attached.get(server);
  if (!set) {
    const responders = new Set<VerificationResponder>();
    attached.set(server, (set = responders));
    const emit = server.emit;
    server.emit = function (this: Server, event: string | symbol, ...args: unknown[]): boolean {
      if (event === 'request' && responders.size > 0) {
        const [req, res] = args as [IncomingMessage, ServerResponse];
        let onPath = false;
        for (const r of responders) {
          if (r(req, res)) return true;
          onPath ||= (req.url ?? '').split('?', 1)[0] === r.path;
        }
        if (onPath) {
          res.writeHead(421, { 'content-type': 'text/plain; charset=utf-8' });
          res.end('this verify path answers GET with a challenge for the endpoint and service it is registered as\n');
          return true;
        }
      }
      return emit.apply(this, [event, ...args] as Parameters<Server['emit']>);
    } as Server['emit'];
  }
  set.add(responder);
  return () => void set.delete(responder);
}
