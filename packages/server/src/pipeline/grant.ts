import { Guard, type Caller } from '../auth/guard.js';
import type { RateLimits } from '../auth/rate-limits.js';
import type { RequestContext } from '../batch/request-context.js';
import type { InstanceCredentials } from '../naming/naming-service.js';
import type { Inbound } from './inbound.js';

/** Where a grant's request context comes from: the pipeline that admitted it. */
export interface ContextSource {
  context(inbound: Inbound): RequestContext;
}

/**
 * What an admitted request carries into its handler: the caller, and what the guard and the
 * limits say about it, in the terms the naming service takes. Each part is worked out when the
 * handler asks for it, so a discovery pays for none of it.
 */
export class Grant {
  private ctx: RequestContext | undefined;

  constructor(
    private readonly guard: Guard,
    private readonly limits: RateLimits,
    private readonly contexts: ContextSource,
    private readonly inbound: Inbound,
    /** Undefined for a public operation: nobody was asked who they are. */
    readonly caller: Caller | undefined,
    /** The instance token that counts for this operation: the one in the message, or the Bearer. */
    private readonly instanceToken: string | undefined,
    /** A registration admitted on an instance's own token only (the naming service checks it is that instance's). */
    readonly ownerOnly = false,
    /** Ends what the operation holds (a watch slot); the handler calls it once its stream ends. */
    readonly release: () => void = () => {},
  ) {}

  private get c(): Caller {
    return this.caller ?? { address: '' };
  }

  /** Who, for the audit trail and createdBy: a token's name, never its secret. */
  get who(): string {
    return Guard.who(this.c);
  }

  /** What the naming service needs to decide whether this caller may change an instance. */
  credentials(): InstanceCredentials {
    return { instanceToken: this.instanceToken, writer: this.guard.writer(this.c) };
  }

  /** Whether this caller may change an instance's isolation (an operator's decision). */
  mayIsolate(namespace: string, service: string): boolean {
    return this.guard.mayIsolate(this.c, namespace, service);
  }

  /** Who the caller is as one client (its token, or its address as the limits count it). */
  get client(): string {
    return this.limits.clientOf(this.c);
  }

  /** Whether a listing shows this namespace (or service) to the caller. */
  sees(namespace: string, service?: string): boolean {
    return this.guard.sees(this.c, namespace, service);
  }

  /** Which services of a namespace a listing shows; undefined: all of them (auth is off). */
  visibleIn(namespace: string): ((service: string) => boolean) | undefined {
    return this.guard.enabled ? (service) => this.guard.sees(this.c, namespace, service) : undefined;
  }

  /** The request's context for the writes it makes, made on first use (its deadline counts from the arrival). */
  context(): RequestContext {
    return (this.ctx ??= this.contexts.context(this.inbound));
  }

  /** The context if a write or heartbeat made one: its revision is what the write committed. */
  get contextIfAny(): RequestContext | undefined {
    return this.ctx;
  }
}
