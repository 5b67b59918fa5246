import { EventEmitter } from 'node:events';
import type { Server } from 'node:http';
import type { Instance, RegisterRequest, RegisterResponse } from '@muster/api';
import { MusterError } from '@muster/api';
import { emitSafely } from './emit-safely.js';
import type { Endpoints } from '../registry/endpoints.js';
import { isTransient } from '../registry/registry-api.js';
import { backoffMs, jitter } from './backoff.js';
import type { HeartbeatBatcher } from './heartbeat-batcher.js';
import {
  attachVerificationResponder,
  verificationResponder,
  type VerificationResponder,
} from './verification-responder.js';
import { asMusterError, HeartbeatFailedError, VerificationNotListeningError } from '../errors.js';

/**
 * - `registering`: the first registration is under way.
 * - `registered`: the registry has the instance and its heartbeats land.
 * - `retrying`: the last registration or heartbeat failed; the SDK retries with backoff.
 * - `deregistered`: ended by `deregister()` or `client.close()`, or refused for good at start.
 */
export type RegistrationState = 'registering' | 'registered' | 'retrying' | 'deregistered';

export interface RegistrationEvents {
  /** The state changed. */
  state: [state: RegistrationState, previous: RegistrationState];
  /** The registry accepted the instance: the first time and after every re-registration. */
  registered: [instance: Instance];
  /** The registry had forgotten the instance (restart, cleanup, failover) and it was registered again. */
  reregistered: [instance: Instance, reason: MusterError];
  /** A heartbeat or registration attempt failed; the SDK retries by itself. */
  failure: [error: MusterError];
  /** `deregister()` finished (`confirmed` false: no registry could be told; it expires by itself). */
  deregistered: [confirmed: boolean];
}

export interface RegistrationInput extends RegisterRequest {
  service: string;
  /** Default: the client's namespace. */
  namespace?: string;
  /** Deregister when the process gets SIGTERM or SIGINT. Default false. */
  deregisterOnExit?: boolean;
  /**
   * The service requires verified registration: the SDK answers the registry's challenge on
   * `server`, the HTTP server listening at this instance's host and port, while the instance is
   * registered. It must be listening before `register()` is called.
   */
  verification?: {
    /** The service's secret, as it was given to the registry. */
    secret: string;
    server: Server;
    /** The service's verify path, when not the default. */
    path?: string;
  };
}

interface Deps {
  endpoints: Endpoints;
  beats: HeartbeatBatcher;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

/**
 * The endpoint is registered by a live twin holding another token, typically this very service
 * before a quick restart: it expires within 3 × ttl, and then the registration goes through.
 */
const HELD = new Set(['ALREADY_EXISTS', 'PERMISSION_DENIED']);
/** Errors that retrying cannot fix: the registration itself is wrong or not allowed. */
const PERMANENT = new Set(['INVALID_ARGUMENT', 'UNAUTHENTICATED', 'NOT_FOUND', 'FAILED_PRECONDITION']);

/**
 * One instance kept alive by the SDK: registered, then a heartbeat every ttl / 2 (jittered).
 * Nothing here throws into the application after `register()` resolved: failures are events,
 * retried with backoff, and a heartbeat answered NOT_FOUND registers the instance again.
 */
export class Registration extends EventEmitter<RegistrationEvents> {
  readonly namespace: string;
  readonly service: string;
  private current: RegistrationState = 'registering';
  private inst: Instance | undefined;
  private token: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private ended = false;
  private readonly request: RegisterRequest;
  private readonly responder: { server: Server; answer: VerificationResponder } | undefined;
  private detach: (() => void) | undefined;

  constructor(
    input: RegistrationInput,
    defaultNamespace: string,
    private readonly deps: Deps,
  ) {
    super();
    const { service, namespace, deregisterOnExit: _exit, verification, ...request } = input;
    this.namespace = namespace ?? defaultNamespace;
    this.service = service;
    this.request = request;
    if (verification) {
      // The check comes right after the registration commits: a server not listening yet fails it.
      if (!verification.server.listening) {
        throw new VerificationNotListeningError();
      }
      const answer = verificationResponder(verification.secret, {
        host: request.host,
        port: request.port,
        service,
        namespace: this.namespace,
        ...(verification.path === undefined ? {} : { path: verification.path }),
      });
      this.responder = { server: verification.server, answer };
    }
  }

  get state(): RegistrationState {
    return this.current;
  }

  /** The instance as the registry last answered it; undefined before the first registration. */
  get instance(): Instance | undefined {
    return this.inst;
  }

  get id(): string | undefined {
    return this.inst?.id;
  }

