import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { RegistryEvent } from '@muster/api';
import pino from 'pino';
import { RegistryIndex } from '../index/registry-index.js';
import { instance } from '../store/store-contract.js';
import { MemoryStore } from '../store/memory/memory-store.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import type { ChangeLog, ChangeLogFilter, SharedStore } from '../store/store.js';
import { ChangeFollower } from './change-follower.js';

const log = pino({ level: 'silent' });
const t0 = 1_700_000_000_000;

/** What a node's naming service does for a registration: instance, event, service revision. */
async function register(store: SharedStore, id: string, over: Parameters<typeof instance>[1] = {}): Promise<number> {
  return store.transaction(async (tx) => {
    if (!(await tx.getNamespace('ns')))
      await tx.putNamespace({ name: 'ns', comment: '', createdAt: t0, updatedAt: t0 });
    const svc = (await tx.getService('ns', 'svc')) ?? {
      namespace: 'ns',
      name: 'svc',
      metadata: {},
      comment: '',
      revision: 0,
      createdAt: t0,
      updatedAt: t0,
      verification: null,
    };
    const rev = await tx.appendEvent({
      type: 'instance.registered',
      namespace: 'ns',
      service: 'svc',
      instanceId: id,
      at: t0,
      detail: {},
    });
    await tx.putService({ ...svc, revision: rev });
    await tx.putInstance(instance(id, { revision: rev, ...over }));
    return rev;
  });
}

async function deregister(store: SharedStore, id: string): Promise<void> {
  await store.transaction(async (tx) => {
    await tx.deleteInstance(id);
    const svc = (await tx.getService('ns', 'svc'))!;
    const rev = await tx.appendEvent({
      type: 'instance.deregistered',
      namespace: 'ns',
      service: 'svc',
      instanceId: id,
      at: t0,
      detail: {},
    });
    await tx.putService({ ...svc, revision: rev });
  });
}

async function follower(
  store: SharedStore,
  opts: Partial<ConstructorParameters<typeof ChangeFollower>[2]> = {},
  now?: () => number,
) {
  const index = new RegistryIndex(1000);
  const snap = await store.load();
  index.load(snap);
  const f = new ChangeFollower(
    store,
    index,
    { pollIntervalMs: 60_000, gapTimeoutMs: 1000, pageSize: 2, ...opts },
    log,
    now,
  );
  f.start(snap.lastEventId);
  return { index, f };
}

