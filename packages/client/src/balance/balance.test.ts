// Tests of the load balancers. They sit next to the sources (not in packages/client/test) because
// the client compiles src/ alone to dist/ (rootDir src, so dist/index.js stays where package.json
// points); this file compiles to dist/balance/balance.test.js, which scripts/run-tests.mjs finds.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  balancerByName,
  balancers,
  buildRingHash,
  buildRoundRobin,
  buildWeightedRandom,
  locality,
  murmur3,
  ringHash,
  roundRobin,
  weightedRandom,
  type LoadBalancer,
  type Location,
  type PickableInstance,
} from './index.js';
import { PrefixSumPicker } from './weighted-random.js';

interface Inst extends PickableInstance {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  readonly location: Location;
}

const inst = (id: string, weight = 100, location: Location = {}): Inst => ({
  id,
  host: `${id}.example`,
  port: 8080,
  weight,
  location,
});
const equal = (n: number, prefix = 'i'): Inst[] => Array.from({ length: n }, (_, i) => inst(`${prefix}-${i}`));

function counts<T extends PickableInstance>(pick: () => T | undefined, n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const x = pick();
    assert.ok(x, 'a pick answered undefined');
    m.set(x.id, (m.get(x.id) ?? 0) + 1);
  }
  return m;
}

function assertFollowsWeights(
  instances: readonly Inst[],
  got: Map<string, number>,
  picks: number,
  tolerance: number,
): void {
  const total = instances.reduce((s, x) => s + Math.max(0, x.weight), 0);
  for (const x of instances) {
    const n = got.get(x.id) ?? 0;
    if (x.weight <= 0) {
      assert.equal(n, 0, `${x.id} has weight ${x.weight} but was picked ${n} times`);
      continue;
    }
    const want = (picks * x.weight) / total;
    assert.ok(
      Math.abs(n - want) / want <= tolerance,
      `${x.id} (weight ${x.weight}) picked ${n} times, expected ${want.toFixed(0)} ± ${tolerance * 100} %`,
    );
  }
}

const keys = (n: number): string[] => Array.from({ length: n }, (_, i) => `user-${i}`);

describe('weighted random', () => {
  it('follows the weights within 5 % over 100,000 picks and never picks weight 0', () => {
    const list = [inst('a', 100), inst('zero1', 0), inst('b', 200), inst('c', 300), inst('zero2', 0), inst('d', 400)];
    const p = weightedRandom.build(list);
    assert.equal(p.size, 6);
    assertFollowsWeights(
      list,
      counts(() => p.pick(), 100_000),
      100_000,
      0.05,
    );
  });

  it('spreads equal weights evenly (the uniform path) and answers a single instance', () => {
    const list = [...equal(8), inst('off', 0)];
    const p = weightedRandom.build(list);
    assertFollowsWeights(
      list,
      counts(() => p.pick(), 80_000),
      80_000,
      0.05,
    );
    const one = weightedRandom.build([inst('only', 7)]);
    for (let i = 0; i < 100; i++) assert.equal(one.pick()?.id, 'only');
  });

  it('follows many uneven weights (alias table over 1,000 instances)', () => {
    const list = Array.from({ length: 1000 }, (_, i) => inst(`w-${i}`, i % 10 === 0 ? 0 : 1 + ((i * 7919) % 10000)));
    const p = buildWeightedRandom(list);
    const picks = 2_000_000;
    const got = counts(() => p.pick(), picks);
    for (const x of list) if (x.weight === 0) assert.equal(got.get(x.id) ?? 0, 0);
    // Per-instance counts are small here; check the aggregate of weight bands instead.
    const total = list.reduce((s, x) => s + x.weight, 0);
    for (const [lo, hi] of [
      [1, 2500],
      [2500, 5000],
      [5000, 7500],
      [7500, 10001],
    ] as const) {
      const band = list.filter((x) => x.weight >= lo && x.weight < hi);
      const want = (picks * band.reduce((s, x) => s + x.weight, 0)) / total;
      const n = band.reduce((s, x) => s + (got.get(x.id) ?? 0), 0);
      assert.ok(Math.abs(n - want) / want <= 0.02, `band ${lo}..${hi}: ${n} picks, expected ${want.toFixed(0)}`);
    }
  });

  it('the prefix-sum variant (bench comparison) follows the weights too', () => {
    const list = [inst('a', 100), inst('zero', 0), inst('b', 200), inst('c', 300), inst('d', 400)];
    const p = new PrefixSumPicker(list);
    assertFollowsWeights(
      list,
      counts(() => p.pick(), 100_000),
      100_000,
      0.05,
    );
  });
});

