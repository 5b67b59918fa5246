/**
 * Locality-aware wrapper: picks with the inner balancer among the instances in the caller's zone,
 * else among those in its region, else among all. Use it when instances span zones or regions and
 * cross-zone traffic costs latency or money; wrap whichever balancer decides within a group
 * (`locality(ringHash)` keeps key affinity inside the zone).
 *
 * The zone is `opts.zone ?? self.zone` and the region `opts.region ?? self.region`, where `self`
 * is the location given to `build` (the caller's own). A group whose inner picker answers nothing
 * (no instance there, or all of weight 0) falls through to the next. Zone names are taken to be
 * unique across regions, as cloud zone names are (eu-west-1a). There is no spill-over by load:
 * one live instance in the zone takes the zone's whole traffic; filter or lower the weight of
 * overloaded instances before building if that matters.
 *
 * Groups are made at build time; the inner picker of a group is built the first time a pick asks
 * for that group (an "any" picker over the whole list likewise), then reused, so picks after the
 * first of each group allocate nothing.
 */
import { weightedRandom } from './weighted-random.js';
import type { LoadBalancer, Location, PickableInstance, PickOptions, Picker } from './types.js';

class Group<T extends PickableInstance> {
  private picker: Picker<T> | undefined;
  constructor(
    private readonly inner: LoadBalancer,
    readonly members: T[],
    private readonly self: Location | undefined,
  ) {}
  pick(opts: PickOptions | undefined): T | undefined {
    let p = this.picker;
    if (p === undefined) {
      p = this.inner.build(this.members, this.self);
      this.picker = p;
    }
    return p.pick(opts);
  }
}

class LocalityPicker<T extends PickableInstance> implements Picker<T> {
  constructor(
    private readonly zones: Map<string, Group<T>>,
    private readonly regions: Map<string, Group<T>>,
    private readonly all: Group<T>,
    private readonly self: Location | undefined,
    readonly size: number,
  ) {}
  pick(opts?: PickOptions): T | undefined {
    const zone = opts?.zone ?? this.self?.zone;
    if (zone !== undefined) {
      const hit = this.zones.get(zone)?.pick(opts);
      if (hit !== undefined) return hit;
    }
    const region = opts?.region ?? this.self?.region;
    if (region !== undefined) {
      const hit = this.regions.get(region)?.pick(opts);
      if (hit !== undefined) return hit;
    }
    return this.all.pick(opts);
  }
}

function add<T extends PickableInstance>(
  map: Map<string, Group<T>>,
  name: unknown,
  inst: T,
  inner: LoadBalancer,
  self: Location | undefined,
): void {
  if (typeof name !== 'string') return;
  let g = map.get(name);
  if (g === undefined) {
    g = new Group(inner, [], self);
    map.set(name, g);
  }
  g.members.push(inst);
}

export function locality(inner: LoadBalancer = weightedRandom): LoadBalancer {
  return {
    name: inner === weightedRandom ? 'locality' : `locality(${inner.name})`,
    build<T extends PickableInstance>(instances: readonly T[], self?: Location): Picker<T> {
      const zones = new Map<string, Group<T>>();
      const regions = new Map<string, Group<T>>();
      const all: T[] = [];
      for (const inst of instances) {
        if (inst == null) continue;
        all.push(inst);
        add(zones, inst.location?.zone, inst, inner, self);
        add(regions, inst.location?.region, inst, inner, self);
      }
      return new LocalityPicker(zones, regions, new Group(inner, all, self), self, instances.length);
    },
  };
}
