import type { AccessRight } from '@muster/api';
import type { Scope } from '../auth/guard.js';

/** A scope, or a function that looks it up (an instance's service): run only once the caller is known. */
export type Target = Scope | (() => Scope);

/**
 * A management right an operation needs: `level` on `on`. With `partly`, some service of the
 * namespace suffices (a listing, which then shows only what the caller sees).
 */
export interface Right {
  level: AccessRight;
  on: Target;
  partly?: boolean;
}

/** A long-poll: answered once the service's revision moves from `revision`, or after `waitMs`. */
export interface Parking {
  namespace: string;
  service: string;
  /** What the caller holds; undefined: nothing to wait for. */
  revision: number | undefined;
  waitMs: number;
}

/**
 * What an operation of an adapter is: all the pipeline needs to apply auth, limits, audit and
 * long-poll parking to it. An adapter declares one per operation, as a function of its decoded
 * request where the namespace and service come from the request.
 */
export type Operation<Req = unknown> = OperationKinds<Req> & {
  /**
   * Checks of the request's shape that its adapter's decoding cannot make, run first, before
   * anything else: a malformed request is refused as such whoever sends it.
   */
  check?: (req: Req) => void;
};

type OperationKinds<Req> =
  /** Asks nothing, not even who is calling: liveness, documents. */
  | { kind: 'public' }
  /** Only who is calling (a token sent is checked, as everywhere): the caller's own rights. */
  | { kind: 'self' }
  /** A client read of one service; with `parks`, a long-poll. */
  | { kind: 'read'; on: (req: Req) => Target; parks?: (req: Req) => Parking | undefined }
  /**
   * A stream of a service's changes: holds one of the caller's watch slots for as long as it
   * lasts. `before` runs once access is granted, before the slot is taken (the service exists).
   */
  | { kind: 'watch'; on: (req: Req) => Target; before?: (req: Req) => void }
  /** A registration: the instance's own token (from `instanceToken`, or the Bearer) may re-register it. */
  | { kind: 'register'; on: (req: Req) => Scope; instanceToken?: (req: Req) => string | undefined }
  /**
   * A change of an existing instance: its own token or write on its service, which the naming
   * service decides; `manage` is a change that needs an operator whoever holds the token.
   */
  | { kind: 'write'; manage?: (req: Req) => Right | undefined; instanceToken?: (req: Req) => string | undefined }
  /** Heartbeats: bound to an instance's token, or vouched for by write on its service; never limited. */
  | { kind: 'heartbeat'; instanceToken?: (req: Req) => string | undefined }
  /**
   * Management: an access token (when auth is on) with each of `rights`; `writes` counts it
   * against the write limits and makes it an audited action.
   */
  | { kind: 'manage'; rights?: (req: Req) => readonly Right[]; writes?: boolean };

export type OperationKind = Operation['kind'];

/** The operations that never wait for anything: admitted synchronously. */
export type ImmediateOperation<Req> = Extract<Operation<Req>, { kind: 'public' | 'self' | 'heartbeat' | 'watch' }>;

/** What the pre-body screen asks of an operation's caller (Guard.screen), if anything. */
export function screenOf(op: Operation<never> | undefined): 'management' | 'clientWrite' | undefined {
  if (op?.kind === 'manage') return 'management';
  if (op?.kind === 'register') return 'clientWrite';
  return undefined;
}
