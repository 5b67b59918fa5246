import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClusterClock } from './cluster-clock.js';

/** A machine clock the test sets. */
function machine(at: number) {
  const c = { t: at, now: () => c.t };
  return c;
}

describe("ClusterClock: every node stamps on Redis's clock", () => {
  it("reads the machine's clock corrected by its distance to Redis's, from the sample of the shortest round trip", () => {
    const m = machine(1_000_000);
    const clock = new ClusterClock(m);
    assert.equal(clock.now(), 1_000_000, "before any sample: the machine's own");
    assert.equal(clock.skewMs, undefined);
    // The machine runs 20 s behind Redis. Redis read its clock halfway through the round trip.
    clock.sample(1_000_000, 1_020_005, 1_000_010);
    assert.equal(clock.now(), 1_020_000);
    assert.equal(clock.skewMs, -20_000);
    // A slow round trip says less: it does not move the distance off the better sample.
    clock.sample(1_000_100, 1_020_000 + 100 + 150, 1_000_400);
    assert.equal(clock.now() - m.now(), 20_000);
    // A better one does.
    clock.sample(1_000_500, 1_020_503, 1_000_502);
    assert.equal(clock.now() - m.now(), 20_002);
  });

  it("takes a step of the machine's clock at once, whatever the old samples said", () => {
    const m = machine(5_000_000);
    const clock = new ClusterClock(m);
    clock.sample(5_000_000, 5_000_001, 5_000_002);
    assert.equal(clock.skewMs, 0);
    m.t += 30_000; // NTP stepped the machine's clock forward 30 s
    clock.sample(m.t, m.t - 30_000 + 4, m.t + 8);
    assert.equal(clock.skewMs, 30_000);
  });

  it('keeps the last distance while Redis cannot be read', async () => {
    const m = machine(7_000_000);
    const clock = new ClusterClock(m);
    let redis: () => Promise<number> = async () => m.now() + 20_000;
    await clock.start(() => redis(), 60_000);
    assert.equal(clock.skewMs, -20_000);
    redis = async () => {
      throw new Error('Redis is out');
    };
    await clock.start(() => redis(), 60_000);
    clock.stop();
    assert.equal(clock.skewMs, -20_000);
    assert.equal(clock.now(), m.now() + 20_000);
  });
});
