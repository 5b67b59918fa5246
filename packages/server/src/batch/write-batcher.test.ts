import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import pino from 'pino';
import { MusterError } from '../errors.js';
import { MemoryStore } from '../store/memory/memory-store.js';
import { isConflict, markConflict, type Store, type TxOptions } from '../store/store.js';
import type { Change } from './changes.js';
import { RecordingTx } from './recording-tx.js';
import type { RequestContext } from './request-context.js';
import { WriteBatcher } from './write-batcher.js';

const now = 1_700_000_000_000;

/**
 * A real MemoryStore that counts its transactions and can be told to fail the next commit, or to
 * fail at commit every transaction that writes a namespace named in `collides` (as MySQL does on
 * a duplicate key of a held-back write: marked as a conflict).
 */
class CountingStore extends MemoryStore {
  transactions = 0;
  failNext = false;
  collides = new Set<string>();
  options: Array<TxOptions | undefined> = [];
  override async transaction<T>(fn: Parameters<Store['transaction']>[0], opts?: TxOptions): Promise<T> {
    this.transactions++;
    this.options.push(opts);
    const deadline = opts?.deadline ?? Date.now() + 5000;
    return super.transaction(async (tx) => {
      const written: Change[] = [];
      const r = await fn(new RecordingTx(tx, written));
      if (this.failNext) {
        this.failNext = false;
        throw new Error('disk on fire');
      }
      if (written.some((c) => c.kind === 'namespace' && c.rec !== undefined && this.collides.has(c.name)))
        throw markConflict(new MusterError('UNAVAILABLE', 'another node wrote it; retry'), deadline);
      return r as T;
    });
  }
}

/** A MemoryStore whose first commit is acknowledged only when the test says so (a slow disk). */
class SlowFirstCommitStore extends MemoryStore {
  transactions = 0;
  private release: (() => void) | undefined;
  override async transaction<T>(fn: Parameters<Store['transaction']>[0], opts?: TxOptions): Promise<T> {
    const n = ++this.transactions;
    const r = await super.transaction(fn);
    opts?.onCommitting?.();
    if (n === 1) await new Promise<void>((resolve) => (this.release = resolve));
    return r as T;
  }
  acknowledgeFirst(): void {
    this.release!();
  }
}

const turns = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};
const names = (c: Change[]) => c.flatMap((x) => (x.kind === 'namespace' ? [x.name] : []));

function setup(maxSize = 100, maxWaitMs = 5) {
  const store = new CountingStore();
  const committed: Change[][] = [];
  const sizes: number[] = [];
  const batcher = new WriteBatcher(
    store,
    { maxSize, maxWaitMs },
    {
      onCommitted: (c) => committed.push(c),
      onBatch: (n) => sizes.push(n),
    },
    pino({ level: 'silent' }),
  );
  // `indexed`: as if the index vouched for what the write reads (here: an instance it does not hold).
  const putNs = (name: string, indexed = false) =>
    batcher.submit(
      async (tx) => {
        await tx.putNamespace({ name, comment: '', createdAt: now, updatedAt: now });
        return name;
      },
      {
        namespaces: [name],
        ...(indexed ? { indexed: { namespaces: [], services: [], absentInstances: [`i-${name}`] } } : {}),
      },
    );
  return { store, batcher, committed, sizes, putNs };
}