describe('round robin', () => {
  it("gives nginx's smooth sequence for weights 5, 1, 1", () => {
    const p = buildRoundRobin([inst('a', 5), inst('b', 1), inst('c', 1)], { randomStart: false });
    const seq = Array.from({ length: 14 }, () => p.pick()?.id).join('');
    assert.equal(seq, 'aabacaa'.repeat(2));
  });

  for (const schedule of [true, false]) {
    it(`gives exact shares over every cycle and stays within one pick of the ideal share at every point (${schedule ? 'precomputed cycle' : 'O(n) loop'})`, () => {
      const weights = [5, 1, 1, 3, 0, 10, 7];
      const list = weights.map((w, i) => inst(String.fromCharCode(97 + i), w));
      const total = weights.reduce((s, w) => s + w, 0);
      for (let trial = 0; trial < 20; trial++) {
        const p = buildRoundRobin(list, { schedule }); // random start
        const seen = new Map<string, number>();
        for (let t = 1; t <= 3 * total; t++) {
          const x = p.pick();
          assert.ok(x);
          seen.set(x.id, (seen.get(x.id) ?? 0) + 1);
          for (const y of list) {
            const dev = Math.abs((seen.get(y.id) ?? 0) - (t * y.weight) / total);
            assert.ok(
              dev < 1,
              `after ${t} picks ${y.id} has ${seen.get(y.id) ?? 0}, ideal ${((t * y.weight) / total).toFixed(2)}`,
            );
          }
          if (t % total === 0)
            for (const y of list)
              assert.equal(seen.get(y.id) ?? 0, (t / total) * y.weight, `${y.id} after ${t / total} cycles`);
        }
      }
    });
  }

  it('the precomputed cycle gives the same sequence as the loop', () => {
    const sets = [
      [100, 50, 200],
      [5, 1, 1],
      [3, 6, 9, 12, 0, 15],
      Array.from({ length: 200 }, (_, i) => 50 * (1 + (i % 4))),
      [7, 13, 1000, 999],
    ];
    for (const weights of sets) {
      const list = weights.map((w, i) => inst(`n${i}`, w));
      const a = buildRoundRobin(list, { randomStart: false });
      const b = buildRoundRobin(list, { randomStart: false, schedule: false });
      const cycle = weights.reduce((s, w) => s + w, 0);
      for (let t = 0; t < 2 * cycle + 5; t++)
        assert.equal(a.pick()?.id, b.pick()?.id, `weights ${weights.slice(0, 8).join(',')} pick ${t}`);
    }
  });

  it('fractional weights run the loop and keep proportions', () => {
    const list = [inst('a', 0.5), inst('b', 1.5), inst('c', 2)];
    const p = roundRobin.build(list);
    assertFollowsWeights(
      list,
      counts(() => p.pick(), 4000),
      4000,
      0.001,
    );
  });

  it('has no long runs: weight 5 of 7 never comes more than 4 times in a row', () => {
    const p = roundRobin.build([inst('a', 5), inst('b', 1), inst('c', 1)]);
    let run = 0;
    let longest = 0;
    for (let i = 0; i < 700; i++) {
      run = p.pick()?.id === 'a' ? run + 1 : 0;
      longest = Math.max(longest, run);
    }
    assert.ok(longest <= 4, `longest run ${longest}`);
  });

  it('rotates equal weights, skipping weight 0, from a random start', () => {
    const list = [inst('a'), inst('b'), inst('zero', 0), inst('c')];
    const starts = new Set<string>();
    for (let trial = 0; trial < 50; trial++) {
      const p = roundRobin.build(list);
      const seq = Array.from({ length: 6 }, () => p.pick()?.id).join('');
      assert.ok(['abcabc', 'bcabca', 'cabcab'].includes(seq), seq);
      starts.add(seq[0]!);
    }
    assert.ok(starts.size > 1, 'every picker started at the same instance');
  });
});

