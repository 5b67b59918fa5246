import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MusterError } from '@muster/api';
import { isFailedCall } from './call-outcome.js';
import { OutlierDetector, resolveOutlierOptions, type OutlierOptions } from './outlier-detector.js';

function detector(opts: OutlierOptions = {}) {
  const clock = { t: 1_000_000 };
  const d = new OutlierDetector(resolveOutlierOptions(opts), () => clock.t);
  const fail = (id: string, times = 1, served = 10) => {
    let last;
    for (let i = 0; i < times; i++) last = d.report(id, false, served);
    return last;
  };
  return { d, clock, fail };
}

describe('outlier detection (injected clock)', () => {
  it('ejects after consecutiveFailures failures in a row; a success in between starts the count again', () => {
    const { d, fail } = detector();
    assert.equal(fail('a', 2), undefined);
    d.report('a', true, 10);
    assert.equal(fail('a', 2), undefined);
    assert.ok(!d.isEjected('a'));
    assert.deepEqual(fail('a'), { id: 'a', ejectedForMs: 2000, consecutiveFailures: 3 });
    assert.ok(d.isEjected('a'));
    assert.equal(d.ejected, 1);
  });

  it('tries the instance again after the backoff; one more failure ejects it for twice as long, up to maxEjectionMs; a success clears it', () => {
    const { d, clock, fail } = detector({ baseEjectionMs: 1000, maxEjectionMs: 5000 });
    let ejectedFor = fail('a', 3)!.ejectedForMs;
    assert.equal(ejectedFor, 1000);
    const lengths: number[] = [];
    for (let round = 0; round < 5; round++) {
      const version = d.version;
      clock.t += ejectedFor - 1;
      d.expire();
      assert.ok(d.isEjected('a'), `still out 1 ms before the end of ejection ${round + 1}`);
      clock.t += 1;
      d.expire();
      assert.ok(!d.isEjected('a'), `back in after ejection ${round + 1}`);
      assert.ok(d.version > version, 'the change moves the version');
      ejectedFor = fail('a')!.ejectedForMs;
      lengths.push(ejectedFor);
    }
    assert.deepEqual(lengths, [2000, 4000, 5000, 5000, 5000]);
    clock.t += 5000;
    d.expire();
    d.report('a', true, 10);
    assert.equal(fail('a'), undefined, 'cleared: one failure is not enough any more');
    assert.equal(fail('a', 2)!.ejectedForMs, 1000, 'and the backoff starts over');
  });

  it('a success of a call that started before the ejection does not end it early', () => {
    const { d, fail } = detector();
    fail('a', 3);
    d.report('a', true, 10);
    assert.ok(d.isEjected('a'));
  });

  it('never ejects more than maxEjectedShare of the served instances, nor the only one', () => {
    const { d, clock, fail } = detector({ maxEjectedShare: 0.5 });
    assert.equal(fail('only', 10, 1), undefined, 'one of one: never');
    for (const id of ['a', 'b', 'c', 'd']) fail(id, 3, 4);
    assert.deepEqual(
      ['a', 'b', 'c', 'd'].map((id) => d.isEjected(id)),
      [true, true, false, false],
      'two of four',
    );
    assert.equal(d.ejected, 2);
    clock.t += 2000;
    d.expire();
    assert.deepEqual(fail('c', 1, 4)?.id, 'c', 'room again: the next failure of one that kept failing ejects it');
    const none = detector({ maxEjectedShare: 0 });
    assert.equal(none.fail('a', 50, 100), undefined, 'share 0: ejection off');
  });

  it('forgets instances the service no longer has', () => {
    const { d, fail } = detector();
    fail('a', 3);
    fail('b', 2);
    const version = d.version;
    d.retain(new Set(['b']));
    assert.equal(d.ejected, 0);
    assert.ok(d.version > version);
    assert.ok(fail('b'), 'b kept its count');
  });

  it('refuses settings no detector could use', () => {
    for (const bad of [
      { consecutiveFailures: 0 },
      { baseEjectionMs: -1 },
      { maxEjectionMs: Number.NaN },
      { maxEjectedShare: 1.5 },
    ]) {
      assert.throws(
        () => resolveOutlierOptions(bad),
        (e: unknown) =>
          e instanceof MusterError && e.code === 'INVALID_ARGUMENT' && e.field!.startsWith('outlierDetection.'),
      );
    }
  });
});

describe('what a call counts as', () => {
  it("thrown errors and 5xx answers are failures; a gRPC status of the caller's own doing is not", () => {
    const grpcError = (code: number) => Object.assign(new Error('x'), { code, details: 'x', metadata: {} });
    assert.ok(isFailedCall({ error: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) }));
    assert.ok(isFailedCall({ error: new TypeError('fetch failed') }));
    assert.ok(isFailedCall({ error: grpcError(14) }), 'UNAVAILABLE');
    assert.ok(isFailedCall({ error: grpcError(4) }), 'DEADLINE_EXCEEDED');
    assert.ok(!isFailedCall({ error: grpcError(5) }), 'NOT_FOUND');
    assert.ok(!isFailedCall({ error: grpcError(3) }), 'INVALID_ARGUMENT');
    assert.ok(isFailedCall({ result: { status: 503 } }));
    assert.ok(isFailedCall({ result: { statusCode: 500 } }));
    assert.ok(!isFailedCall({ result: { status: 404 } }));
    assert.ok(!isFailedCall({ result: 'plain value' }));
    assert.ok(!isFailedCall({ result: undefined }));
  });
});
