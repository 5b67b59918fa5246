/**
 * Smooth weighted round robin (nginx's algorithm). Use it when one client sends many requests and
 * should spread them exactly by weight over short windows: over every cycle of `total weight`
 * picks each instance gets exactly its weight's share, and the picks are interleaved (weights
 * 5, 1, 1 give a a b a c a a, not a a a a a b c). It is stateful: the state lives in the picker,
 * so it restarts with each new revision, and separate pickers (processes) do not coordinate.
 *
 * The algorithm is O(n) a pick over the instances of positive weight (add each weight to its
 * current value, take the largest, subtract the total from it). The sequence repeats every
 * total / gcd(weights) picks, so when that cycle is short (integer weights with a common divisor,
 * as weights set by hand usually are: 100 and 50, say) it is computed once at build time and a
 * pick is O(1): a step through that schedule. All weights equal is plain rotation, also O(1).
 * Otherwise (say 1,000 instances of unrelated weights) a pick costs about 2 ns per instance.
 * Each picker starts at a random point of the instance order, so clients that rebuild at the same
 * revision do not all send their first request to the same instance.
 */
import { positive } from './weighted-random.js';
import { EmptyPicker, type LoadBalancer, type Location, type PickableInstance, type Picker } from './types.js';

/** Equal weights: smooth weighted round robin degenerates to rotation. */
class RotationPicker<T extends PickableInstance> implements Picker<T> {
  private next: number;
  constructor(
    private readonly items: readonly T[],
    readonly size: number,
    start: number,
  ) {
    this.next = start;
  }
  pick(): T | undefined {
    const i = this.next;
    this.next = i + 1 === this.items.length ? 0 : i + 1;
    return this.items[i];
  }
}

class SmoothPicker<T extends PickableInstance> implements Picker<T> {
  private readonly current: Float64Array;
  constructor(
    private readonly items: readonly T[],
    private readonly weights: Float64Array,
    private readonly total: number,
    readonly size: number,
  ) {
    this.current = new Float64Array(items.length);
  }
  pick(): T | undefined {
    return this.items[this.step()];
  }
  /** One step of nginx's algorithm: the index picked. */
  step(): number {
    const current = this.current;
    const weights = this.weights;
    const n = current.length;
    let best = 0;
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      const c = current[i]! + weights[i]!;
      current[i] = c;
      if (c > max) {
        max = c;
        best = i;
      }
    }
    current[best] = max - this.total;
    return best;
  }
}

/** A precomputed cycle of the smooth sequence. */
class SchedulePicker<T extends PickableInstance> implements Picker<T> {
  private next = 0;
  constructor(
    private readonly items: readonly T[],
    private readonly schedule: Uint32Array,
    readonly size: number,
  ) {}
  pick(): T | undefined {
    const i = this.next;
    this.next = i + 1 === this.schedule.length ? 0 : i + 1;
    return this.items[this.schedule[i]!];
  }
}

/** Longest cycle precomputed, and most work (instances × cycle) spent computing one at build. */
const MAX_CYCLE = 65_536;
const MAX_SCHEDULE_WORK = 2 ** 22;

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

export interface RoundRobinOptions {
  /**
   * Start at a random point of the instance order (default true). False gives nginx's exact
   * sequence from the first instance, which tests and reproducible runs want.
   */
  randomStart?: boolean;
  /** Precompute the cycle when it is short (default true); false always runs the O(n) loop. */
  schedule?: boolean;
}

export function buildRoundRobin<T extends PickableInstance>(
  instances: readonly T[],
  options: RoundRobinOptions = {},
): Picker<T> {
  const size = instances.length;
  const { items, weights, total } = positive(instances);
  const n = items.length;
  if (n === 0) return new EmptyPicker<T>(size);
  const start = options.randomStart === false ? 0 : (Math.random() * n) | 0;
  if (!(total < Infinity) || weights.every((w) => w === weights[0])) return new RotationPicker(items, size, start);
  // Rotating the order changes only which instance wins ties: proportions and smoothness stay.
  const order: T[] = new Array<T>(n);
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const j = (i + start) % n;
    order[i] = items[j]!;
    w[i] = weights[j]!;
  }
  const smooth = new SmoothPicker(order, w, total, size);
  if (options.schedule === false || !weights.every(Number.isSafeInteger)) return smooth;
  let g = 0;
  for (const x of weights) g = gcd(x, g);
  const cycle = total / g;
  if (cycle > MAX_CYCLE || n * cycle > MAX_SCHEDULE_WORK) return smooth;
  // Dividing every weight by their gcd leaves the sequence as it is, and the state is back to all
  // zero after total / gcd picks, so one cycle of the loop is the whole sequence.
  const schedule = new Uint32Array(cycle);
  for (let t = 0; t < cycle; t++) schedule[t] = smooth.step();
  return new SchedulePicker(order, schedule, size);
}

/** A round-robin balancer with other options than the default. */
export function createRoundRobin(options: RoundRobinOptions = {}): LoadBalancer {
  return {
    name: 'round-robin',
    build<T extends PickableInstance>(instances: readonly T[], _self?: Location): Picker<T> {
      return buildRoundRobin(instances, options);
    },
  };
}

export const roundRobin: LoadBalancer = createRoundRobin();
