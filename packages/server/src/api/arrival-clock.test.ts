import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import { ArrivalClock } from './arrival-clock.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Blocks the event loop, as a long GC pause or SIGSTOP does. */
const stall = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};

describe('ArrivalClock: when a request arrived, allowing for stalls of the process', () => {
  it("dates a request read during or just after a stall back to the stall's start, and a later one not", async () => {
    const clock = new ArrivalClock();
    clock.start();
    try {
      await sleep(120);
      assert.ok(performance.now() - clock.receivedAt() < 5, 'no stall: now');
      stall(400);
      assert.ok(performance.now() - clock.receivedAt() < 5, 'a busy loop is no stall: now');
      await sleep(60);
      stall(1300);
      const during = clock.receivedAt();
      assert.ok(performance.now() - during >= 1290, 'read while the loop is still catching up: dated back');
      await sleep(60); // the tick notices the stall
      assert.ok(performance.now() - clock.receivedAt() >= 1290, 'read just after it: dated back too');
      await sleep(1100); // longer than the window after a stall
      assert.ok(performance.now() - clock.receivedAt() < 5, 'well after it: now');
    } finally {
      clock.stop();
    }
  });
});
