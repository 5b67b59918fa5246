import type { AccessRight } from '@muster/api';
import { Errors } from '../errors.js';
import type { AccessTokenService, Principal } from './access-token-service.js';
import { accessTokenId } from './access-tokens.js';
import { ALL, allows, allowsSome } from './rules.js';

/** [namespace, service]; ALL in a part: every one. */
export type Scope = readonly [namespace: string, service: string];

/** Who is calling, as far as the request says: an access token, an instance's token, an address. */
export interface Caller {
  address: string;
  principal?: Principal;
  /** A Bearer that is not an access token: an instance's heartbeatToken, for the naming service. */
  instanceToken?: string;
}

export interface GuardOptions {
  /** auth.enabled */
  enabled: boolean;
  /** Client APIs (register, discover, watch) need an access token too. */
  clientsRequired: boolean;
}

/**
 * The guard of DESIGN's request path: who is calling and whether they may do this to this
 * resource. The request pipeline (pipeline/) calls it for what each operation of an adapter is,
 * before the naming service; the naming service itself only decides instance ownership, with the
 * `writer` the guard hands it.
 *
 * With auth off nothing is checked (local development), except what the naming service always
 * checks: an instance is changed by the holder of its heartbeatToken.
 */
export class Guard {
  constructor(
    readonly opts: GuardOptions,
    private readonly tokens: AccessTokenService,
  ) {}

  get enabled(): boolean {
    return this.opts.enabled;
  }

  /**
   * The caller of a request. An access token that does not check out is refused here, even on
   * an open route: a client that sends a credential must learn it is wrong, not be served anonymously.
   */
  caller(bearer: string | undefined, address: string): Caller {
    if (bearer === undefined) return { address };
    if (accessTokenId(bearer) === undefined) return { address, instanceToken: bearer };
    if (!this.opts.enabled) return { address };
    const principal = this.tokens.authenticate(bearer);
    if (!principal) throw Errors.accessTokenRefused();
    return { address, principal };
  }

  /** Management: always an access token (when auth is on); then, given a scope, the right on it. */
  requireManagement(c: Caller, right?: AccessRight, scope?: Scope | (() => Scope)): void {
    if (!this.opts.enabled) return;
    if (!c.principal) throw missingAccessToken(c, 'this is a management API');
    if (right !== undefined && scope !== undefined) this.check(c.principal, right, scope);
  }

  /**
   * Before a request's body is read: refuses what can only be refused whatever the body says,
   * so a caller without credentials cannot make the server parse anything. A management route
   * needs an access token that checks out; a client write (a registration), with auth.clients
   * required, some credential (an access token, or an instance's own token).
   */
  screen(c: Caller, route: 'management' | 'clientWrite'): void {
    if (!this.opts.enabled || c.principal) return;
    if (route === 'management') throw missingAccessToken(c, 'this is a management API');
    if (this.opts.clientsRequired && c.instanceToken === undefined)
      throw Errors.unauthenticated('auth.clients is required');
  }

  /**
   * Client APIs: open to anonymous callers unless auth.clients requires a token; a token given is
   * always checked. The scope may be a function (an instance's service, looked up): it runs only
   * after the caller is known, so an anonymous caller learns nothing about what exists.
   */
  requireClient(c: Caller, right: AccessRight, scope: Scope | (() => Scope)): void {
    if (!this.opts.enabled) return;
    if (!c.principal) {
      if (this.opts.clientsRequired) throw missingAccessToken(c, 'auth.clients is required');
      return;
    }
    this.check(c.principal, right, scope);
  }

  private check(p: Principal, right: AccessRight, scope: Scope | (() => Scope)): void {
    const [namespace, service] = typeof scope === 'function' ? scope() : scope;
    if (!allows(p.rules, right, namespace, service))
      throw Errors.accessDenied(`token "${p.name}"`, right, scopeText(namespace, service));
  }

  /**
   * A registration: like any client call, except that with auth.clients required an instance's
   * own heartbeatToken also admits re-registering that instance (the naming service checks it).
   */
  requireRegistration(c: Caller, namespace: string, service: string): { ownerOnly: boolean } {
    if (this.opts.enabled && !c.principal && this.opts.clientsRequired && c.instanceToken !== undefined)
      return { ownerOnly: true };
    this.requireClient(c, 'write', [namespace, service]);
    return { ownerOnly: false };
  }

  /**
   * Whether this caller may change an instance's isolation: taking it out of traffic (or back) is
   * an operator's decision, so an access token with write on the service, never an instance's token.
   */
  mayIsolate(c: Caller, namespace: string, service: string): boolean {
    return !this.opts.enabled || (c.principal !== undefined && allows(c.principal.rules, 'write', namespace, service));
  }

  /** For the naming service: whether this caller may act on any instance of a service. */
  writer(c: Caller): ((namespace: string, service: string) => boolean) | undefined {
    const p = c.principal;
    return p && ((ns, svc) => allows(p.rules, 'write', ns, svc));
  }

  /** Whether a listing shows this namespace (or service) to the caller. */
  sees(c: Caller, namespace: string, service?: string): boolean {
    if (!this.opts.enabled) return true;
    if (!c.principal) return false;
    return service === undefined
      ? allowsSome(c.principal.rules, 'read', namespace)
      : allows(c.principal.rules, 'read', namespace, service);
  }

  /** Who, for the audit trail and logs: a token's name, never its secret. */
  static who(c: Caller): string {
    return c.principal ? `token:${c.principal.name}` : `anonymous@${c.address}`;
  }
}

/** Nothing was sent, or something that is not an access token: the message says which. */
function missingAccessToken(c: Caller, why: string) {
  return c.instanceToken === undefined ? Errors.unauthenticated(why) : Errors.accessTokenMalformed(why);
}

function scopeText(namespace: string, service: string): string {
  return `${namespace === ALL ? 'every namespace' : `namespace "${namespace}"`}${service === ALL ? '' : `, service "${service}"`}`;
}
