import { MIN_REVISION_HEADER, MusterError, REVISION_HEADER } from '@muster/api';
import { Agent, fetch, type Dispatcher, type RequestInit, type Response } from 'undici';
import { abortedByCaller, errorFromAnswer, errorFromFailure } from './error-mapping.js';
import type { ReadYourWrites } from './read-your-writes.js';
import { checkTlsOptions, type TlsOptions } from './tls.js';
import { InvalidOptionError, NotJsonAnswerError, RequestTimeoutError, ServerUnreachableError } from './errors.js';

/** Per-call options every client method takes. */
export interface CallOptions {
  /** Ends the call early; the rejection is the signal's reason, not a MusterError. */
  signal?: AbortSignal;
  /** Overrides the client's timeout for this call. */
  timeoutMs?: number;
}

export interface HttpRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path below the server URL, already escaped. */
  path: string;
  query?: URLSearchParams;
  body?: unknown;
  /** Sent as `Authorization: Bearer` instead of the client's access token: an instance's heartbeatToken. */
  token?: string;
  headers?: Record<string, string>;
  /**
   * False: the call does not wait for the client's own writes: heartbeats (a node that has not
   * indexed an instance looks it up in the store anyway, and a heartbeat must not wait), and
   * what asks about a node rather than the registry (readiness, the cluster, the caller's token),
   * which must answer even from a node that cannot catch up.
   */
  readYourWrites?: false;
}

export interface HttpAnswer<T> {
  status: number;
  headers: Headers;
  /** Undefined for answers without a body (204, 304). */
  body: T | undefined;
}

const USER_AGENT = 'muster-client/0.1.0';

export function normalizeServer(server: string): string {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new InvalidOptionError('server', `server must be an http:// or https:// URL, not ${JSON.stringify(server)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidOptionError('server', `server must be an http:// or https:// URL, not ${JSON.stringify(server)}`);
  }
  // Kept as text, not URL.href, so a path prefix (a reverse proxy's /muster) survives.
  return server.replace(/\/+$/, '');
}

/**
 * One HTTP exchange with a Muster server: JSON in and out, every non-2xx answer and every
 * network failure turned into a MusterError. The typed API (and later the SDK's loops) sit on
 * top; nothing here knows a route.
 *
 * It uses undici's fetch, not the global one: only undici's own fetch takes a dispatcher (here
 * an Agent with the `tls` CA and client certificate), and the global fetch of another Node
 * version may bundle an undici whose dispatcher interface differs.
 */
export class HttpTransport {
  /** undefined: undici's default agent (the system's CAs, no client certificate). */
  private readonly dispatcher: Dispatcher | undefined;
  private readonly clientCert: boolean;

  /**
   * `accessToken`: sent as `Authorization: Bearer` with every request that carries no token of
   * its own. `session`: the revision of the client's own writes, carried by every request and
   * raised by every write's answer.
   */
  constructor(
    readonly server: string,
    readonly timeoutMs: number,
    tls?: TlsOptions,
    private readonly accessToken?: string,
    private readonly session?: ReadYourWrites,
  ) {
    checkTlsOptions(tls);
    if (tls !== undefined && !server.startsWith('https:')) {
      // Settings meant to protect the connection must not be dropped silently on a plain-text one.
      throw new InvalidOptionError('server', `tls is set but the server ${server} is not an https:// URL`);
    }
    if (tls === undefined) this.dispatcher = undefined;
    else {
      // These three only: nothing else of the caller's object reaches the TLS options.
      const { ca, cert, key } = tls;
      this.dispatcher = new Agent({
        connect: {
          ...(ca === undefined ? {} : { ca }),
          ...(cert === undefined ? {} : { cert }),
          ...(key === undefined ? {} : { key }),
        },
      });
    }
    this.clientCert = tls?.cert !== undefined;
  }

  url(path: string, query?: URLSearchParams): string {
    const qs = query?.toString();
    return `${this.server}${path}${qs ? `?${qs}` : ''}`;
  }

  /** Sends a request and reads its JSON answer; `okStatuses` beyond 2xx (304) also succeed. */
  async call<T>(req: HttpRequest, opts: CallOptions = {}, okStatuses: readonly number[] = []): Promise<HttpAnswer<T>> {
    if (!this.session || req.readYourWrites === false) return this.send(req, opts, okStatuses);
    const a = await this.session.carry((revision) => this.send<T>(withRevision(req, revision), opts, okStatuses));
    this.session.wrote(a.headers.get(REVISION_HEADER));
    return a;
  }