describe('write batcher', () => {
  it('groups concurrent writes into one transaction and answers each caller', async () => {
    const { store, putNs, sizes } = setup();
    const names = await Promise.all(Array.from({ length: 50 }, (_, i) => putNs(`ns${i}`)));
    assert.equal(names.length, 50);
    assert.equal(store.transactions, 1);
    assert.deepEqual(sizes, [50]);
    assert.equal((await store.load()).namespaces.length, 50);
  });

  it('splits at maxSize', async () => {
    const { store, putNs, sizes } = setup(10);
    await Promise.all(Array.from({ length: 35 }, (_, i) => putNs(`ns${i}`)));
    assert.deepEqual(sizes, [10, 10, 10, 5]);
    assert.equal(store.transactions, 4);
  });

  it('fails one bad write alone; its neighbours commit and its changes never reach the index', async () => {
    const { store, batcher, putNs, committed } = setup();
    const bad = batcher.submit(async (tx) => {
      await tx.putNamespace({ name: 'half-written', comment: '', createdAt: now, updatedAt: now });
      throw new MusterError('INVALID_ARGUMENT', 'no', { field: 'x' });
    });
    const results = await Promise.allSettled([putNs('a'), bad, putNs('b')]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.equal((results[1] as PromiseRejectedResult).reason.code, 'INVALID_ARGUMENT');
    assert.equal(store.transactions, 1);
    assert.deepEqual((await store.load()).namespaces.map((n) => n.name).sort(), ['a', 'b']);
    assert.deepEqual(
      committed.flat().map((c) => (c.kind === 'namespace' ? c.name : '?')),
      ['a', 'b'],
    );
  });

  it('answers callers only after the commit, and the index has the change by then', async () => {
    const { batcher, committed } = setup();
    let seenAtAnswer = -1;
    await batcher
      .submit(async (tx) => tx.putNamespace({ name: 'x', comment: '', createdAt: now, updatedAt: now }))
      .then(() => {
        seenAtAnswer = committed.length;
      });
    assert.equal(seenAtAnswer, 1);
  });

  it('rejects the whole batch as UNAVAILABLE when the commit fails, and applies nothing', async () => {
    const { store, putNs, committed } = setup();
    store.failNext = true;
    const results = await Promise.allSettled([putNs('a'), putNs('b')]);
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.equal((r as PromiseRejectedResult).reason.code, 'UNAVAILABLE');
    }
    assert.equal(committed.length, 0);
    assert.equal((await store.load()).namespaces.length, 0);
    assert.equal(await putNs('c'), 'c', 'the next batch works again');
  });

  it("hands the store the hints of a batch's writes together", async () => {
    const { store, putNs } = setup();
    await Promise.all([putNs('a'), putNs('b')]);
    assert.deepEqual(
      store.options.map((o) => o?.hints),
      [{ namespaces: ['a', 'b'], services: [], instances: [] }],
    );
  });

  it('re-runs a batch that collided at commit one write per transaction: only the colliding write fails', async () => {
    const { store, putNs, committed, sizes } = setup();
    store.collides.add('b');
    const results = await Promise.allSettled([putNs('a', true), putNs('b', true), putNs('c')]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    const err = (results[1] as PromiseRejectedResult).reason;
    assert.ok(err instanceof MusterError && err.code === 'UNAVAILABLE' && isConflict(err), String(err));
    assert.equal(
      store.transactions,
      6,
      'the batch, then each of its three writes alone, and the colliding one twice more',
    );
    assert.deepEqual(sizes, [1, 1]);
    // Each alone gets its own hints, and the failed transaction's deadline: the write timeout still bounds the caller.
    const [first, ...alone] = store.options;
    assert.deepEqual(
      alone.map((o) => o?.hints?.namespaces),
      [['a'], ['b'], ['b'], ['b'], ['c']],
    );
    // What the index vouched for went with the first try only: a re-run reads, the index may not know yet.
    assert.deepEqual(first?.hints?.indexed?.absentInstances, ['i-a', 'i-b']);
    assert.deepEqual(
      alone.map((o) => o?.hints?.indexed),
      [undefined, undefined, undefined, undefined, undefined],
    );
    const deadline = alone[0]?.deadline;
    assert.ok(
      typeof deadline === 'number' && alone.every((o) => o?.deadline === deadline) && first?.deadline === undefined,
    );
    assert.deepEqual((await store.load()).namespaces.map((n) => n.name).sort(), ['a', 'c']);
    assert.deepEqual(
      committed.map((c) => c.map((x) => (x.kind === 'namespace' ? x.name : '?'))),
      [['a'], ['c']],
    );
  });

  it('runs a lone write that collided twice more, reading afresh, before its caller gets the collision', async () => {
    const { store, batcher, putNs } = setup();
    store.collides.add('b');
    await assert.rejects(putNs('b', true), (err: unknown) => isConflict(err));
    assert.equal(store.transactions, 3);
    assert.deepEqual(
      store.options.map((o) => o?.hints?.indexed?.absentInstances),
      [['i-b'], undefined, undefined],
      'what the index vouched for went with the first try only',
    );
    // Another node's write got there first; the next run finds what it committed, and succeeds.
    store.collides.clear();
    let runs = 0;
    const collidingOnce = new MusterError('UNAVAILABLE', 'another node created it; retry');
    assert.equal(
      await batcher.submit(async () => {
        if (++runs === 1) throw markConflict(collidingOnce, Date.now() + 5000);
        return 'done';
      }),
      'done',
    );
    assert.equal(runs, 2, 'a write whose own step collided runs again, alone');
  });

  it('applies nothing for a request whose client has gone or whose deadline passed (DEADLINE_EXCEEDED), and tells the others the revision they committed', async () => {
    const { store, batcher } = setup();
    const ctx = (over: Partial<RequestContext> = {}): RequestContext => ({
      receivedAt: performance.now(),
      deadline: performance.now() + 5000,
      gone: () => false,
      ...over,
    });
    const write = (name: string, c: RequestContext) =>
      batcher.submit(
        async (tx) => {
          await tx.putNamespace({ name, comment: '', createdAt: now, updatedAt: now });
          await tx.appendEvent({ type: 'namespace.created', namespace: name, at: now, detail: {} });
        },
        { namespaces: [name] },
        c,
      );
    const ok = ctx();
    const left = ctx({ gone: () => true });
    const late = ctx({ receivedAt: performance.now() - 6000, deadline: performance.now() - 1000 });
    const results = await Promise.allSettled([write('ok', ok), write('left', left), write('late', late)]);
    assert.deepEqual(
      results.map((r) => (r.status === 'rejected' ? (r.reason as MusterError).code : 'ok')),
      ['ok', 'DEADLINE_EXCEEDED', 'DEADLINE_EXCEEDED'],
    );
    assert.deepEqual(
      (await store.load()).namespaces.map((n) => n.name),
      ['ok'],
    );
    assert.ok(ok.revision! > 0 && left.revision === undefined && late.revision === undefined);
    const unchanged = ctx();
    await batcher.submit(async () => undefined, undefined, unchanged);
    assert.equal(unchanged.revision, 0, 'a write that changed nothing took no change number');
  });

  it('does not re-run a batch that failed for another reason', async () => {
    const { store, putNs } = setup();
    store.failNext = true;
    await Promise.allSettled([putNs('a'), putNs('b')]);
    assert.equal(store.transactions, 1);
  });

  it('with inFlight 2, builds the next batch while one commits once as many writes wait, and applies changes in start order', async () => {
    const store = new SlowFirstCommitStore();
    const committed: string[][] = [];
    const batcher = new WriteBatcher(
      store,
      { maxSize: 100, maxWaitMs: 0, inFlight: 2 },
      { onCommitted: (c) => committed.push(names(c)) },
      pino({ level: 'silent' }),
    );
    const answered: string[] = [];
    const putNs = (name: string) =>
      batcher
        .submit(async (tx) => {
          await tx.putNamespace({ name, comment: '', createdAt: now, updatedAt: now });
          return name;
        })
        .then((n) => void answered.push(n));
    const first = [putNs('a'), putNs('b')];
    await turns();
    assert.equal(store.transactions, 1, 'the first batch is committing');
    const c = putNs('c');
    await turns();
    assert.equal(
      store.transactions,
      1,
      'one write waiting, fewer than the batch committing took: it waits for that commit',
    );
    const d = putNs('d');
    await turns();
    assert.equal(store.transactions, 2, 'two waiting: the next batch is built and committed meanwhile');
    assert.deepEqual(committed, [], 'but its changes wait for the batch started before it');
    assert.deepEqual(answered, []);
    store.acknowledgeFirst();
    await Promise.all([...first, c, d]);
    assert.deepEqual(committed, [
      ['a', 'b'],
      ['c', 'd'],
    ]);
    assert.deepEqual(answered, ['a', 'b', 'c', 'd']);
  });

  it('with the default inFlight 1, starts no transaction while one commits', async () => {
    const store = new SlowFirstCommitStore();
    const batcher = new WriteBatcher(
      store,
      { maxSize: 100, maxWaitMs: 0 },
      { onCommitted: () => {} },
      pino({ level: 'silent' }),
    );
    const put = (name: string) =>
      batcher.submit((tx) => tx.putNamespace({ name, comment: '', createdAt: now, updatedAt: now }));
    const first = put('a');
    await turns();
    const later = [put('b'), put('c'), put('d')];
    await turns();
    assert.equal(store.transactions, 1);
    store.acknowledgeFirst();
    await Promise.all([first, ...later]);
    assert.equal(store.transactions, 2, 'the writes that waited share one transaction');
  });

  it('close drains queued writes and then refuses new ones', async () => {
    const { batcher, putNs, store } = setup(100, 50);
    const pending = putNs('late');
    await batcher.close();
    assert.equal(await pending, 'late');
    assert.equal((await store.load()).namespaces.length, 1);
    await assert.rejects(putNs('after'), (e: MusterError) => e.code === 'UNAVAILABLE');
  });
});
