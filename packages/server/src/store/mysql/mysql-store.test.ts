import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { createConnection } from 'mysql2/promise';
import pino from 'pino';
import { WriteBatcher } from '../../batch/write-batcher.js';
import { MusterError } from '../../errors.js';
import type { ServiceRecord } from '../../model/records.js';
import { instance, numbered, storeContract } from '../store-contract.js';
import {
  isConflict,
  type ChangeLog,
  type ChangeLogFilter,
  type RecordKeys,
  type Store,
  type StoreTx,
} from '../store.js';
import { ChangeFollower } from '../../cluster/change-follower.js';
import { RegistryIndex } from '../../index/registry-index.js';
import { MYSQL_MIGRATIONS, migrationSql } from './migrations.js';
import { MysqlStore, type MysqlStoreOptions } from './mysql-store.js';
import { parseMysqlUrl, redactMysqlUrl } from './mysql-url.js';

/**
 * Runs against a real MariaDB / MySQL: MUSTER_TEST_MYSQL_URL (default mysql://root@127.0.0.1:3306),
 * a fresh database per store, all dropped at the end. Without a reachable server the file is
 * skipped, except in CI (CI=true), where that is a failure.
 */
const SERVER_URL = (process.env['MUSTER_TEST_MYSQL_URL'] ?? 'mysql://root@127.0.0.1:3306').replace(/\/+$/, '');
const server = parseMysqlUrl(`${SERVER_URL}/probe`);
const where = redactMysqlUrl(SERVER_URL);
const prefix = `muster_test_${process.pid}_${crypto.randomBytes(3).toString('hex')}`;
const databases: string[] = [];
const now = 1_700_000_000_000;

function admin() {
  return createConnection({
    host: server.host,
    port: server.port,
    user: server.user,
    password: server.password,
    connectTimeout: 3000,
  });
}

async function probe(): Promise<string | undefined> {
  try {
    const c = await admin();
    await c.query('SELECT 1');
    await c.end();
    return undefined;
  } catch (err) {
    return (err as Error).message || String((err as { code?: string }).code ?? err);
  }
}

function newDatabase(): string {
  const db = `${prefix}_${databases.length + 1}`;
  databases.push(db);
  return db;
}

const urlOf = (db: string) => `${SERVER_URL}/${db}`;

/** Every store a test opened: closed at the end even when its test failed (open pools keep the process alive). */
const opened: MysqlStore[] = [];

async function openStore(db: string, opts: Partial<MysqlStoreOptions> = {}): Promise<MysqlStore> {
  const s = new MysqlStore({ url: urlOf(db), ...opts });
  opened.push(s);
  await s.open();
  return s;
}

async function sql(db: string, statement: string, values: unknown[] = []): Promise<unknown> {
  const c = await admin();
  try {
    await c.query(`USE \`${db}\``);
    const [rows] = await c.query(statement, values);
    return rows;
  } finally {
    await c.end();
  }
}

async function seed(store: Store, services = ['svc']): Promise<void> {
  await store.transaction(async (tx) => {
    await tx.putNamespace({ name: 'ns', comment: '', createdAt: now, updatedAt: now });
    for (const name of services) await tx.putService(service(name));
  });
}

const service = (name: string, over: Partial<ServiceRecord> = {}): ServiceRecord => ({
  namespace: 'ns',
  name,
  metadata: {},
  comment: '',
  revision: 0,
  createdAt: now,
  updatedAt: now,
  verification: null,
  ...over,
});

const isUnavailable = (err: unknown) => err instanceof MusterError && err.code === 'UNAVAILABLE';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** A TCP proxy to the database that can stop answering (a network partition) and come back. */
class Partition {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  frozen = false;