  private async send<T>(req: HttpRequest, opts: CallOptions, okStatuses: readonly number[]): Promise<HttpAnswer<T>> {
    // A timer that keeps the process alive, unlike AbortSignal.timeout's: undici can leave a fetch
    // unsettled (seen about once in 30 against a TLS 1.3 server refusing a client without a
    // certificate), and with nothing else pending a CLI would then exit silently with code 13.
    const timeout = new AbortController();
    const timer = setTimeout(
      () => timeout.abort(new DOMException('no answer in time', 'TimeoutError')),
      opts.timeoutMs ?? this.timeoutMs,
    );
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout.signal]) : timeout.signal;
    const what = `${req.method} ${this.url(req.path)}`;
    try {
      const res = await fetch(this.url(req.path, req.query), this.init(req, signal));
      const text = await res.text();
      if (!res.ok && !okStatuses.includes(res.status)) throw errorFromAnswer(res.status, res.statusText, text);
      return { status: res.status, headers: res.headers, body: text === '' ? undefined : parseJson<T>(text, what) };
    } catch (err) {
      if (abortedByCaller(opts.signal)) throw opts.signal!.reason;
      throw this.failure(err, what);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Opens a streaming GET. The timeout covers only the wait for the answer's headers; the body
   * is the caller's to read for as long as it likes, and `abort` ends it.
   */
  async stream(
    req: HttpRequest,
    opts: { signal?: AbortSignal; timeoutMs?: number; accept: string },
  ): Promise<{ response: Response; abort: () => void }> {
    if (!this.session) return this.open(req, opts);
    return this.session.carry((revision) => this.open(withRevision(req, revision), opts));
  }

  private async open(
    req: HttpRequest,
    opts: { signal?: AbortSignal; timeoutMs?: number; accept: string },
  ): Promise<{ response: Response; abort: () => void }> {
    if (opts.signal?.aborted) throw opts.signal.reason;
    const ctl = new AbortController();
    const onCallerAbort = () => ctl.abort(opts.signal!.reason);
    opts.signal?.addEventListener('abort', onCallerAbort, { once: true });
    const timer = setTimeout(
      () => ctl.abort(new DOMException('no answer in time', 'TimeoutError')),
      opts.timeoutMs ?? this.timeoutMs,
    );
    const what = `${req.method} ${this.url(req.path)}`;
    const detach = () => opts.signal?.removeEventListener('abort', onCallerAbort);
    try {
      const res = await fetch(
        this.url(req.path, req.query),
        this.init({ ...req, headers: { ...req.headers, accept: opts.accept } }, ctl.signal),
      );
      if (!res.ok) throw errorFromAnswer(res.status, res.statusText, await res.text());
      return {
        response: res,
        abort: () => {
          detach();
          ctl.abort();
        },
      };
    } catch (err) {
      detach();
      ctl.abort();
      if (abortedByCaller(opts.signal)) throw opts.signal!.reason;
      throw this.failure(err, what);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A server that refuses the connection's TLS (or its absence) closes it before answering
   * anything, and undici reports only "other side closed": a TLS 1.3 server checks the client's
   * certificate after the client's handshake is done, and a TLS port drops a plain-text request.
   * Both are likely enough to be named, as a guess.
   */
  private failure(err: unknown, what: string): MusterError {
    const e = errorFromFailure(err, what);
    const cause = (err as { cause?: { code?: unknown; socket?: { bytesRead?: unknown } } } | undefined)?.cause;
    // The refusal shows as a socket closed before any answer byte, or a write into one closing
    // (EPIPE, ECONNRESET); on https without a client certificate, also as no answer at all.
    const closedUnanswered =
      (cause?.code === 'UND_ERR_SOCKET' && cause.socket?.bytesRead === 0) ||
      cause?.code === 'EPIPE' ||
      cause?.code === 'ECONNRESET';
    const silentTls = e.code === 'DEADLINE_EXCEEDED' && this.server.startsWith('https:') && !this.clientCert;
    if (!(e.code === 'UNAVAILABLE' && closedUnanswered) && !silentTls) return e;
    const hint = !this.server.startsWith('https:')
      ? 'if the server has TLS on, use an https:// URL'
      : this.clientCert
        ? 'if the server requires client certificates, this one may not be signed by the CA it trusts (its tls.ca)'
        : 'if the server requires client certificates, give one (options tls.cert and tls.key; muster --cert FILE --key FILE)';
    return e.code === 'DEADLINE_EXCEEDED'
      ? new RequestTimeoutError(`${e.message}: ${hint}`, err)
      : new ServerUnreachableError(`${e.message}: ${hint}`, err);
  }

  private init(req: HttpRequest, signal: AbortSignal): RequestInit {
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': USER_AGENT, ...req.headers };
    const bearer = req.token ?? this.accessToken;
    if (bearer !== undefined) headers['authorization'] = `Bearer ${bearer}`;
    const init: RequestInit = { method: req.method, headers, signal };
    if (this.dispatcher) init.dispatcher = this.dispatcher;
    if (req.body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(req.body);
    }
    return init;
  }
}

function withRevision(req: HttpRequest, revision: number | undefined): HttpRequest {
  return revision === undefined
    ? req
    : { ...req, headers: { ...req.headers, [MIN_REVISION_HEADER]: String(revision) } };
}

function parseJson<T>(text: string, what: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new NotJsonAnswerError(what, err);
  }
}