describe('ring hash', () => {
  const KEYS = keys(10_000);
  const mapKeys = (list: readonly Inst[]): Map<string, string> => {
    const p = ringHash.build(list);
    return new Map(KEYS.map((k) => [k, p.pick({ key: k })!.id]));
  };

  it('maps the same key to the same instance, whatever the order of the list', () => {
    const list = equal(10);
    const a = mapKeys(list);
    const b = mapKeys([...list].reverse());
    const again = ringHash.build(list);
    for (const k of KEYS) {
      assert.equal(b.get(k), a.get(k));
      assert.equal(again.pick({ key: k })?.id, a.get(k));
      assert.equal(again.pick({ key: k })?.id, a.get(k));
    }
  });

  it('spreads 10,000 keys over 10 instances with none above 2× the mean', () => {
    const per = new Map<string, number>();
    for (const id of mapKeys(equal(10)).values()) per.set(id, (per.get(id) ?? 0) + 1);
    assert.equal(per.size, 10);
    for (const [id, n] of per) assert.ok(n <= 2 * 1000 && n >= 1000 / 2, `${id} has ${n} keys`);
  });

  it('adding an 11th instance moves at most 1.5/11 of the keys, all to the new one', () => {
    const N = 10;
    const before = mapKeys(equal(N));
    const after = mapKeys([...equal(N), inst('new-one')]);
    let moved = 0;
    for (const k of KEYS) {
      if (after.get(k) === before.get(k)) continue;
      moved++;
      assert.equal(after.get(k), 'new-one', `key ${k} moved from ${before.get(k)} to ${after.get(k)}`);
    }
    assert.ok(moved > 0, 'the new instance got no key');
    assert.ok(moved <= (1.5 / (N + 1)) * KEYS.length, `${moved} of ${KEYS.length} keys moved`);
  });

  it('removing an instance moves only the keys it had', () => {
    const list = equal(10);
    const before = mapKeys(list);
    const gone = list[3]!.id;
    const after = mapKeys(list.filter((x) => x.id !== gone));
    for (const k of KEYS) {
      if (before.get(k) === gone) assert.notEqual(after.get(k), gone);
      else assert.equal(after.get(k), before.get(k), `key ${k} moved though its instance stayed`);
    }
  });

  it('gives keys in proportion to weight, roughly, and none to weight 0', () => {
    const list = [inst('light', 100), inst('heavy', 300), inst('off', 0)];
    const per = new Map<string, number>();
    const p = ringHash.build(list);
    for (const k of KEYS) {
      const id = p.pick({ key: k })!.id;
      per.set(id, (per.get(id) ?? 0) + 1);
    }
    assert.equal(per.get('off') ?? 0, 0);
    const ratio = (per.get('heavy') ?? 0) / (per.get('light') ?? 1);
    assert.ok(ratio > 2.2 && ratio < 4, `heavy/light = ${ratio.toFixed(2)}`);
  });

  it('without a key picks weighted random', () => {
    const list = [inst('a', 100), inst('b', 300), inst('zero', 0)];
    const p = ringHash.build(list);
    assertFollowsWeights(
      list,
      counts(() => p.pick(), 100_000),
      100_000,
      0.05,
    );
    assertFollowsWeights(
      list,
      counts(() => p.pick({ zone: 'z' }), 100_000),
      100_000,
      0.05,
    );
  });

  it('hashes the empty key, long keys and non-ASCII keys', () => {
    const p = buildRingHash(equal(5), { pointsPerInstance: 8 });
    for (const k of ['', 'x', 'é', '😀', 'k'.repeat(10_000)])
      assert.equal(p.pick({ key: k })?.id, p.pick({ key: k })?.id);
  });
});

