import crypto from 'node:crypto';
import dns from 'node:dns';
import http from 'node:http';
import net from 'node:net';
import type { LookupFunction } from 'node:net';
import { LIMITS, VERIFICATION_PARAMS, verificationProof } from '@muster/api';
import { VERSION } from '../version.js';
import { addressRefusal, type GuardOptions } from './address-guard.js';

/** What a failed check is, as a bounded set (the metric's label); the reason says the rest. */
export type FailureKind =
  | 'wrong_answer'
  | 'timeout'
  | 'redirect'
  | 'too_large'
  | 'status'
  | 'bad_response'
  | 'connection'
  | 'dns'
  | 'address_refused';

export type CheckOutcome = { ok: true } | { ok: false; kind: FailureKind; reason: string };

/**
 * What a registrant may learn of a failed check: whether the endpoint answered at all. The kind
 * and reason of the outcome (an error code, a status, a redirect's Location) go to the operator's
 * log and the metric only: shown to whoever registered, they would make verification a port
 * scanner and a reader of other services' answers.
 */
export type PublicFailure = 'unreachable' | 'wrong_proof';

export const PUBLIC_REASONS: Record<PublicFailure, string> = {
  unreachable: "unreachable: no answer from the instance's host and port (the registry's log says why)",
  wrong_proof: "wrong proof: the verify path did not answer the proof of the challenge (the registry's log says why)",
};

const UNREACHABLE: ReadonlySet<FailureKind> = new Set(['timeout', 'connection', 'dns', 'address_refused']);

export function publicFailure(kind: FailureKind): PublicFailure {
  return UNREACHABLE.has(kind) ? 'unreachable' : 'wrong_proof';
}

export interface CheckTarget {
  namespace: string;
  service: string;
  host: string;
  port: number;
  path: string;
  secret: string;
}

export interface ResolvedAddress {
  address: string;
  family: number;
}

export interface VerifierOptions extends GuardOptions {
  /** The whole check, name resolution included, gets this long. */
  timeoutMs: number;
  /** Name resolution, dns.lookup (what a connect would use) unless given. */
  resolve?: (host: string) => Promise<ResolvedAddress[]>;
}

/** A provider's answer beyond this many bytes of headers fails the check (as the body limit does). */
const MAX_HEADER_BYTES = 8192;

const systemResolve = (host: string): Promise<ResolvedAddress[]> =>
  dns.promises.lookup(host, { all: true, verbatim: true });

/**
 * One verification check: a challenge sent to the instance's own host and port, its answer
 * compared with the proof under the service's secret (see @muster/api verification.ts).
 *
 * Guards, since the target is whatever a registration named: a name is resolved once and every
 * address it resolves to is judged by the address guard before any socket opens; the connection
 * then goes to those checked addresses only (the request's lookup is pinned to them), so DNS
 * cannot answer differently the second time. Redirects are never followed (a 3xx fails), the
 * whole check has `timeoutMs`, and reading stops past LIMITS.verificationAnswerMaxBytes.
 */
export class Verifier {
  /** HTTP requests sent (connections attempted): a refused address never counts here. */
  requestsSent = 0;
  private readonly resolve: (host: string) => Promise<ResolvedAddress[]>;

  constructor(private readonly opts: VerifierOptions) {
    this.resolve = opts.resolve ?? systemResolve;
  }

