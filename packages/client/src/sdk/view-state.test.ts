import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DiscoveredInstance, DiscoverResponse } from '@muster/api';
import { weightedRandom } from '../balance/index.js';
import { ViewState, type StaleReason, type ViewStateOptions } from './view-state.js';

const SERVER = { name: 'server a' };

function inst(id: string, over: Partial<DiscoveredInstance> = {}): DiscoveredInstance {
  return {
    id,
    host: '10.0.0.1',
    port: Number(id.replace(/\D/g, '')) || 80,
    protocol: '',
    version: '',
    weight: 100,
    priority: 0,
    metadata: {},
    location: {},
    healthCheck: { type: 'heartbeat', ttl: 5 },
    healthy: true,
    isolate: false,
    lastHeartbeatAgeMs: 0,
    revision: 1,
    ...over,
  };
}

function answer(
  revision: number,
  instances: DiscoveredInstance[],
  over: Partial<DiscoverResponse> = {},
): DiscoverResponse {
  return { namespace: 'default', service: 'orders', revision, instances, ...over };
}

/** A view on a clock the test moves, and what it told. */
function view(opts: Partial<ViewStateOptions> = {}) {
  const clock = { t: 1_000_000 };
  const told = { stale: [] as StaleReason[], fresh: 0, updates: [] as number[] };
  const state = new ViewState(
    'default',
    'orders',
    {
      maxHeartbeatAgeMs: 60_000,
      serveStale: true,
      emptyConfirmMs: 3000,
      protectionThreshold: 0,
      balancer: weightedRandom,
      self: {},
      outliers: false,
      ...opts,
    },
    {
      update: (revision) => told.updates.push(revision),
      stale: (reason) => told.stale.push(reason),
      fresh: () => told.fresh++,
      eject: () => {},
    },
    () => clock.t,
  );
  const ids = () =>
    state
      .answer()
      .instances.map((i) => i.id)
      .sort();
  return { state, clock, told, ids };
}