describe('ChangeFollower: an index kept current with what other nodes wrote', () => {
  it('applies registrations and deregistrations another node committed to the same database', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'muster-follow-')), 'muster.db');
    const nodeA = new SqliteStore({ file, synchronous: 'normal' });
    const nodeB = new SqliteStore({ file, synchronous: 'normal' });
    await nodeA.open();
    await nodeB.open();
    await register(nodeA, 'before');
    const { index, f } = await follower(nodeB);
    const woke: number[] = [];
    index.onServiceChanged((_ns, _svc, rev) => rev !== undefined && woke.push(rev));
    for (const id of ['a', 'b', 'c', 'd', 'e']) await register(nodeA, id);
    await deregister(nodeA, 'before');
    await f.catchUp(); // pages of 2: reads until caught up
    assert.deepEqual([...index.instances.keys()].sort(), ['a', 'b', 'c', 'd', 'e']);
    assert.equal(index.service('ns', 'svc')!.rec.revision, 7);
    assert.equal(index.service('ns', 'svc')!.instances.size, 5);
    assert.ok(woke.includes(7), 'watchers of the service were told');
    await f.stop();
    await nodeA.close();
    await nodeB.close();
  });

  it('waits for a change number that becomes visible late, and gives up on one that never does', async () => {
    class LateStore extends MemoryStore {
      hidden = new Set<number>();
      override async listEvents(filter: ChangeLogFilter): Promise<RegistryEvent[]> {
        return (await super.listEvents(filter)).filter((e) => !this.hidden.has(e.id));
      }
    }
    const store = new LateStore();
    let now = t0;
    const { index, f } = await follower(store, { pageSize: 100 }, () => now);
    await register(store, 'x'); // id 1
    await register(store, 'y'); // id 2
    await register(store, 'z'); // id 3
    store.hidden.add(2); // committed after 3 became visible
    await f.catchUp();
    assert.deepEqual([...index.instances.keys()].sort(), ['x', 'z']);
    store.hidden.delete(2);
    await f.catchUp();
    assert.deepEqual([...index.instances.keys()].sort(), ['x', 'y', 'z'], 'the late one is applied when it shows');

    await register(store, 'w'); // id 4
    await register(store, 'v'); // id 5
    store.hidden.add(4); // rolled back: never shows
    await f.catchUp();
    now += 1000;
    await f.catchUp();
    await register(store, 'u'); // id 6
    await f.catchUp();
    assert.ok(index.instances.has('u') && index.instances.has('v') && !index.instances.has('w'));
    await f.stop();
  });

  // Before, every page after a gap was read from the gap again: with more than a page after it, forever.
  it(
    'applies the pages after a gap it waits for at once, and reads them again only from the gap',
    { timeout: 5000 },
    async () => {
      class LateStore extends MemoryStore {
        hidden = new Set<number>();
        reads: number[] = [];
        override async listEvents(filter: ChangeLogFilter): Promise<RegistryEvent[]> {
          this.reads.push(filter.afterId ?? 0);
          await new Promise((r) => setImmediate(r)); // a round trip: timers (the test's timeout) still run
          // As in a database, rows not yet committed take no place in a page.
          return (await super.listEvents({ ...filter, limit: 1_000_000 }))
            .filter((e) => !this.hidden.has(e.id))
            .slice(0, filter.limit);
        }
      }
      const store = new LateStore();
      const { index, f } = await follower(store, { pageSize: 2 }, () => t0); // the clock stands still: the gap never expires
      await register(store, 'a'); // id 1
      await register(store, 'late'); // id 2
      store.hidden.add(2); // not committed yet
      for (const id of ['b', 'c', 'd', 'e', 'f']) await register(store, id); // ids 3..7: pages beyond the gap
      await f.catchUp();
      assert.deepEqual([...index.instances.keys()].sort(), ['a', 'b', 'c', 'd', 'e', 'f']);
      store.reads.length = 0;
      await f.catchUp();
      assert.deepEqual(store.reads, [1, 4, 6], 'from the gap, page by page, once');
      store.hidden.delete(2);
      await f.catchUp();
      assert.ok(index.instances.has('late'), 'the late one is applied when it shows');
      await f.stop();
    },
  );

  it('does not undo a newer write of its own node with an older row', async () => {
    const store = new MemoryStore();
    const { index, f } = await follower(store);
    await register(store, 'k', { weight: 1 });
    // This node already holds a newer version (revision 99) than the row the follower reads.
    index.apply([
      { kind: 'namespace', name: 'ns', rec: { name: 'ns', comment: '', createdAt: t0, updatedAt: t0 } },
      {
        kind: 'service',
        namespace: 'ns',
        name: 'svc',
        rec: {
          namespace: 'ns',
          name: 'svc',
          metadata: {},
          comment: '',
          revision: 99,
          createdAt: t0,
          updatedAt: t0,
          verification: null,
        },
      },
      { kind: 'instance', id: 'k', rec: instance('k', { weight: 7, revision: 99 }) },
    ]);
    await f.catchUp();
    assert.equal(index.instances.get('k')!.weight, 7);
    assert.equal(index.service('ns', 'svc')!.rec.revision, 99);
    await f.stop();
  });

  it(
    'leaves its own change numbers out of the change log read, also past a gap it waits for',
    { timeout: 5000 },
    async () => {
      class LateStore extends MemoryStore {
        hidden = new Set<number>();
        listed: number[] = [];
        override async listEvents(filter: ChangeLogFilter): Promise<RegistryEvent[]> {
          const events = (await super.listEvents({ ...filter, limit: 1_000_000 }))
            .filter((e) => !this.hidden.has(e.id))
            .slice(0, filter.limit);
          this.listed.push(...events.map((e) => e.id));
          return events;
        }
      }
      const store = new LateStore();
      const { index, f } = await follower(store, { pageSize: 2 }, () => t0);
      await register(store, 'a'); // 1
      await register(store, 'late'); // 2, not committed yet
      store.hidden.add(2);
      const own = [await register(store, 'm1'), await register(store, 'm2'), await register(store, 'm3')]; // 3..5
      f.committedHere(own);
      await register(store, 'b'); // 6
      await f.catchUp();
      assert.deepEqual(
        [...index.instances.keys()].sort(),
        ['a', 'b'],
        "the others' changes, none of its own read back",
      );
      store.hidden.delete(2);
      await f.catchUp();
      assert.ok(index.instances.has('late'), 'the late one is applied when it shows');
      assert.ok(!own.some((id) => store.listed.includes(id)), `read: ${store.listed.join(', ')}`);
      await register(store, 'c'); // 7: reads go on after all of them
      await f.catchUp();
      assert.ok(index.instances.has('c'));
      assert.ok(!index.instances.has('m1'));
      await f.stop();
    },
  );

  it('passes over the changes its own node committed instead of reading their rows back, and still reads the others', async () => {
    class CountingStore extends MemoryStore {
      read: string[] = [];
      listed: number[] = [];
      override async readRecords(keys: Parameters<ChangeLog['readRecords']>[0]) {
        this.read.push(...keys.instances);
        return super.readRecords(keys);
      }
      override async listEvents(filter: ChangeLogFilter) {
        const events = await super.listEvents(filter);
        this.listed.push(...events.map((e) => e.id));
        return events;
      }
    }
    const store = new CountingStore();
    const { index, f } = await follower(store, { pageSize: 100 });
    const own = await register(store, 'mine');
    f.committedHere([own]); // what this node's batcher reports after applying the commit itself
    await register(store, 'theirs');
    await f.catchUp();
    assert.deepEqual(store.read, ['theirs']);
    assert.ok(index.instances.has('theirs'));
    assert.ok(!store.listed.includes(own), 'its own change is not even read from the change log');
    // Numbers at or below what was read already are not remembered: nothing is left to pass over.
    f.committedHere([own]);
    await register(store, 'later');
    await f.catchUp();
    assert.deepEqual(store.read, ['theirs', 'later']);
    await f.stop();
  });
});
