/**
 * The load-balancer contract of the SDK. A balancer turns one instance list (one revision of a
 * service) into a `Picker` once; the SDK then calls `pick()` per request. Building may allocate
 * and take O(n log n); picking is synchronous, does no I/O and allocates nothing.
 *
 * Balancers pick among exactly what they are given: filter unhealthy, isolated or lower-priority
 * instances out before `build`. Within that list an instance of weight 0 (or a weight that is not
 * a finite positive number) is never picked, and a picker over no pickable instance answers
 * `undefined`. Neither `build` nor `pick` throws.
 */
import type { DiscoveredInstance, Location } from '@muster/api';

export type { Location };

/** The fields a balancer reads; the SDK may pass its own instance objects. */
export interface PickableInstance {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  /** 0..10000 on the wire; anything not finite and positive counts as 0 (never picked). */
  readonly weight: number;
  readonly location?: Location;
}

export interface PickOptions {
  /** Hash key (ring hash): the same key maps to the same instance while the list is stable. */
  key?: string;
  /** Preferred zone (locality); overrides the zone the picker was built with. */
  zone?: string;
  /** Preferred region (locality); overrides the region the picker was built with. */
  region?: string;
}

/** Built once per instance list (a new revision); picking is then allocation-free. */
export interface Picker<T extends PickableInstance = DiscoveredInstance> {
  pick(opts?: PickOptions): T | undefined;
  /** How many instances the picker was built over (pickable or not). */
  readonly size: number;
}

export interface LoadBalancer {
  readonly name: string;
  build<T extends PickableInstance>(instances: readonly T[], self?: Location): Picker<T>;
}

/** A weight as balancers use it: finite and positive, else 0. */
export function effectiveWeight(w: number): number {
  return typeof w === 'number' && w > 0 && w < Infinity ? w : 0;
}

/** The picker of an empty (or all-zero) list. */
export class EmptyPicker<T extends PickableInstance> implements Picker<T> {
  constructor(readonly size: number) {}
  pick(): T | undefined {
    return undefined;
  }
}