describe('service view state (injected clock, no timers)', () => {
  it('one bad push can never empty a view: an empty answer is held, stale, and every answer before the confirmation time changes nothing', () => {
    const { state, clock, told, ids } = view();
    assert.deepEqual(state.apply(answer(1, [inst('a1'), inst('b2')]), 'watch', SERVER), {
      kind: 'applied',
      changed: true,
    });
    const held = state.apply(answer(2, []), 'watch', SERVER);
    assert.deepEqual(held, { kind: 'held', first: true, confirmAt: clock.t + 3000 });
    assert.deepEqual(ids(), ['a1', 'b2'], 'still served');
    assert.equal(state.answer().stale, true);
    assert.equal(state.answer().staleReason, 'empty-unconfirmed');
    assert.equal(state.answer().revision, 1);
    assert.deepEqual(told.stale, ['empty-unconfirmed']);
    assert.equal(state.awaitingEmpty, true);
    clock.t += 2999;
    assert.equal(state.apply(answer(3, []), 'watch', SERVER).kind, 'held', 'said again too soon');
    assert.deepEqual(ids(), ['a1', 'b2']);
    assert.deepEqual(told.updates, [1]);
  });

  it('the empty answer is taken once the registry says it again emptyConfirmMs later; a non-empty answer meanwhile ends the hold', () => {
    const { state, clock, told, ids } = view();
    state.apply(answer(1, [inst('a1')]), 'poll', SERVER);
    state.apply(answer(2, []), 'poll', SERVER);
    clock.t += 3000;
    assert.deepEqual(state.apply(answer(2, []), 'poll', SERVER), { kind: 'applied', changed: true });
    assert.deepEqual(ids(), []);
    assert.equal(state.answer().stale, false, 'confirmed: current');
    assert.equal(told.fresh, 1);
    assert.equal(state.awaitingEmpty, false);

    const other = view();
    other.state.apply(answer(1, [inst('a1')]), 'poll', SERVER);
    other.state.apply(answer(2, []), 'poll', SERVER);
    other.clock.t += 100;
    assert.equal(other.state.apply(answer(3, [inst('c3')]), 'poll', SERVER).kind, 'applied');
    assert.deepEqual(other.ids(), ['c3']);
    assert.equal(other.state.awaitingEmpty, false);
    assert.equal(other.state.answer().stale, false);
  });

  it('an empty answer for a view that holds nothing, and a service the registry does not know, need no confirmation', () => {
    const { state, ids } = view();
    assert.equal(state.apply(answer(0, []), 'poll', SERVER).kind, 'applied');
    assert.equal(state.applyMissing(SERVER).kind, 'applied');
    assert.deepEqual(ids(), []);
    assert.equal(state.answer().stale, false);
  });

  it('the age bound: while not live, an instance whose heartbeat may be older than maxHeartbeatAgeMs is not served, unless none is fresh (serveStale)', () => {
    const { state, clock, ids } = view({ maxHeartbeatAgeMs: 10_000 });
    // b2's heartbeat is 4 s old on arrival; an unhealthy one is vouched for by nothing but its age.
    state.apply(
      answer(1, [
        inst('a1', { healthCheck: { type: 'heartbeat', ttl: 60 } }),
        inst('b2', { lastHeartbeatAgeMs: 4000, healthCheck: { type: 'heartbeat', ttl: 60 } }),
      ]),
      'poll',
      SERVER,
    );
    assert.equal(state.answer().ageMs, 0);
    clock.t += 5000;
    assert.equal(state.answer().ageMs, 5000, 'a polled answer ages');
    // 5 s after confirmation: a1 may be 5 s old, b2 9 s: both served.
    assert.deepEqual(ids(), ['a1', 'b2']);
    clock.t += 2000;
    // The served set is kept for up to a second; then b2 may be 11 s old.
    clock.t += 1000;
    assert.deepEqual(ids(), ['a1']);
    clock.t += 5000;
    assert.deepEqual(ids(), ['a1', 'b2'], 'none fresh: all served, the answer aged');
    assert.equal(state.answer().ageMs, 13_000);

    const strict = view({ maxHeartbeatAgeMs: 10_000, serveStale: false });
    strict.state.apply(answer(1, [inst('a1')]), 'poll', SERVER);
    strict.clock.t += 11_000;
    assert.deepEqual(strict.ids(), [], 'serveStale off: nothing too old is served');
  });

  it('the age bound counts what the registry vouched for: a healthy instance is at most 3 × ttl old when confirmed', () => {
    const { state, clock, ids } = view({ maxHeartbeatAgeMs: 20_000, serveStale: false });
    // An age of 30 s in the answer, but healthy with ttl 5: the registry would have expired it after 15 s.
    state.apply(
      answer(1, [
        inst('a1', { lastHeartbeatAgeMs: 30_000 }),
        inst('u2', { healthy: false, lastHeartbeatAgeMs: 30_000 }),
      ]),
      'poll',
      SERVER,
    );
    assert.deepEqual(
      state.answer({ status: 'all' }).instances.map((i) => i.id),
      ['a1', 'u2'],
    );
    assert.deepEqual(ids(), ['a1']);
    clock.t += 5000;
    assert.deepEqual(ids(), ['a1'], 'served while the bound holds: 15 s + 5 s');
    clock.t += 1001;
    assert.deepEqual(ids(), [], 'past the bound');
  });

  it('a live watch serves everything healthy whatever the ages; the end of the stream starts the clock', () => {
    const { state, clock, ids } = view({ maxHeartbeatAgeMs: 1000 });
    state.apply(answer(1, [inst('a1'), inst('b2', { lastHeartbeatAgeMs: 5000 })]), 'watch', SERVER);
    clock.t += 60_000;
    assert.equal(state.answer().ageMs, 0);
    assert.deepEqual(ids(), ['a1', 'b2']);
    state.streamEnded();
    clock.t += 1001;
    assert.equal(state.answer().ageMs, 1001);
    assert.deepEqual(ids(), ['a1', 'b2'], 'neither fresh enough: both served');
  });

  it('unreachable and back: stale once (one event), fresh again on the next answer', () => {
    const { state, clock, told } = view();
    state.apply(answer(1, [inst('a1')]), 'poll', SERVER);
    clock.t += 100;
    state.unreachable();
    state.unreachable();
    assert.deepEqual(told.stale, ['unreachable']);
    assert.equal(state.answer().staleReason, 'unreachable');
    state.unchanged('poll', false);
    assert.equal(state.answer().stale, false);
    assert.equal(told.fresh, 1);
  });

  it('a server that answers from an index it cannot keep current: the list is taken, the view is registry-stale and keeps ageing, until a current answer', () => {
    const { state, clock, told, ids } = view();
    state.apply(answer(1, [inst('a1')]), 'poll', SERVER);
    clock.t += 2000;
    assert.equal(
      state.apply(
        answer(2, [inst('a1'), inst('b2')], { stale: true, staleReason: 'this node cannot read the shared store' }),
        'watch',
        SERVER,
      ).kind,
      'applied',
    );
    assert.deepEqual(ids(), ['a1', 'b2'], 'the newest there is');
    const a = state.answer();
    assert.equal(a.stale, true);
    assert.equal(a.staleReason, 'registry-stale');
    assert.equal(a.ageMs, 2000, 'not a confirmation: it keeps ageing');
    assert.deepEqual(told.stale, ['registry-stale']);
    assert.equal(state.cached().confirmedAt, 1_000_000, 'the disk cache keeps when the list was last confirmed');
    clock.t += 1000;
    state.unchanged('long-poll', true);
    assert.deepEqual(told.stale, ['registry-stale'], 'one event per change of reason');
    assert.equal(state.answer().ageMs, 3000);
    state.unchanged('long-poll', false);
    assert.equal(state.answer().stale, false);
    assert.equal(state.answer().ageMs, 0);
    assert.equal(told.fresh, 1);
  });

  it('from disk: served and stale with the age it had, until a registry answers', () => {
    const { state, clock, told, ids } = view();
    state.loadCached({
      namespace: 'default',
      service: 'orders',
      revision: 7,
      confirmedAt: clock.t - 4000,
      receivedAt: clock.t - 4000,
      instances: [inst('a1')],
    });
    assert.deepEqual(ids(), ['a1']);
    assert.equal(state.answer().source, 'disk');
    assert.equal(state.answer().ageMs, 4000);
    assert.deepEqual(told.stale, ['disk-cache']);
    state.unreachable();
    assert.deepEqual(told.stale, ['disk-cache'], 'still from disk: not a new reason');
    assert.equal(state.revisionFor(SERVER), undefined, 'a revision from disk is sent to no server');
    state.apply(answer(8, [inst('a1')]), 'poll', SERVER);
    assert.equal(state.revisionFor(SERVER), 8);
    assert.equal(state.revisionFor({ name: 'server b' }), undefined, 'revisions of independent servers do not compare');
    assert.equal(told.fresh, 1);
  });
});