  /** Rejects only when `signal` aborts it (the server is stopping); every failure of the provider is an outcome. */
  async check(target: CheckTarget, signal?: AbortSignal): Promise<CheckOutcome> {
    const timeout = AbortSignal.timeout(this.opts.timeoutMs);
    const deadline = signal ? AbortSignal.any([timeout, signal]) : timeout;
    const timedOut = (): CheckOutcome => {
      signal?.throwIfAborted();
      return { ok: false, kind: 'timeout', reason: `timeout: no answer within ${this.opts.timeoutMs} ms` };
    };

    let addresses: ResolvedAddress[];
    const family = net.isIP(target.host);
    if (family !== 0) addresses = [{ address: target.host, family }];
    else {
      try {
        addresses = await untilAborted(this.resolve(target.host), deadline);
      } catch (err) {
        if (deadline.aborted) return timedOut();
        return {
          ok: false,
          kind: 'dns',
          reason: `DNS lookup of ${target.host} failed: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        };
      }
      if (addresses.length === 0) return { ok: false, kind: 'dns', reason: `${target.host} resolves to no address` };
    }
    for (const a of addresses) {
      const why = addressRefusal(a.address, this.opts);
      if (why !== undefined) {
        return {
          ok: false,
          kind: 'address_refused',
          reason:
            family !== 0
              ? `address refused: ${why}`
              : `address refused: ${target.host} resolves to ${a.address}: ${why}`,
        };
      }
    }

    const challenge = crypto.randomBytes(32).toString('base64url');
    const query = new URLSearchParams({
      [VERIFICATION_PARAMS.challenge]: challenge,
      [VERIFICATION_PARAMS.host]: target.host,
      [VERIFICATION_PARAMS.port]: String(target.port),
      [VERIFICATION_PARAMS.namespace]: target.namespace,
      [VERIFICATION_PARAMS.service]: target.service,
    });
    const expected = verificationProof(target.secret, challenge, target.host, target.port);
    try {
      const answer = await this.get(target, `${target.path}?${query.toString()}`, addresses, deadline);
      if ('kind' in answer) return { ok: false, ...answer };
      return matches(answer.body, expected)
        ? { ok: true }
        : {
            ok: false,
            kind: 'wrong_answer',
            reason: "wrong answer: not the HMAC-SHA256 proof of the challenge under the service's secret",
          };
    } catch (err) {
      if (deadline.aborted) return timedOut();
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (code === 'HPE_HEADER_OVERFLOW')
        return { ok: false, kind: 'too_large', reason: `answer too large: headers over ${MAX_HEADER_BYTES} bytes` };
      if (code.startsWith('HPE_'))
        return { ok: false, kind: 'bad_response', reason: `not a valid HTTP answer (${code})` };
      if (code === 'ECONNREFUSED') return { ok: false, kind: 'connection', reason: 'connection refused' };
      return { ok: false, kind: 'connection', reason: `connection failed: ${code || (err as Error).message}` };
    }
  }

  /** The body of a 200 answer, or why there is none worth reading. */
  private get(
    target: CheckTarget,
    path: string,
    addresses: ResolvedAddress[],
    signal: AbortSignal,
  ): Promise<{ body: Buffer } | { kind: FailureKind; reason: string }> {
    const max = LIMITS.verificationAnswerMaxBytes;
    return new Promise((resolve, reject) => {
      this.requestsSent++;
      const req = http.request({
        host: target.host,
        port: target.port,
        path,
        method: 'GET',
        signal,
        lookup: pinnedLookup(addresses),
        // One connection of its own, closed after the answer: never a pooled socket another check opened.
        agent: false,
        maxHeaderSize: MAX_HEADER_BYTES,
        headers: {
          accept: 'text/plain',
          'user-agent': `muster/${VERSION} (verified registration)`,
          connection: 'close',
        },
      });
      req.once('error', reject);
      req.once('response', (res) => {
        const status = res.statusCode ?? 0;
        const stop = (outcome: { kind: FailureKind; reason: string }) => {
          resolve(outcome);
          req.destroy();
        };
        if (status >= 300 && status < 400) {
          const location = typeof res.headers.location === 'string' ? ` to ${res.headers.location.slice(0, 200)}` : '';
          return stop({
            kind: 'redirect',
            reason: `redirect refused: the verify path answered ${status}${location}; redirects are never followed`,
          });
        }
        if (status !== 200) return stop({ kind: 'status', reason: `status ${status} from the verify path` });
        const declared = Number(res.headers['content-length']);
        if (declared > max) return stop({ kind: 'too_large', reason: `answer too large: over ${max} bytes` });
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > max) stop({ kind: 'too_large', reason: `answer too large: over ${max} bytes` });
          else chunks.push(chunk);
        });
        res.once('end', () => resolve({ body: Buffer.concat(chunks) }));
        res.once('error', reject);
      });
      req.end();
    });
  }
}

/** The request connects to the addresses already checked, whatever DNS would answer now. */
function pinnedLookup(addresses: ResolvedAddress[]): LookupFunction {
  return (_hostname, options, callback) => {
    const usable = options.family ? addresses.filter((a) => a.family === options.family) : addresses;
    const list = usable.length > 0 ? usable : addresses;
    if (options.all) (callback as (err: null, addresses: ResolvedAddress[]) => void)(null, list);
    else callback(null, list[0]!.address, list[0]!.family);
  };
}

/** Constant-time comparison of the answer (trimmed, any case) with the expected hex proof. */
function matches(body: Buffer, expected: string): boolean {
  const given = Buffer.from(body.toString('latin1').trim().toLowerCase(), 'latin1');
  const want = Buffer.from(expected, 'latin1');
  return given.length === want.length && crypto.timingSafeEqual(given, want);
}

function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
      (e: unknown) => (signal.removeEventListener('abort', onAbort), reject(e)),
    );
  });
}