  constructor(
    host: string,
    private readonly upstreamPort: number,
  ) {
    const port = upstreamPort;
    this.server = net.createServer((client) => {
      this.track(client);
      if (this.frozen) return; // accepted, never answered
      const upstream = this.track(net.connect(port, host));
      client.on('data', (d) => void (this.frozen || upstream.write(d)));
      upstream.on('data', (d) => void (this.frozen || client.write(d)));
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  }

  private track(s: net.Socket): net.Socket {
    this.sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => this.sockets.delete(s));
    return s;
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Drops every connection, as a database restart does. */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  /** Forgets every connection silently: the database's side ends, the client's is reset when it next sends. */
  forgetConnections(): void {
    for (const s of this.sockets) {
      s.removeAllListeners('data')
        .removeAllListeners('close')
        .on('close', () => this.sockets.delete(s));
      if (s.remotePort === this.upstreamPort) s.destroy();
      else s.once('data', () => s.resetAndDestroy());
    }
  }

  async close(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** Counts the queries (round trips) the store sends from now on, on connections it takes from its pool. */
function countRoundTrips(store: MysqlStore): () => number {
  type Conn = Record<'query' | 'execute', (...a: unknown[]) => unknown>;
  const pool = (store as unknown as { sessions: { pool: { getConnection(): Promise<Conn> } } }).sessions.pool;
  const take = pool.getConnection.bind(pool);
  let n = 0;
  pool.getConnection = async () => {
    const conn = await take();
    for (const m of ['query', 'execute'] as const) {
      const orig = conn[m].bind(conn);
      conn[m] = (...a: unknown[]) => (n++, orig(...a));
    }
    return conn;
  };
  return () => n;
}

async function elapsed(p: Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const t0 = Date.now();
  try {
    await p;
    return { ms: Date.now() - t0, error: undefined };
  } catch (error) {
    return { ms: Date.now() - t0, error };
  }
}

const unreachable = await probe();
if (unreachable !== undefined) {
  const reason = `MariaDB not reachable at ${where}: ${unreachable}`;
  if (process.env['CI'] === 'true') {
    it('mysql store: needs MariaDB in CI', () => assert.fail(`${reason} (CI=true: the MySQL store tests must run)`));
  } else {
    it('mysql store', { skip: reason }, () => {});
  }
} else {
  after(async () => {
    await Promise.all(opened.map((s) => s.close()));
    const c = await admin();
    for (const db of databases) await c.query(`DROP DATABASE IF EXISTS \`${db}\``);
    await c.end();
  });

  const urls = new WeakMap<Store, string>();
  storeContract('mysql', {
    async create() {
      const db = newDatabase();
      const s = await openStore(db);
      urls.set(s, db);
      return s;
    },
    async reopen(store) {
      await store.close();
      const db = urls.get(store)!;
      const s = await openStore(db);
      urls.set(s, db);
      return s;
    },
  });

  describe('mysql store', () => {
    it('creates the database, and refuses one whose schema is newer than this build', async () => {
      const db = newDatabase();
      await (await openStore(db)).close();
      const rows = (await sql(db, 'SELECT version FROM schema_migration')) as Array<{ version: number }>;
      assert.deepEqual(
        rows.map((r) => r.version),
        [1, 2, 3],
      );
      await sql(db, 'INSERT INTO schema_migration (version, name, applied_at) VALUES (999, ?, 0)', ['from the future']);
      await assert.rejects(openStore(db), /schema version 999, newer than this Muster knows \(3\)/);
    });

    it('migrates a version 1 or 2 database to 3: existing rows stay visible, a half-done 3 completes', async () => {
      const collation = 'utf8mb4_nopad_bin';
      for (const have of [[1], [1, 2]]) {
        const db = newDatabase();
        const c = await admin();
        try {
          await c.query(`CREATE DATABASE \`${db}\` CHARACTER SET utf8mb4 COLLATE ${collation}`);
          await c.query(`USE \`${db}\``);
          await c.query(
            'CREATE TABLE schema_migration (version INT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL)',
          );
          for (const v of have)
            for (const st of MYSQL_MIGRATIONS.find((m) => m.version === v)!.statements)
              await c.query(migrationSql(st as string, collation));
          for (const v of have) await c.query('INSERT INTO schema_migration VALUES (?, ?, 0)', [v, `v${v}`]);
          await c.query(`INSERT INTO namespace VALUES ('ns', '', ${now}, ${now})`);
          await c.query(
            `INSERT INTO service (namespace, name, comment, metadata, revision, created_at, updated_at) VALUES ('ns', 'svc', '', '{}', 1, ${now}, ${now})`,
          );
          await c.query(`INSERT INTO instance (id, namespace, service, host, port, protocol, version, weight, priority, healthy, isolate, last_heartbeat,
            health_changed_at, revision, created_at, updated_at, token_hash) VALUES ('old', 'ns', 'svc', '10.0.0.1', 80, '', '', 100, 0, 1, 0, ${now}, ${now}, 1, ${now}, ${now}, 'ab')`);
          // A start that died halfway through 3: one column is there, the version row is not.
          if (have.length === 2) await c.query('ALTER TABLE service ADD COLUMN verify_secret VARCHAR(256) NULL');
        } finally {
          await c.end();
        }
        const store = await openStore(db);
        const snap = await store.load();
        assert.equal(snap.services[0]!.verification, null);
        assert.deepEqual(snap.instances[0]!.verification, { state: 'verified', reason: '', at: 0 });
        const rows = (await sql(db, 'SELECT version FROM schema_migration ORDER BY version')) as Array<{
          version: number;
        }>;
        assert.deepEqual(
          rows.map((r) => r.version),
          [1, 2, 3],
        );
      }
    });

    it('compares names, ids and metadata keys exactly: case and trailing spaces count', async () => {
      const store = await openStore(newDatabase());
      await store.transaction(async (tx) => {
        await tx.putNamespace({ name: 'ns', comment: '', createdAt: now, updatedAt: now });
        await tx.putNamespace({ name: 'NS', comment: 'upper', createdAt: now, updatedAt: now });
        await tx.putService(service('svc'));
        await tx.putService(service('Svc'));
        await tx.putInstance(instance('i1', { metadata: { a: '1', A: '2', 'a ': '3', ключ: 'значение 🚀' } }));
        await tx.putInstance(instance('I1', { service: 'Svc' }));
      });
      const snap = await store.load();
      assert.deepEqual(snap.namespaces.map((n) => n.name).sort(), ['NS', 'ns']);
      assert.deepEqual(snap.services.map((s) => s.name).sort(), ['Svc', 'svc']);
      const i1 = snap.instances.find((i) => i.id === 'i1');
      assert.deepEqual(i1?.metadata, { a: '1', A: '2', 'a ': '3', ключ: 'значение 🚀' });
      assert.equal(snap.instances.find((i) => i.id === 'I1')?.service, 'Svc');
      const r = await store.readRecords({
        namespaces: ['NS'],
        services: [
          ['ns', 'Svc'],
          ['ns', 'SVC'],
          ['NS', 'svc'],
        ],
        instances: ['I1', 'i1 '],
      });
      assert.deepEqual(
        [r.namespaces.map((n) => n.comment), r.services.map((s) => s.name), r.instances.map((i) => i.id)],
        [['upper'], ['Svc'], ['I1']],
      );
      await store.close();
    });

    it('never moves a service revision backwards, whichever node commits last', async () => {
      const store = await openStore(newDatabase());
      await seed(store);
      // Written without reading first (the upsert path) ...
      await store.transaction(async (tx) => tx.putService(service('svc', { revision: 100 })));
      await store.transaction(async (tx) => tx.putService(service('svc', { revision: 50, comment: 'late' })));
      let got = (await store.readRecords({ namespaces: [], services: [['ns', 'svc']], instances: [] })).services[0];
      assert.deepEqual([got?.revision, got?.comment], [100, 'late']);
      // ... and read first, as the naming service does.
      await store.transaction(async (tx) => {
        const svc = (await tx.getService('ns', 'svc'))!;
        await tx.putService({ ...svc, revision: 70 });
        assert.equal((await tx.getService('ns', 'svc'))?.revision, 100, 'a read in the same transaction agrees');
      });
      got = (await store.readRecords({ namespaces: [], services: [['ns', 'svc']], instances: [] })).services[0];
      assert.equal(got?.revision, 100);
      await store.close();
    });

    it('a service is locked only to change it: a bump decided on settings another node changed since fails as a collision, a settings change another node overtook answers UNAVAILABLE', async () => {
      const db = newDatabase();
      const [a, b] = await Promise.all([openStore(db), openStore(db)]);
      await seed(a);
      const aRead = deferred();
      const bDone = deferred();
      const bump = async (tx: StoreTx, started?: () => Promise<void>) => {
        const svc = (await tx.getService('ns', 'svc'))!;
        await started?.();
        const revision = await tx.appendEvent({
          type: 'instance.registered',
          namespace: 'ns',
          service: 'svc',
          at: now,
          detail: {},
        });
        await tx.putService({ ...svc, revision });
        return [revision];
      };
      // a reads the service; b changes its settings meanwhile without waiting for a (a holds no lock on it).
      const aBump = numbered(a, (tx) => bump(tx, async () => (aRead.resolve(), bDone.promise)), {
        hints: { services: [['ns', 'svc']] },
      });
      await aRead.promise;
      const [bRev] = await numbered(b, async (tx) => {
        const svc = (await tx.getService('ns', 'svc'))!;
        const revision = await tx.appendEvent({
          type: 'service.updated',
          namespace: 'ns',
          service: 'svc',
          at: now,
          detail: {},
        });
        await tx.putService({ ...svc, comment: 'by b', revision });
        return [revision];
      });
      bDone.resolve();
      // What a decided may hang on the settings (a verification now required): it must not
      // commit, and its record of the service, with the old comment, must not reach an index.
      await assert.rejects(aBump, (err: unknown) => isUnavailable(err) && isConflict(err));
      let got = (await a.readRecords({ namespaces: [], services: [['ns', 'svc']], instances: [] })).services[0]!;
      assert.deepEqual([got.revision, got.comment], [bRev, 'by b'], 'nothing of a written');
      const [aRev] = await numbered(a, (tx) => bump(tx));
      assert.ok(aRev! > bRev!, 'run again, it commits after b with a higher number');
      got = (await a.readRecords({ namespaces: [], services: [['ns', 'svc']], instances: [] })).services[0]!;
      assert.deepEqual([got.revision, got.comment], [aRev, 'by b'], "a's bump kept b's settings");
      // a changes the settings from what it read before b changed them again: refused, nothing written.
      const aRead2 = deferred();
      const bDone2 = deferred();
      const aEdit = a.transaction(async (tx) => {
        const svc = (await tx.getService('ns', 'svc'))!;
        aRead2.resolve();
        await bDone2.promise;
        await tx.putService({ ...svc, comment: 'by a' });
      });
      await aRead2.promise;
      await b.transaction(async (tx) =>
        tx.putService({ ...(await tx.getService('ns', 'svc'))!, comment: 'by b again' }),
      );
      bDone2.resolve();
      await assert.rejects(
        aEdit,
        (err: unknown) => isUnavailable(err) && /concurrent write/.test((err as Error).message),
      );
      got = (await a.readRecords({ namespaces: [], services: [['ns', 'svc']], instances: [] })).services[0]!;
      assert.equal(got.comment, 'by b again');
      await Promise.all([a.close(), b.close()]);
    });

    it('two nodes inserting the same new instance: the second to commit gets UNAVAILABLE and takes nothing over', async () => {
      const db = newDatabase();
      const [a, b] = await Promise.all([openStore(db), openStore(db)]);
      await seed(a);
      const bReady = deferred();
      const aCommitted = deferred();
      // Both read the id as absent (prefetched by the hint) and write it; the insert is held back to the commit.
      const hints = { instances: ['new'] };
      const bTx = b.transaction(
        async (tx) => {
          assert.equal(await tx.getInstance('new'), undefined);
          await tx.putInstance(
            instance('new', {
              tokenHash: 'b'.repeat(64),
              revision: await tx.appendEvent({
                type: 'instance.registered',
                namespace: 'ns',
                service: 'svc',
                instanceId: 'new',
                at: now,
                detail: {},
              }),
            }),
            null,
          );
          bReady.resolve();
          await aCommitted.promise;
        },
        { hints },
      );
      await bReady.promise;
      await a.transaction(
        async (tx) => {
          assert.equal(await tx.getInstance('new'), undefined);
          await tx.putInstance(instance('new', { tokenHash: 'a'.repeat(64) }), null);
        },
        { hints },
      );
      aCommitted.resolve();
      const err = await bTx.then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(isUnavailable(err) && /concurrent write; retry$/.test((err as Error).message), String(err));
      assert.ok(isConflict(err), 'marked as a collision the batcher re-runs apart');
      const rows = (await a.readRecords({ namespaces: [], services: [], instances: ['new'] })).instances;
      assert.equal(rows[0]?.tokenHash, 'a'.repeat(64));
      assert.deepEqual(
        (await a.listEvents({ limit: 10 })).map((e) => e.instanceId),
        [],
        "b's event went with its transaction",
      );
      await Promise.all([a.close(), b.close()]);
    });

    it('two nodes creating the same namespace: the second learns it already exists', async () => {
      const db = newDatabase();
      const [a, b] = await Promise.all([openStore(db), openStore(db)]);
      const create = (s: Store, comment: string) =>
        s.transaction(async (tx) => {
          if (await tx.getNamespace('default')) throw new MusterError('ALREADY_EXISTS', 'exists');
          await new Promise((r) => setTimeout(r, 50));
          await tx.putNamespace({ name: 'default', comment, createdAt: now, updatedAt: now });
        });
      const results = await Promise.allSettled([create(a, 'a'), create(b, 'b')]);
      assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
      const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      assert.equal((failed.reason as MusterError).code, 'ALREADY_EXISTS');
      await Promise.all([a.close(), b.close()]);
    });

    it('a deadlock rolls the whole batch back and its writes are re-run one per transaction, each committed once', async () => {
      const db = newDatabase();
      const [a, b] = await Promise.all([openStore(db), openStore(db)]);
      await seed(a, ['svc1', 'svc2']);
      // Rows both transactions lock (reading an instance locks it), in opposite orders.
      await a.transaction(async (tx) => {
        await tx.putInstance(instance('l1', { service: 'svc1' }));
        await tx.putInstance(instance('l2', { service: 'svc2' }));
      });
      const aLocked = deferred();
      const bLocked = deferred();
      const sizes: number[] = [];
      const batcher = new WriteBatcher(
        a,
        { maxSize: 10, maxWaitMs: 20 },
        { onCommitted: () => {}, onBatch: (n) => sizes.push(n) },
        pino({ level: 'silent' }),
      );
      let attempts = 0;
      // Two writes in one batch: the first is done and released when the second deadlocks.
      const first = batcher.submit((tx) => tx.putInstance(instance('x1', { service: 'svc1' }), null));
      const second = batcher.submit(async (tx) => {
        if (++attempts === 1) {
          await tx.getInstance('l1');
          aLocked.resolve();
          await bLocked.promise;
        }
        await tx.getInstance('l2');
        await tx.putInstance(instance('x2', { service: 'svc2' }), null);
      });
      // b is the heavier transaction (rows written at once), so the database picks a's as the victim.
      const bTx = b.transaction(async (tx) => {
        for (let i = 0; i < 20; i++) await tx.putInstance(instance(`b${i}`, { service: 'svc2' }));
        await tx.getInstance('l2');
        await aLocked.promise;
        bLocked.resolve();
        await tx.getInstance('l1');
      });
      const [r1, r2, rb] = await Promise.allSettled([first, second, bTx]);
      assert.equal(rb.status, 'fulfilled', 'the heavier transaction commits');
      assert.deepEqual(
        [r1.status, r2.status],
        ['fulfilled', 'fulfilled'],
        String((r1 as PromiseRejectedResult).reason ?? (r2 as PromiseRejectedResult).reason),
      );
      assert.deepEqual(sizes, [1, 1], 'the failed batch of two was re-run as two transactions of one');
      // x1 was inserted again (prev null) without a duplicate key: the victim attempt left nothing behind.
      const ids = (await a.load()).instances.map((i) => i.id);
      assert.ok(ids.includes('x1') && ids.includes('x2'), ids.join(','));
      assert.equal(ids.length, 24);
      await batcher.close();
      await Promise.all([a.close(), b.close()]);
    });

    it('a batch whose held-back insert collides at commit: only that write fails, the others commit once', async () => {
      const db = newDatabase();
      const [a, b] = await Promise.all([openStore(db), openStore(db)]);
      await seed(a);
      // Another node inserted 'taken' after this node's index last saw it.
      await b.transaction(async (tx) => tx.putInstance(instance('taken', { tokenHash: 'b'.repeat(64) }), null));
      const sizes: number[] = [];
      const batcher = new WriteBatcher(
        a,
        { maxSize: 10, maxWaitMs: 20 },
        { onCommitted: () => {}, onBatch: (n) => sizes.push(n) },
        pino({ level: 'silent' }),
      );
      const register = (id: string, absent: boolean) =>
        batcher.submit(
          async (tx) => {
            const prev = absent ? undefined : await tx.getInstance(id);
            const svc = (await tx.getService('ns', 'svc'))!;
            const revision = await tx.appendEvent({
              type: 'instance.registered',
              namespace: 'ns',
              service: 'svc',
              instanceId: id,
              at: now,
              detail: {},
            });
            await tx.putService({ ...svc, revision });
            await tx.putInstance(instance(id, { revision, tokenHash: 'a'.repeat(64) }), prev ?? null);
            return revision;
          },
          { instances: absent ? [] : [id], services: [['ns', 'svc']] },
        );
      const results = await Promise.allSettled([
        register('ok1', false),
        register('taken', true),
        register('ok2', false),
      ]);
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'rejected', 'fulfilled'],
      );
      const err = (results[1] as PromiseRejectedResult).reason;
      assert.ok(isUnavailable(err) && /concurrent write; retry$/.test((err as Error).message), String(err));
      assert.deepEqual(sizes, [1, 1], 'the batch of three failed at commit and was re-run one by one');
      const snap = await a.load();
      assert.equal(snap.instances.find((i) => i.id === 'taken')?.tokenHash, 'b'.repeat(64), 'nothing taken over');
      const events = await a.listEvents({ limit: 100 });
      assert.deepEqual(events.map((e) => e.instanceId).sort(), ['ok1', 'ok2'], 'one event per committed write');
      for (const i of snap.instances.filter((x) => x.id.startsWith('ok'))) {
        assert.equal(i.revision, events.find((e) => e.instanceId === i.id)?.id, `${i.id}: its revision is its event`);
      }
      assert.equal(snap.services[0]?.revision, Math.max(...events.map((e) => e.id)));
      // The numbers of the rolled-back transactions were left as unused ones: no gap to wait for.
      const all = (await a.listEvents({ limit: 100, withUnused: true })).map((e) => e.id);
      assert.deepEqual(
        all,
        Array.from({ length: all.length }, (_, i) => all[0]! + i),
      );
      assert.ok(all.length > events.length);
      await batcher.close();
      await Promise.all([a.close(), b.close()]);
    });

    it('reads ahead what the hints name, absent keys included, and writes a batch in two round trips', async () => {
      const db = newDatabase();
      const store = await openStore(db);
      await seed(store);
      await store.transaction(async (tx) => tx.putInstance(instance('old', { metadata: { a: '1' }, weight: 5 })));
      const roundTrips = countRoundTrips(store);
      const ids = await numbered(
        store,
        async (tx) => {
          assert.equal(await tx.getNamespace('nope'), undefined);
          assert.equal(await tx.getService('ns', 'nope'), undefined);
          assert.equal(await tx.getInstance('nope1'), undefined);
          assert.deepEqual((await tx.getInstance('old'))?.metadata, { a: '1' });
          const svc = (await tx.getService('ns', 'svc'))!;
          const out: number[] = [];
          for (const id of ['nope1', 'nope2']) {
            const revision = await tx.appendEvent({
              type: 'instance.registered',
              namespace: 'ns',
              service: 'svc',
              instanceId: id,
              at: now,
              detail: {},
            });
            await tx.putInstance(instance(id, { revision, metadata: { k: id } }), null);
            out.push(revision);
          }
          const revision = await tx.appendEvent({
            type: 'instance.updated',
            namespace: 'ns',
            service: 'svc',
            instanceId: 'old',
            at: now,
            detail: {},
          });
          await tx.putInstance(
            instance('old', { revision, metadata: { b: '2' }, ttl: 9 }),
            (await tx.getInstance('old'))!,
          );
          out.push(revision);
          await tx.putService({ ...svc, revision });
          assert.equal(
            (await tx.getInstance('nope2'))?.revision,
            out[1],
            'a held-back write reads back in the same transaction',
          );
          return out;
        },
        {
          hints: {
            namespaces: ['nope', 'ns'],
            services: [
              ['ns', 'svc'],
              ['ns', 'nope'],
            ],
            instances: ['nope1', 'nope2', 'old'],
          },
        },
      );
      assert.equal(roundTrips(), 2, 'one to start (reads, locks), one to commit (events numbered, writes)');
      assert.ok(ids[0]! < ids[1]! && ids[1]! < ids[2]!);
      const snap = await store.load();
      const byId = new Map(snap.instances.map((i) => [i.id, i]));
      assert.deepEqual(byId.get('nope1'), instance('nope1', { revision: ids[0], metadata: { k: 'nope1' } }));
      assert.deepEqual(byId.get('nope2'), instance('nope2', { revision: ids[1], metadata: { k: 'nope2' } }));
      assert.deepEqual(byId.get('old'), instance('old', { revision: ids[2], metadata: { b: '2' }, ttl: 9 }));
      assert.equal(snap.services[0]?.revision, ids[2]);
      assert.deepEqual(
        (await store.listEvents({ limit: 10 })).map((e) => e.id),
        ids,
      );
      await store.close();
    });

    it('takes what the index vouched for unread: new instances of a known service in one round trip; an assumption no longer true fails the commit as a collision', async () => {
      const db = newDatabase();
      const [a, b] = await Promise.all([openStore(db), openStore(db)]);
      await seed(a);
      // As a node's index holds them.
      const held = await a.readRecords({ namespaces: ['ns'], services: [['ns', 'svc']], instances: [] });
      const register = (store: Store, ids: string[]) =>
        numbered(
          store,
          async (tx) => {
            assert.ok(await tx.getNamespace('ns'));
            const svc = (await tx.getService('ns', 'svc'))!;
            const out: number[] = [];
            for (const id of ids) {
              const prev = await tx.getInstance(id);
              const revision = await tx.appendEvent({
                type: 'instance.registered',
                namespace: 'ns',
                service: 'svc',
                instanceId: id,
                at: now,
                detail: {},
              });
              await tx.putInstance(instance(id, { revision }), prev ?? null);
              svc.revision = revision;
              await tx.putService(svc);
              out.push(revision);
            }
            return out;
          },
          {
            hints: {
              namespaces: ['ns'],
              services: [['ns', 'svc']],
              instances: ids,
              indexed: { namespaces: held.namespaces, services: held.services, absentInstances: ids },
            },
          },
        );
      const roundTrips = countRoundTrips(a);
      const ids = await register(a, ['n1', 'n2']);
      assert.equal(roundTrips(), 1, 'START TRANSACTION to COMMIT in one');
      let snap = await a.load();
      assert.deepEqual(snap.instances.map((i) => [i.id, i.revision]).sort(), [
        ['n1', ids[0]],
        ['n2', ids[1]],
      ]);
      assert.equal(snap.services[0]!.revision, ids[1]);

      // The index did not know of n1 yet (another node registered it): a duplicate key.
      await assert.rejects(register(a, ['n3', 'n1']), (err: unknown) => isUnavailable(err) && isConflict(err));
      // Another node changed the service's settings since the index had it: the guard of the bump.
      await b.transaction(async (tx) => tx.putService({ ...(await tx.getService('ns', 'svc'))!, comment: 'by b' }));
      await assert.rejects(register(a, ['n3']), (err: unknown) => isUnavailable(err) && isConflict(err));
      snap = await a.load();
      assert.deepEqual(snap.instances.map((i) => i.id).sort(), ['n1', 'n2'], 'nothing of either written');
      assert.deepEqual([snap.services[0]!.comment, snap.services[0]!.revision], ['by b', ids[1]]);
      assert.deepEqual(
        (await a.listEvents({ limit: 10 })).map((e) => e.id),
        ids,
      );
      await Promise.all([a.close(), b.close()]);
    });

    for (const consecutive of [true, false]) {
      it(`writes new instances with their child rows and events right ${consecutive ? 'with consecutive ids (lock mode 0/1)' : 'one INSERT per row where ids may interleave (lock mode 2)'}`, async () => {
        const store = await openStore(newDatabase());
        if (!consecutive) {
          // As on a server in interleaved lock mode: the store must not count on consecutive ids.
          const sessions = (store as unknown as { sessions: { initialized: WeakMap<object, number> } }).sessions;
          const known = sessions.initialized;
          (sessions as { initialized: unknown }).initialized = {
            get: (c: object) => (known.get(c) === undefined ? undefined : 0),
            set: (c: object, v: number) => known.set(c, v),
          };
        }
        await seed(store);
        const recs = Array.from({ length: 7 }, (_, i) =>
          instance(`n${i}`, {
            ttl: 1 + i,
            metadata: Object.fromEntries(Array.from({ length: i % 3 }, (_, k) => [`k${k}`, `v${i}.${k}`])),
          }),
        );
        // Each with its event, whose change number is its revision.
        const revisions = await numbered(
          store,
          async (tx) => {
            const out: number[] = [];
            for (const r of recs) {
              assert.equal(await tx.getInstance(r.id), undefined);
              r.revision = await tx.appendEvent({
                type: 'instance.registered',
                namespace: 'ns',
                service: 'svc',
                instanceId: r.id,
                at: now,
                detail: {},
              });
              await tx.putInstance(r, null);
              out.push(r.revision);
            }
            return out;
          },
          { hints: { instances: recs.map((r) => r.id) } },
        );
        recs.forEach((r, i) => (r.revision = revisions[i]!));
        const got = (await store.load()).instances.sort((a, b) => a.id.localeCompare(b.id));
        assert.deepEqual(got, recs);
        const events = await store.listEvents({ limit: 100 });
        assert.deepEqual(
          events.map((e) => [e.id, e.instanceId]),
          recs.map((r) => [r.revision, r.id]),
        );
        await store.close();
      });
    }

    it('a service another node created after the batch read it as absent: the write that collided runs again and finds it, as the next ones do', async () => {
      const db = newDatabase();
      const [a, b] = await Promise.all([openStore(db), openStore(db)]);
      await a.transaction(async (tx) => tx.putNamespace({ name: 'ns', comment: '', createdAt: now, updatedAt: now }));
      const bCreated = deferred();
      const batcher = new WriteBatcher(
        a,
        { maxSize: 10, maxWaitMs: 20 },
        { onCommitted: () => {} },
        pino({ level: 'silent' }),
      );
      const createOrUse = (first: boolean) =>
        batcher.submit(
          async (tx) => {
            if (first) await bCreated.promise;
            const svc = await tx.getService('ns', 'svc');
            if (svc) return 'found';
            await tx.putService(service('svc'));
            return 'created';
          },
          { services: [['ns', 'svc']] },
        );
      const pending = [createOrUse(true), createOrUse(false), createOrUse(false)];
      await new Promise((r) => setTimeout(r, 50)); // a's batch has read 'svc' as absent
      await b.transaction(async (tx) => tx.putService(service('svc', { comment: 'b' })));
      bCreated.resolve();
      assert.deepEqual(await Promise.all(pending), ['found', 'found', 'found']);
      await batcher.close();
      await Promise.all([a.close(), b.close()]);
    });

    it('numbers only the events that commit: a write that failed takes none, and its batch leaves no unused row or gap', async () => {
      const db = newDatabase();
      const store = await openStore(db);
      await seed(store);
      const sizes: number[] = [];
      const committed: number[] = [];
      const batcher = new WriteBatcher(
        store,
        { maxSize: 10, maxWaitMs: 20 },
        {
          onCommitted: (changes) => committed.push(...changes.flatMap((c) => (c.kind === 'event' ? [c.id] : []))),
          onBatch: (n) => sizes.push(n),
        },
        pino({ level: 'silent' }),
      );
      const append = (id: string, fail: boolean) =>
        batcher.submit(async (tx) => {
          const n = await tx.appendEvent({
            type: 'instance.registered',
            namespace: 'ns',
            service: 'svc',
            instanceId: id,
            at: now,
            detail: {},
          });
          if (fail) throw new MusterError('FAILED_PRECONDITION', 'no');
          return n;
        });
      const results = await Promise.allSettled([append('a', false), append('b', true), append('c', false)]);
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'rejected', 'fulfilled'],
      );
      assert.deepEqual(sizes, [3]);
      const all = await store.listEvents({ limit: 100, withUnused: true });
      assert.deepEqual(
        all.map((e) => e.instanceId),
        ['a', 'c'],
        'no unused rows',
      );
      assert.equal(all[1]!.id, all[0]!.id + 1, 'consecutive');
      assert.deepEqual(
        committed,
        all.map((e) => e.id),
        'the index is told the real numbers',
      );
      assert.equal((await store.load()).lastEventId, all[1]!.id);
      await batcher.close();
      await store.close();
    });

    it('a follower reads past the unused rows a failed commit left at once: nothing to wait for', async () => {
      const db = newDatabase();
      const [a, b] = await Promise.all([openStore(db), openStore(db)]);
      await seed(a);
      const start = (await a.load()).lastEventId;
      // b inserts 'dup' between a's read (absent) and a's commit: a's commit fails after its events took ids.
      const aRead = deferred();
      const bDone = deferred();
      const aTx = a.transaction(
        async (tx) => {
          assert.equal(await tx.getInstance('dup'), undefined);
          aRead.resolve();
          await bDone.promise;
          for (let i = 0; i < 3; i++)
            await tx.appendEvent({
              type: 'instance.registered',
              namespace: 'ns',
              service: 'svc',
              instanceId: 'dup',
              at: now,
              detail: {},
            });
          await tx.putInstance(instance('dup'), null);
        },
        { hints: { instances: ['dup'] } },
      );
      await aRead.promise;
      await b.transaction(async (tx) => tx.putInstance(instance('dup', { tokenHash: 'b'.repeat(64) }), null));
      bDone.resolve();
      await assert.rejects(aTx, isUnavailable);
      const all = await a.listEvents({ limit: 100, withUnused: true, afterId: start });
      assert.equal(all.length, 3, 'the ids the failed commit took are rows');
      assert.ok(
        all.every((e) => e.type === ('' as never) && e.namespace === '' && e.instanceId === undefined),
        'unused ones',
      );
      assert.deepEqual(await a.listEvents({ limit: 100, afterId: start }), [], 'no events');
      const afterIds: number[] = [];
      const watched: ChangeLog = {
        listEvents: (f: ChangeLogFilter) => (afterIds.push(f.afterId ?? -1), a.listEvents(f)),
        readRecords: (k: RecordKeys) => a.readRecords(k),
      };
      const follower = new ChangeFollower(
        watched,
        new RegistryIndex(100),
        { pollIntervalMs: 60_000, gapTimeoutMs: 60_000, pageSize: 2 },
        pino({ level: 'silent' }),
      );
      follower.start(start);
      await follower.catchUp();
      afterIds.length = 0;
      await follower.catchUp();
      assert.deepEqual(afterIds, [all[2]!.id], 'the next read starts after the last number');
      await follower.stop();
      await Promise.all([a.close(), b.close()]);
    });

    it('leaves no gap between the change numbers of its transactions, while other sessions read the change log', async () => {
      const store = await openStore(newDatabase());
      await seed(store);
      let reading = true;
      const reader = (async () => {
        while (reading) {
          await store.listEvents({ limit: 100, newestFirst: true, withUnused: true });
          await new Promise((r) => setTimeout(r, 1));
        }
      })();
      for (let t = 0; t < 60; t++) {
        const n = 1 + ((t * 37) % 60);
        await store.transaction(async (tx) => {
          for (let i = 0; i < n; i++)
            await tx.appendEvent({
              type: 'instance.registered',
              namespace: 'ns',
              service: 'svc',
              instanceId: `t${t}`,
              at: now,
              detail: {},
            });
        });
      }
      reading = false;
      await reader;
      const ids = (await store.listEvents({ limit: 10_000, withUnused: true })).map((e) => e.id);
      const gaps = ids.filter((id, i) => i > 0 && id !== ids[i - 1]! + 1);
      assert.deepEqual(gaps, [], 'every number is a row');
      await store.close();
    });

    it('a row locked late in a transaction gets a newer number than any other node gave it', async () => {
      const db = newDatabase();
      const [a, b] = await Promise.all([openStore(db), openStore(db)]);
      await seed(a);
      await a.transaction(async (tx) => tx.putInstance(instance('x')));
      const bumpX = (tx: StoreTx) => async () => {
        const prev = (await tx.getInstance('x'))!;
        const revision = await tx.appendEvent({
          type: 'instance.updated',
          namespace: 'ns',
          service: 'svc',
          instanceId: 'x',
          at: now,
          detail: {},
        });
        await tx.putInstance({ ...prev, revision }, prev);
        return revision;
      };
      const aStarted = deferred();
      const bDone = deferred();
      // a starts first, but reads x (not hinted) only after b changed it.
      const aTx = numbered(a, async (tx) => {
        await tx.appendEvent({
          type: 'instance.updated',
          namespace: 'ns',
          service: 'svc',
          instanceId: 'other',
          at: now,
          detail: {},
        });
        aStarted.resolve();
        await bDone.promise;
        return [await bumpX(tx)()];
      });
      await aStarted.promise;
      const [bRev] = await numbered(b, async (tx) => [await bumpX(tx)()]);
      bDone.resolve();
      const [aRev] = await aTx;
      assert.ok(aRev! > bRev!, `a's ${aRev} is newer than b's ${bRev}`);
      const x = (await a.readRecords({ namespaces: [], services: [], instances: ['x'] })).instances[0]!;
      assert.equal(x.revision, aRev);
      await Promise.all([a.close(), b.close()]);
    });

    for (const hinted of [false, true]) {
      it(`two nodes writing at once${hinted ? ', read ahead by hints' : ''}: no lost update, each revision is its newest change, only UNAVAILABLE to retry`, async () => {
        const db = newDatabase();
        // Both start at once on an empty database: the migration lock lets one migrate.
        const nodes = await Promise.all([openStore(db), openStore(db)]);
        await nodes[0]!.transaction(async (tx) =>
          tx.putNamespace({ name: 'ns', comment: '', createdAt: now, updatedAt: now }),
        );
        const perNode = 200;
        const ids = Array.from({ length: 25 }, (_, i) => `i${i}`);
        let retries = 0;

        /** A registration as the naming service does it: service created on first use, revision bumped. */
        const registerLike = (node: string, id: string) => async (tx: StoreTx) => {
          let svc = await tx.getService('ns', 'svc');
          if (!svc) {
            svc = service('svc');
            svc.revision = await tx.appendEvent({
              type: 'service.created',
              namespace: 'ns',
              service: 'svc',
              at: Date.now(),
              detail: {},
            });
            await tx.putService(svc);
          }
          const prev = await tx.getInstance(id);
          const revision = await tx.appendEvent({
            type: prev ? 'instance.updated' : 'instance.registered',
            namespace: 'ns',
            service: 'svc',
            instanceId: id,
            at: Date.now(),
            detail: { node },
          });
          svc.revision = revision;
          await tx.putService(svc);
          const rec = prev
            ? {
                ...prev,
                weight: prev.weight + 1,
                revision,
                metadata: { ...prev.metadata, [node]: String(Number(prev.metadata[node] ?? 0) + 1) },
              }
            : instance(id, { weight: 1, revision, metadata: { [node]: '1' } });
          await tx.putInstance(rec, prev ?? null);
        };

        const run = async (store: Store, node: string) => {
          const batcher = new WriteBatcher(
            store,
            { maxSize: 32, maxWaitMs: 1 },
            { onCommitted: () => {} },
            pino({ level: 'silent' }),
          );
          await Promise.all(
            Array.from({ length: perNode }, async (_, k) => {
              const id = ids[(k * 7 + (node === 'a' ? 0 : 3)) % ids.length]!;
              for (let attempt = 1; ; attempt++) {
                try {
                  return await batcher.submit(
                    registerLike(node, id),
                    hinted ? { services: [['ns', 'svc']], instances: [id] } : undefined,
                  );
                } catch (err) {
                  if (!isUnavailable(err)) throw err;
                  assert.ok(attempt < 100, `gave up after ${attempt} retries: ${(err as Error).message}`);
                  retries++;
                  await new Promise((r) => setTimeout(r, Math.random() * 20));
                }
              }
            }),
          );
          await batcher.close();
        };
        const t0 = Date.now();
        await Promise.all([run(nodes[0]!, 'a'), run(nodes[1]!, 'b')]);
        const ms = Date.now() - t0;

        const snap = await nodes[0]!.load();
        const events = await nodes[0]!.listEvents({ limit: 10_000 });
        const instances = snap.instances;
        assert.equal(
          instances.reduce((n, i) => n + i.weight, 0),
          2 * perNode,
          'every acknowledged write counted once',
        );
        for (const node of ['a', 'b']) {
          assert.equal(
            instances.reduce((n, i) => n + Number(i.metadata[node] ?? 0), 0),
            perNode,
            `node ${node}'s writes all there`,
          );
        }
        assert.equal(
          events.filter((e) => e.type.startsWith('instance.')).length,
          2 * perNode,
          'one event per acknowledged write',
        );
        const svc = snap.services.find((s) => s.name === 'svc')!;
        assert.equal(svc.revision, Math.max(...events.map((e) => e.id)), 'the service revision is its newest change');
        for (const i of instances) {
          assert.equal(
            i.revision,
            Math.max(...events.filter((e) => e.instanceId === i.id).map((e) => e.id)),
            `${i.id}: revision is its newest change`,
          );
        }
        const all = await nodes[0]!.listEvents({ limit: 10_000, withUnused: true });
        assert.equal(snap.lastEventId, Math.max(...all.map((e) => e.id)));
        assert.ok(
          all.every((e) => e.type === ('' as never) || events.some((x) => x.id === e.id)),
          'the rest are unused numbers',
        );
        console.log(
          `# mysql${hinted ? ' (hinted)' : ''}: 2 nodes x ${perNode} contended writes in ${ms} ms, ${retries} UNAVAILABLE retried, ${all.length - events.length} unused numbers`,
        );
        await Promise.all(nodes.map((n) => n.close()));
      });
    }

    it('keeps the newest event when pruning everything by age, so the change number survives', async () => {
      const store = await openStore(newDatabase());
      await seed(store);
      const ids = await numbered(store, async (tx) => {
        const out: number[] = [];
        for (let i = 0; i < 5; i++)
          out.push(await tx.appendEvent({ type: 'instance.registered', namespace: 'ns', at: now + i, detail: {} }));
        return out;
      });
      assert.equal(await store.transaction((tx) => tx.pruneEvents(1000, now + 10_000)), 4);
      assert.deepEqual(
        (await store.listEvents({ limit: 10 })).map((e) => e.id),
        [ids[4]],
      );
      assert.equal((await store.load()).lastEventId, ids[4]);
      await store.close();
    });

    it('answers UNAVAILABLE within the write timeout when the database is unreachable, and recovers', async () => {
      const timeoutMs = 1000;
      const margin = 1000;
      // Nothing listens: refused at once.
      const closed = net.createServer();
      await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
      const closedPort = (closed.address() as net.AddressInfo).port;
      await new Promise<void>((r) => closed.close(() => r()));
      let r = await elapsed(
        new MysqlStore({ url: `mysql://root@127.0.0.1:${closedPort}/x`, writeTimeoutMs: timeoutMs }).open(),
      );
      assert.ok(
        r.error instanceof Error && /cannot connect to MySQL at 127\.0\.0\.1/.test(r.error.message),
        String(r.error),
      );
      assert.ok(r.ms < timeoutMs + margin, `refused: ${r.ms} ms`);

      // Accepts and never answers: open() gives up after the timeout.
      const silent = new Partition(server.host, server.port);
      silent.frozen = true;
      const silentPort = await silent.listen();
      r = await elapsed(
        new MysqlStore({ url: `mysql://root@127.0.0.1:${silentPort}/x`, writeTimeoutMs: timeoutMs }).open(),
      );
      assert.ok(r.error instanceof Error, 'open failed');
      assert.ok(r.ms >= timeoutMs - 50 && r.ms < timeoutMs + margin, `silent server: ${r.ms} ms`);
      await silent.close();

      // Reachable at open, then partitioned away: every operation gives up in time, then recovers.
      const db = newDatabase();
      const proxy = new Partition(server.host, server.port);
      const port = await proxy.listen();
      const url = `mysql://${encodeURIComponent(server.user)}:${encodeURIComponent(server.password)}@127.0.0.1:${port}/${db}`;
      const store = new MysqlStore({ url, writeTimeoutMs: timeoutMs, poolSize: 4 });
      opened.push(store);
      await store.open();
      await seed(store);
      await store.ping();
      proxy.frozen = true;
      const write = () => store.transaction(async (tx) => tx.putInstance(instance(`p${Math.random()}`)));
      for (const [name, op] of [
        ['ping', () => store.ping()],
        ['transaction', write],
        ['readRecords', () => store.readRecords({ namespaces: ['ns'], services: [], instances: [] })],
        ['listEvents', () => store.listEvents({ limit: 10 })],
      ] as const) {
        const res = await elapsed(op());
        assert.ok(isUnavailable(res.error), `${name}: ${String(res.error)}`);
        assert.ok(res.ms < timeoutMs + margin, `${name} took ${res.ms} ms`);
      }
      // Several writes at once while partitioned: none waits past the timeout for a connection.
      const many = await Promise.all(Array.from({ length: 10 }, () => elapsed(write())));
      for (const m of many) {
        assert.ok(isUnavailable(m.error), String(m.error));
        assert.ok(m.ms < timeoutMs + margin, `a queued write took ${m.ms} ms`);
      }
      proxy.frozen = false;
      // Connections opened during the partition reach nobody and give up after the timeout.
      await new Promise((r) => setTimeout(r, timeoutMs + 200));
      await store.ping();
      await write();
      assert.equal((await store.load()).instances.length, 1);
      // The database restarts: pooled connections are gone (the pool sees them close), the next write still works.
      proxy.dropConnections();
      await new Promise((r) => setTimeout(r, 100));
      await write();
      assert.equal((await store.load()).instances.length, 2);
      // Something between forgot the pooled connections while they sat idle (a NAT, a firewall
      // restarted): they look open until used. Each is checked before use, so a transaction,
      // which may be one round trip with its COMMIT, never goes out on one.
      proxy.forgetConnections();
      await new Promise((r) => setTimeout(r, 600));
      await write();
      assert.equal((await store.load()).instances.length, 3);
      await store.close();
      await proxy.close();
    });
  });
}