  /**
   * The first registration. Rejects only when retrying cannot help (invalid input, unknown
   * namespace, no credentials). When no registry is reachable, or the endpoint is still held by
   * a live earlier registration (a restarted process), it resolves in state `retrying` and keeps
   * trying in the background.
   */
  async start(): Promise<void> {
    if (this.responder) this.detach = attachVerificationResponder(this.responder.server, this.responder.answer);
    try {
      await this.registerNow();
    } catch (err) {
      const e = asMusterError(err);
      if (!isTransient(e.code) && !HELD.has(e.code)) {
        this.ended = true;
        this.detach?.();
        this.setState('deregistered');
        throw e;
      }
      this.retry(e, () => void this.attemptRegister());
    }
  }

  /**
   * Removes the instance from the registry and stops its heartbeats. Never rejects: resolves
   * false when no registry could be told (the instance then expires after 3 × ttl).
   */
  async deregister(): Promise<boolean> {
    if (this.ended) return false;
    this.ended = true;
    clearTimeout(this.timer);
    let confirmed = false;
    if (this.inst && this.token) {
      const { id } = this.inst,
        token = this.token;
      try {
        await this.deps.endpoints.call((api) => api.deregister(id, token));
        confirmed = true;
      } catch (err) {
        const e = asMusterError(err);
        confirmed = e.code === 'NOT_FOUND'; // already gone is what we wanted
        if (!confirmed) emitSafely(this, 'failure', e);
      }
    }
    this.detach?.();
    this.setState('deregistered');
    emitSafely(this, 'deregistered', confirmed);
    return confirmed;
  }

  private async registerNow(reason?: MusterError): Promise<void> {
    const res: RegisterResponse = await this.deps.endpoints.call((api) =>
      api.register(this.namespace, this.service, this.request, this.token),
    );
    if (this.ended) return;
    this.inst = res.instance;
    this.token = res.heartbeatToken;
    this.failures = 0;
    this.setState('registered');
    emitSafely(this, 'registered', res.instance);
    if (reason) emitSafely(this, 'reregistered', res.instance, reason);
    this.schedule(this.interval());
  }

  private async attemptRegister(reason?: MusterError): Promise<void> {
    if (this.ended) return;
    try {
      await this.registerNow(reason);
    } catch (err) {
      // A live twin holding another token (ALREADY_EXISTS, PERMISSION_DENIED) expires in time;
      // a permanent refusal may be fixed by an operator. Either way: report and keep trying.
      this.retry(asMusterError(err), () => void this.attemptRegister(reason), PERMANENT.has(asMusterError(err).code));
    }
  }

  private async beat(): Promise<void> {
    if (this.ended || !this.inst || !this.token) return;
    const r = await this.deps.beats.send({ id: this.inst.id, token: this.token });
    if (this.ended) return;
    if (!(r instanceof MusterError) && r.ok) {
      this.failures = 0;
      this.setState('registered');
      this.schedule(this.interval());
      return;
    }
    const e = r instanceof MusterError ? r : itemError(r.ok ? undefined : r.error);
    if (e.code === 'NOT_FOUND' || e.code === 'PERMISSION_DENIED' || e.code === 'UNAUTHENTICATED') {
      // The registry forgot the instance, or another owner took it over while we were cut off.
      emitSafely(this, 'failure', e);
      await this.attemptRegister(e);
      return;
    }
    this.retry(e, () => void this.beat());
  }

  /** Reports the failure and tries again after a backoff no longer than one heartbeat interval. */
  private retry(e: MusterError, again: () => void, slow = false): void {
    this.failures++;
    this.setState('retrying');
    emitSafely(this, 'failure', e);
    const cap = slow ? this.deps.backoffMaxMs : Math.min(this.deps.backoffMaxMs, this.interval());
    this.schedule(backoffMs(this.failures, this.deps.backoffBaseMs, cap), again);
  }

  private schedule(ms: number, fn: () => void = () => void this.beat()): void {
    clearTimeout(this.timer);
    if (this.ended) return;
    this.timer = setTimeout(fn, ms);
    this.timer.unref(); // heartbeats alone do not keep a process alive
  }

  /** Half the ttl, jittered, so a missed heartbeat or two still lands inside 3 × ttl. */
  private interval(): number {
    const ttl = this.inst?.healthCheck.ttl ?? this.request.healthCheck?.ttl ?? 5;
    return jitter((ttl * 1000) / 2);
  }

  private setState(next: RegistrationState): void {
    if (next === this.current) return;
    const prev = this.current;
    this.current = next;
    emitSafely(this, 'state', next, prev);
  }
}

function itemError(error: { code: string; message: string; field?: string } | undefined): MusterError {
  const body = { error };
  return MusterError.isErrorBody(body)
    ? MusterError.fromBody(body)
    : new HeartbeatFailedError(`heartbeat failed: ${error?.message ?? 'no reason given'}`);
}