describe('murmur3', () => {
  // Reference murmur3_x86_32 over bytes, checked against published vectors.
  function reference(bytes: Uint8Array, seed: number): number {
    let h = seed >>> 0;
    const nblocks = bytes.length >> 2;
    const mix = (k: number): number => {
      k = Math.imul(k, 0xcc9e2d51);
      k = (k << 15) | (k >>> 17);
      return Math.imul(k, 0x1b873593);
    };
    for (let i = 0; i < nblocks; i++) {
      const o = i * 4;
      h ^= mix(bytes[o]! | (bytes[o + 1]! << 8) | (bytes[o + 2]! << 16) | (bytes[o + 3]! << 24));
      h = (h << 13) | (h >>> 19);
      h = (Math.imul(h, 5) + 0xe6546b64) | 0;
    }
    let k = 0;
    const tail = nblocks * 4;
    switch (bytes.length & 3) {
      case 3:
        k ^= bytes[tail + 2]! << 16; // falls through
      case 2:
        k ^= bytes[tail + 1]! << 8; // falls through
      case 1:
        k ^= bytes[tail]!;
        h ^= mix(k);
    }
    h ^= bytes.length;
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h >>> 0;
  }

  it('the reference matches published vectors', () => {
    const b = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));
    assert.equal(reference(b(''), 0), 0);
    assert.equal(reference(b(''), 1), 0x514e28b7);
    assert.equal(reference(b(''), 0xffffffff), 0x81f16f39);
    assert.equal(reference(b('test'), 0), 0xba6bd213);
    assert.equal(reference(b('Hello, world!'), 0x9747b28c), 0x24884cba);
    assert.equal(reference(b('The quick brown fox jumps over the lazy dog'), 0x9747b28c), 0x2fa826cd);
  });

  it('equals murmur3_32 of the UTF-16LE bytes', () => {
    for (const s of ['', 'a', 'ab', 'abc', 'instance-42', 'é😀ü', 'x'.repeat(101)]) {
      for (const seed of [0, 1, 159, 0x5bd1e995]) {
        assert.equal(
          murmur3(s, seed),
          reference(new Uint8Array(Buffer.from(s, 'utf16le')), seed),
          `${JSON.stringify(s)} seed ${seed}`,
        );
      }
    }
  });
});

