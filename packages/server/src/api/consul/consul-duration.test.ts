import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MusterError } from '@muster/api';
import { parseGoDuration } from './consul-duration.js';

describe('Go durations as Consul clients write them', () => {
  for (const [text, ms] of [
    ['10s', 10_000],
    ['1m30s', 90_000],
    ['500ms', 500],
    ['1.5h', 5_400_000],
    ['2h45m', 9_900_000],
    ['0', 0],
    ['1500us', 2],
  ] as const)
    it(`${text} is ${ms} ms`, () => assert.equal(parseGoDuration('wait', text), ms));

  for (const bad of ['', '10', 's', '10 s', '-5s', '1y', '1m30', '0x10s', 10])
    it(`${JSON.stringify(bad)} is a 400 naming the parameter`, () =>
      assert.throws(
        () => parseGoDuration('wait', bad),
        (err: unknown) => err instanceof MusterError && err.code === 'INVALID_ARGUMENT' && err.message.includes('wait'),
      ));
});
