import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RepeatedWarning } from './repeated-warning.js';

describe('RepeatedWarning: a failure that repeats is a few lines, not one per occurrence', () => {
  it('logs the first, then at most one line per interval with how many came meanwhile, and once when it works again', async () => {
    const lines: Array<[string, object, string]> = [];
    const log = {
      info: (o: object, m: string) => lines.push(['info', o, m]),
      warn: (o: object, m: string) => lines.push(['warn', o, m]),
      error: (o: object, m: string) => lines.push(['error', o, m]),
    };
    const w = new RepeatedWarning(log, 'publish failed', 'publishing works again', { everyMs: 50 });
    w.worked();
    assert.equal(lines.length, 0, 'nothing to say while it works');
    for (let i = 0; i < 100; i++) w.failed({ i });
    assert.deepEqual(lines, [['warn', { i: 0 }, 'publish failed']]);
    await new Promise((r) => setTimeout(r, 60));
    w.failed({ i: 100 });
    assert.equal(lines.length, 2);
    assert.deepEqual([lines[1]![0], (lines[1]![1] as { repeated: number }).repeated], ['warn', 100]);
    w.worked();
    w.worked();
    assert.equal(lines.length, 3);
    assert.equal(lines[2]![2], 'publishing works again');
    assert.equal((lines[2]![1] as { failures: number }).failures, 101);
  });
});
