/**
 * Client-side load balancers. Pick by what the traffic needs:
 * - `weightedRandom` (the default): independent picks by weight; even load across many clients.
 * - `roundRobin`: smooth weighted round robin; exact shares over short windows for one client.
 * - `ringHash`: consistent hashing of `opts.key`; affinity that survives list changes.
 * - `locality(inner)`: same zone, then same region, then any, deciding within a group by `inner`.
 *
 * Build a picker once per instance list (each new revision) and call `pick()` per request.
 */
import { locality } from './locality.js';
import { ringHash } from './ring-hash.js';
import { roundRobin } from './round-robin.js';
import type { LoadBalancer } from './types.js';
import { weightedRandom } from './weighted-random.js';

export type { LoadBalancer, Location, PickableInstance, PickOptions, Picker } from './types.js';
export { locality } from './locality.js';
export { murmur3 } from './hash.js';
export { buildRingHash, createRingHash, ringHash, type RingHashOptions } from './ring-hash.js';
export { buildRoundRobin, createRoundRobin, roundRobin, type RoundRobinOptions } from './round-robin.js';
export { buildWeightedRandom, weightedRandom } from './weighted-random.js';

export const balancers = { weightedRandom, roundRobin, ringHash, locality } as const;

export type BalancerName = 'weighted-random' | 'round-robin' | 'ring-hash' | 'locality';

// One object per name: callers may key caches (built pickers) by balancer.
const byName: Record<BalancerName, LoadBalancer> = {
  'weighted-random': weightedRandom,
  'round-robin': roundRobin,
  'ring-hash': ringHash,
  locality: locality(),
};

/**
 * The balancer of that name, the same object at every call (`locality` wraps weighted random);
 * undefined for an unknown name.
 */
export function balancerByName(name: BalancerName): LoadBalancer;
export function balancerByName(name: string): LoadBalancer | undefined;
export function balancerByName(name: string): LoadBalancer | undefined {
  return Object.prototype.hasOwnProperty.call(byName, name) ? byName[name as BalancerName] : undefined;
}