describe('locality', () => {
  const list = [
    inst('z1-a', 100, { region: 'r1', zone: 'z1' }),
    inst('z1-b', 100, { region: 'r1', zone: 'z1' }),
    inst('z2-a', 100, { region: 'r1', zone: 'z2' }),
    inst('z3-a', 100, { region: 'r2', zone: 'z3' }),
    inst('z4-off', 0, { region: 'r2', zone: 'z4' }),
    inst('nowhere', 100, {}),
  ];
  const ids = (p: { pick(o?: object): Inst | undefined }, opts?: object): Set<string> => {
    const s = new Set<string>();
    for (let i = 0; i < 2000; i++) s.add(p.pick(opts)!.id);
    return s;
  };

  it('prefers the same zone, then the same region, then any', () => {
    const lb = locality();
    assert.deepEqual(ids(lb.build(list, { region: 'r1', zone: 'z1' })), new Set(['z1-a', 'z1-b']));
    assert.deepEqual(ids(lb.build(list, { region: 'r1', zone: 'z9' })), new Set(['z1-a', 'z1-b', 'z2-a']));
    assert.deepEqual(
      ids(lb.build(list, { region: 'r9', zone: 'z9' })),
      new Set(['z1-a', 'z1-b', 'z2-a', 'z3-a', 'nowhere']),
    );
    assert.deepEqual(ids(lb.build(list)), new Set(['z1-a', 'z1-b', 'z2-a', 'z3-a', 'nowhere']));
  });

  it('falls through a zone whose instances all have weight 0', () => {
    assert.deepEqual(ids(locality().build(list, { region: 'r2', zone: 'z4' })), new Set(['z3-a']));
  });

  it('opts.zone and opts.region override the location it was built with', () => {
    const p = locality().build(list, { region: 'r1', zone: 'z1' });
    assert.deepEqual(ids(p, { zone: 'z3' }), new Set(['z3-a']));
    assert.deepEqual(ids(p, { zone: 'z9' }), new Set(['z1-a', 'z1-b', 'z2-a']));
    assert.deepEqual(ids(p, { zone: 'z9', region: 'r2' }), new Set(['z3-a']));
    assert.deepEqual(ids(p, { zone: 'z2' }), new Set(['z2-a']));
  });

  it('passes the key to the inner balancer: locality(ringHash) keeps affinity within the zone', () => {
    const p = locality(ringHash).build(list, { region: 'r1', zone: 'z1' });
    for (const k of keys(200)) {
      const first = p.pick({ key: k })!.id;
      assert.ok(first.startsWith('z1-'));
      assert.equal(p.pick({ key: k })!.id, first);
    }
  });

  it('follows weights within the zone', () => {
    const zoned = [inst('a', 100, { zone: 'z' }), inst('b', 300, { zone: 'z' }), inst('far', 1000, { zone: 'y' })];
    const p = locality().build(zoned, { zone: 'z' });
    assertFollowsWeights(
      zoned.slice(0, 2),
      counts(() => p.pick(), 100_000),
      100_000,
      0.05,
    );
  });
});

describe('every balancer', () => {
  const all: LoadBalancer[] = [
    weightedRandom,
    roundRobin,
    ringHash,
    locality(),
    locality(roundRobin),
    locality(ringHash),
  ];

  it('answers undefined for an empty or all-zero list, and never throws on odd input', () => {
    const odd = [
      { id: 'nan', host: 'h', port: 1, weight: NaN, location: {} },
      { id: 'neg', host: 'h', port: 1, weight: -5, location: {} },
      { id: 'inf', host: 'h', port: 1, weight: Infinity, location: {} },
      { id: 'noloc', host: 'h', port: 1, weight: 0 },
    ] as PickableInstance[];
    for (const lb of all) {
      for (const list of [[], [inst('z', 0)], [inst('z1', 0), inst('z2', 0)], odd]) {
        const p = lb.build(list, { zone: 'z', region: 'r' });
        assert.equal(p.size, list.length);
        for (const opts of [undefined, {}, { key: 'k' }, { zone: 'z' }, { key: '', zone: 'q', region: 'r' }]) {
          assert.equal(p.pick(opts), undefined, `${lb.name} over ${list.length} instances`);
        }
      }
    }
  });

  it('are found by name', () => {
    assert.equal(balancerByName('weighted-random'), balancers.weightedRandom);
    assert.equal(balancerByName('round-robin'), balancers.roundRobin);
    assert.equal(balancerByName('ring-hash'), balancers.ringHash);
    assert.equal(balancerByName('locality').name, 'locality');
    assert.equal(balancerByName('locality'), balancerByName('locality'));
    assert.equal(balancerByName('nope'), undefined);
    assert.equal(balancerByName('toString'), undefined);
    for (const lb of [weightedRandom, roundRobin, ringHash]) assert.equal(balancerByName(lb.name), lb);
  });

  it('pick among a single pickable instance among weight 0 ones', () => {
    const list = [inst('z1', 0), inst('one', 3, { zone: 'z' }), inst('z2', 0)];
    for (const lb of all) {
      const p = lb.build(list);
      for (const opts of [undefined, { key: 'k' }, { zone: 'y' }]) assert.equal(p.pick(opts)?.id, 'one', lb.name);
    }
  });
});
