import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { InstanceRecord, ServiceRecord } from '../model/records.js';
import { hasChangeLog, type Store, type StoreTx, type TxOptions } from './store.js';

/**
 * The behaviour every Store must have. Each implementation's test file calls this with a
 * factory; `reopen` (when given) closes the store and opens a new one on the same data, so
 * durability is part of the contract for the stores that promise it.
 */
export interface StoreFactory {
  create(): Promise<Store>;
  reopen?(store: Store): Promise<Store>;
}

const now = 1_700_000_000_000;

export function instance(id: string, over: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    id,
    namespace: 'ns',
    service: 'svc',
    host: '10.0.0.1',
    port: 8080,
    protocol: 'http',
    version: '1.0',
    weight: 100,
    priority: 0,
    metadata: { env: 'prod', zone: 'a' },
    location: { region: 'eu', zone: 'eu-1' },
    ttl: 5,
    healthy: true,
    isolate: false,
    lastHeartbeat: now,
    healthChangedAt: now,
    revision: 1,
    createdAt: now,
    updatedAt: now,
    tokenHash: 'ab'.repeat(32),
    verification: { state: 'verified', reason: '', at: 0 },
    ...over,
  };
}

const service = (name = 'svc', over: Partial<ServiceRecord> = {}): ServiceRecord => ({
  namespace: 'ns',
  name,
  metadata: { owner: 'team-a' },
  comment: 'c',
  revision: 1,
  createdAt: now,
  updatedAt: now,
  verification: null,
  ...over,
});

/**
 * store.transaction answering the change numbers the writes took as the real ones: a store may
 * hand out provisional ones and number them at commit (TxOptions.onNumbered).
 */
export async function numbered(
  store: Store,
  fn: (tx: StoreTx) => Promise<number[]>,
  opts: TxOptions = {},
): Promise<number[]> {
  let real = (n: number) => n;
  const ids = await store.transaction(fn, { ...opts, onNumbered: (r) => (real = r) });
  return ids.map((n) => real(n));
}

async function seed(store: Store): Promise<void> {
  await store.transaction(async (tx) => {
    await tx.putNamespace({ name: 'ns', comment: '', createdAt: now, updatedAt: now });
    await tx.putService(service());
  });
}

