import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MusterError } from '@muster/api';
import { AppliedRevision } from './applied-revision.js';

const code = (c: string, field?: string) => (err: unknown) =>
  err instanceof MusterError && err.code === c && (field === undefined || err.field === field);

describe('AppliedRevision: read-your-writes waits until this node has applied a revision', () => {
  it('on a single node, a revision it has not reached was never committed here: FAILED_PRECONDITION at once', async () => {
    const applied = new AppliedRevision();
    applied.advance(12);
    await applied.reach(12, 1000);
    await applied.reach(3, 1000);
    await assert.rejects(applied.reach(13, 1000), code('FAILED_PRECONDITION', 'minRevision'));
  });

  it('in a cluster, reads the change log at once and answers when the revision is applied', async () => {
    let reads = 0;
    const applied: AppliedRevision = new AppliedRevision(async () => {
      reads++;
      applied.advance(20);
      return 20;
    });
    applied.advance(10);
    await applied.reach(15, 1000);
    assert.equal(reads, 1);
  });

  it('waits for a change still being committed below the revision, at most waitMs: then UNAVAILABLE', async () => {
    const applied = new AppliedRevision(async () => 30); // the log holds 30; 25 is not in yet
    applied.advance(24);
    const waiting = applied.reach(30, 1000);
    setTimeout(() => applied.advance(30), 50);
    await waiting;
    const t0 = Date.now();
    await assert.rejects(
      applied.reach(31, 100),
      code('FAILED_PRECONDITION'),
      'the log does not hold 31: never committed',
    );
    assert.ok(Date.now() - t0 < 100);
    const stuck = new AppliedRevision(async () => 50);
    stuck.advance(40);
    await assert.rejects(stuck.reach(45, 100), code('UNAVAILABLE'));
  });

  it('a change log that cannot be read: UNAVAILABLE at once, another node may have the revision', async () => {
    const applied = new AppliedRevision(async () => {
      throw new Error('database out');
    });
    const t0 = Date.now();
    await assert.rejects(applied.reach(5, 5000), code('UNAVAILABLE'));
    assert.ok(Date.now() - t0 < 1000);
  });
});