export function storeContract(name: string, factory: StoreFactory): void {
  describe(`Store contract: ${name}`, () => {
    it('round-trips namespaces, services and instances with metadata and location', async () => {
      const store = await factory.create();
      await seed(store);
      await store.transaction(async (tx) => {
        await tx.putInstance(instance('i1'));
        await tx.putInstance(instance('i2', { metadata: {}, location: {}, port: 8081, isolate: true, healthy: false }));
      });
      await store.transaction(async (tx) => {
        assert.deepEqual(await tx.getInstance('i1'), instance('i1'));
        assert.deepEqual(
          await tx.getInstance('i2'),
          instance('i2', { metadata: {}, location: {}, port: 8081, isolate: true, healthy: false }),
        );
        assert.deepEqual(await tx.getService('ns', 'svc'), service());
        assert.equal((await tx.getNamespace('ns'))?.name, 'ns');
        assert.equal(await tx.getInstance('nope'), undefined);
        assert.deepEqual((await tx.listInstanceIds('ns', 'svc')).sort(), ['i1', 'i2']);
        assert.equal(await tx.countServices('ns'), 1);
      });
      const snap = await store.load();
      assert.equal(snap.namespaces.length, 1);
      assert.equal(snap.services.length, 1);
      assert.deepEqual(
        snap.instances.sort((a, b) => a.id.localeCompare(b.id)),
        [instance('i1'), instance('i2', { metadata: {}, location: {}, port: 8081, isolate: true, healthy: false })],
      );
      await store.close();
    });

    it("keeps a service's verification setting and an instance's verification state, through updates and reads of every kind", async () => {
      const store = await factory.create();
      await seed(store);
      const setting = { secret: 's3cret-s3cret-s3cret', path: '/verify/me' };
      const failed = { state: 'failed' as const, reason: 'wrong answer: not the proof', at: now + 5 };
      await store.transaction(async (tx) => {
        const svc = (await tx.getService('ns', 'svc'))!;
        await tx.putService({ ...svc, verification: setting, revision: 2 });
        await tx.putInstance(instance('p1', { verification: { state: 'pending', reason: '', at: now } }), null);
        await tx.putInstance(instance('f1', { verification: failed }), null);
      });
      await store.transaction(async (tx) => {
        assert.deepEqual((await tx.getService('ns', 'svc'))?.verification, setting);
        const p1 = (await tx.getInstance('p1'))!;
        // Updated in place (read in this transaction), as a check's result is written.
        await tx.putInstance({ ...p1, verification: { state: 'verified', reason: '', at: now + 9 }, revision: 3 }, p1);
      });
      const snap = await store.load();
      assert.deepEqual(snap.services[0]!.verification, setting);
      assert.deepEqual(snap.instances.find((i) => i.id === 'p1')!.verification, {
        state: 'verified',
        reason: '',
        at: now + 9,
      });
      assert.deepEqual(snap.instances.find((i) => i.id === 'f1')!.verification, failed);
      if (hasChangeLog(store)) {
        const read = await store.readRecords({ namespaces: [], services: [['ns', 'svc']], instances: ['f1'] });
        assert.deepEqual(read.services[0]!.verification, setting);
        assert.deepEqual(read.instances[0]!.verification, failed);
      }
      await store.transaction(async (tx) => {
        const svc = (await tx.getService('ns', 'svc'))!;
        await tx.putService({ ...svc, verification: null, revision: 4 });
      });
      assert.equal((await store.load()).services[0]!.verification, null);
      await store.close();
    });

    it('replaces an instance on put: metadata is the new set, not a merge', async () => {
      const store = await factory.create();
      await seed(store);
      await store.transaction(async (tx) => tx.putInstance(instance('i1', { metadata: { a: '1', b: '2' } })));
      await store.transaction(async (tx) => tx.putInstance(instance('i1', { metadata: { c: '3' }, weight: 7 })));
      const got = await store.transaction(async (tx) => tx.getInstance('i1'));
      assert.deepEqual(got?.metadata, { c: '3' });
      assert.equal(got?.weight, 7);
      await store.close();
    });

    it('refuses a service without its namespace and an instance without its service', async () => {
      const store = await factory.create();
      await assert.rejects(store.transaction(async (tx) => tx.putService(service('x', { namespace: 'missing' }))));
      await seed(store);
      await assert.rejects(store.transaction(async (tx) => tx.putInstance(instance('i9', { service: 'missing' }))));
      assert.equal((await store.load()).instances.length, 0);
      await store.close();
    });

    it('rolls back a savepoint alone and keeps its neighbours', async () => {
      const store = await factory.create();
      await seed(store);
      await store.transaction(async (tx) => {
        await tx.savepoint();
        await tx.putInstance(instance('keep1'));
        await tx.releaseSavepoint();
        await tx.savepoint();
        await tx.putInstance(instance('drop'));
        await tx.appendEvent({
          type: 'instance.registered',
          namespace: 'ns',
          service: 'svc',
          instanceId: 'drop',
          at: now,
          detail: {},
        });
        await tx.rollbackToSavepoint();
        await tx.savepoint();
        await tx.putInstance(instance('keep2'));
        await tx.releaseSavepoint();
      });
      const ids = (await store.load()).instances.map((i) => i.id).sort();
      assert.deepEqual(ids, ['keep1', 'keep2']);
      assert.equal((await store.listEvents({ limit: 10 })).length, 0);
      await store.close();
    });

    it('rolls back the whole transaction when it throws', async () => {
      const store = await factory.create();
      await seed(store);
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.putInstance(instance('i1'));
          await tx.appendEvent({ type: 'instance.registered', namespace: 'ns', at: now, detail: {} });
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.equal((await store.load()).instances.length, 0);
      assert.equal((await store.listEvents({ limit: 10 })).length, 0);
      await store.close();
    });

    it('numbers events strictly increasing, filters them, and never reuses ids after pruning', async () => {
      const store = await factory.create();
      await seed(store);
      const ids = await numbered(store, async (tx) => {
        const out: number[] = [];
        for (let i = 0; i < 5; i++) {
          out.push(
            await tx.appendEvent({
              type: i % 2 ? 'instance.unhealthy' : 'instance.registered',
              namespace: 'ns',
              service: i < 3 ? 'svc' : 'other',
              instanceId: `i${i}`,
              at: now + i * 1000,
              detail: { n: i },
            }),
          );
        }
        return out;
      });
      for (let i = 1; i < ids.length; i++) assert.ok(ids[i]! > ids[i - 1]!);
      assert.equal((await store.listEvents({ limit: 100 })).length, 5);
      assert.deepEqual(
        (await store.listEvents({ limit: 100, service: 'svc' })).map((e) => e.instanceId),
        ['i0', 'i1', 'i2'],
      );
      assert.deepEqual(
        (await store.listEvents({ limit: 100, types: ['instance.unhealthy'] })).map((e) => e.instanceId),
        ['i1', 'i3'],
      );
      assert.deepEqual(
        (await store.listEvents({ limit: 100, afterId: ids[2]! })).map((e) => e.id),
        [ids[3], ids[4]],
      );
      assert.deepEqual(
        (await store.listEvents({ limit: 100, since: now + 3000 })).map((e) => e.instanceId),
        ['i3', 'i4'],
      );
      assert.deepEqual(
        (await store.listEvents({ limit: 2, newestFirst: true })).map((e) => e.instanceId),
        ['i4', 'i3'],
      );
      assert.deepEqual((await store.listEvents({ limit: 1, instanceId: 'i2' }))[0]?.detail, { n: 2 });
      assert.equal((await store.listEvents({ limit: 1 }))[0]?.at, new Date(now).toISOString());
      if (hasChangeLog(store)) {
        // Ranges left out, and the limit counts what is left.
        assert.deepEqual(
          (
            await store.listEvents({
              limit: 2,
              skip: [
                [ids[0]!, ids[1]!],
                [ids[3]!, ids[3]!],
              ],
            })
          ).map((e) => e.id),
          [ids[2], ids[4]],
        );
      }

      const removed = await store.transaction((tx) => tx.pruneEvents(2, now + 1500));
      assert.equal(removed, 3);
      assert.deepEqual(
        (await store.listEvents({ limit: 100 })).map((e) => e.instanceId),
        ['i3', 'i4'],
      );
      const [next] = await numbered(store, async (tx) => [
        await tx.appendEvent({ type: 'namespace.created', namespace: 'ns', at: now, detail: {} }),
      ]);
      assert.ok(next! > ids[4]!, 'ids are never reused');
      assert.equal((await store.load()).lastEventId, next);
      await store.close();
    });

    it('flushes heartbeats without touching anything else, ignoring unknown ids', async () => {
      const store = await factory.create();
      await seed(store);
      await store.transaction(async (tx) => tx.putInstance(instance('i1')));
      await store.transaction(async (tx) =>
        tx.updateHeartbeats([
          { id: 'i1', lastHeartbeat: now + 5000 },
          { id: 'gone', lastHeartbeat: 1 },
        ]),
      );
      const got = (await store.load()).instances[0]!;
      assert.deepEqual(got, instance('i1', { lastHeartbeat: now + 5000 }));
      await store.close();
    });

    it('reads the committed rows of given keys outside a transaction, leaving out the absent ones (change log)', async (t) => {
      const store = await factory.create();
      if (!hasChangeLog(store)) {
        await store.close();
        return t.skip('this store has no change log');
      }
      await seed(store);
      await store.transaction(async (tx) => {
        await tx.putInstance(instance('i1'));
        await tx.putInstance(instance('i2', { metadata: {} }));
      });
      const r = await store.readRecords({
        namespaces: ['ns', 'nope'],
        services: [
          ['ns', 'svc'],
          ['ns', 'nope'],
        ],
        instances: ['i2', 'gone', 'i1'],
      });
      assert.deepEqual(
        r.namespaces.map((n) => n.name),
        ['ns'],
      );
      assert.deepEqual(r.services, [service()]);
      assert.deepEqual(
        r.instances.sort((a, b) => a.id.localeCompare(b.id)),
        [instance('i1'), instance('i2', { metadata: {} })],
      );
      assert.deepEqual(await store.readRecords({ namespaces: [], services: [], instances: [] }), {
        namespaces: [],
        services: [],
        instances: [],
      });
      await store.close();
    });

    it('answers the same with hints, whether what they name exists or not, and reads its own writes', async () => {
      const store = await factory.create();
      await seed(store);
      await store.transaction(async (tx) => tx.putInstance(instance('i1', { metadata: { a: '1' } })));
      const hints = {
        namespaces: ['ns', 'none'],
        services: [
          ['ns', 'svc'],
          ['ns', 'none'],
        ] as Array<[string, string]>,
        instances: ['i1', 'i2', 'none'],
      };
      const [e1, e2] = await numbered(
        store,
        async (tx) => {
          assert.equal((await tx.getNamespace('ns'))?.name, 'ns');
          assert.equal(await tx.getNamespace('none'), undefined);
          assert.equal(await tx.getService('ns', 'none'), undefined);
          assert.equal(await tx.getInstance('none'), undefined);
          const i1 = (await tx.getInstance('i1'))!;
          assert.deepEqual(i1, instance('i1', { metadata: { a: '1' } }));
          const e1 = await tx.appendEvent({
            type: 'instance.updated',
            namespace: 'ns',
            service: 'svc',
            instanceId: 'i1',
            at: now,
            detail: {},
          });
          await tx.putInstance({ ...i1, weight: 3, revision: e1, metadata: {} }, i1);
          const e2 = await tx.appendEvent({
            type: 'instance.registered',
            namespace: 'ns',
            service: 'svc',
            instanceId: 'i2',
            at: now,
            detail: {},
          });
          await tx.putInstance(instance('i2', { revision: e2 }), null);
          await tx.putService(service('svc', { revision: e2 }));
          assert.equal((await tx.getInstance('i1'))?.weight, 3);
          assert.deepEqual((await tx.listInstanceIds('ns', 'svc')).sort(), ['i1', 'i2']);
          await tx.deleteInstance('i2');
          assert.equal(await tx.getInstance('i2'), undefined);
          assert.deepEqual(await tx.listInstanceIds('ns', 'svc'), ['i1']);
          return [e1, e2];
        },
        { hints },
      );
      assert.ok(e2! > e1!);
      const snap = await store.load();
      assert.deepEqual(snap.instances, [instance('i1', { weight: 3, revision: e1, metadata: {} })]);
      assert.equal(snap.services[0]?.revision, e2);
      assert.deepEqual(
        (await store.listEvents({ limit: 10 })).map((e) => e.id),
        [e1, e2],
      );
      assert.ok(snap.lastEventId >= e2!);
      await store.close();
    });

    it('deletes instances, services and namespaces', async () => {
      const store = await factory.create();
      await seed(store);
      await store.transaction(async (tx) => tx.putInstance(instance('i1')));
      await store.transaction(async (tx) => {
        await tx.deleteInstance('i1');
        await tx.deleteService('ns', 'svc');
        await tx.deleteNamespace('ns');
      });
      const snap = await store.load();
      assert.deepEqual([snap.namespaces.length, snap.services.length, snap.instances.length], [0, 0, 0]);
      await store.close();
    });

    if (factory.reopen) {
      const reopen = factory.reopen;
      it('keeps every committed write across a reopen', async () => {
        let store = await factory.create();
        await seed(store);
        await store.transaction(async (tx) => {
          await tx.putInstance(instance('i1'));
          await tx.appendEvent({
            type: 'instance.registered',
            namespace: 'ns',
            service: 'svc',
            instanceId: 'i1',
            at: now,
            detail: {},
          });
        });
        store = await reopen(store);
        const snap = await store.load();
        assert.deepEqual(snap.instances, [instance('i1')]);
        assert.equal(snap.lastEventId, 1);
        assert.equal((await store.listEvents({ limit: 10 }))[0]?.instanceId, 'i1');
        await store.close();
      });
    }
  });
}
