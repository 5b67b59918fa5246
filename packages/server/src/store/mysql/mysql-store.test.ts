import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { createConnection } from 'mysql2/promise';
import pino from 'pino';
import { WriteBatcher } from '../../batch/write-batcher.js';
import { MusterError } from '../../errors.js';
import type { ServiceRecord } from '../../model/records.js';
import { instance, storeContract } from '../store-contract.js';
import type { Store, StoreTx } from '../store.js';
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
  return createConnection({ host: server.host, port: server.port, user: server.user, password: server.password, connectTimeout: 3000 });
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
  namespace: 'ns', name, metadata: {}, comment: '', revision: 0, createdAt: now, updatedAt: now, verification: null, ...over,
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

  constructor(host: string, port: number) {
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

  async close(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
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
      assert.deepEqual(rows.map((r) => r.version), [1, 2, 3]);
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
          await c.query('CREATE TABLE schema_migration (version INT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL)');
          for (const v of have) for (const st of MYSQL_MIGRATIONS.find((m) => m.version === v)!.statements) await c.query(migrationSql(st as string, collation));
          for (const v of have) await c.query('INSERT INTO schema_migration VALUES (?, ?, 0)', [v, `v${v}`]);
          await c.query(`INSERT INTO namespace VALUES ('ns', '', ${now}, ${now})`);
          await c.query(`INSERT INTO service (namespace, name, comment, metadata, revision, created_at, updated_at) VALUES ('ns', 'svc', '', '{}', 1, ${now}, ${now})`);
          await c.query(`INSERT INTO instance (id, namespace, service, host, port, protocol, version, weight, priority, healthy, isolate, last_heartbeat,
            health_changed_at, revision, created_at, updated_at, token_hash) VALUES ('old', 'ns', 'svc', '10.0.0.1', 80, '', '', 100, 0, 1, 0, ${now}, ${now}, 1, ${now}, ${now}, 'ab')`);
          // A start that died halfway through 3: one column is there, the version row is not.
          if (have.length === 2) await c.query("ALTER TABLE service ADD COLUMN verify_secret VARCHAR(256) NULL");
        } finally {
          await c.end();
        }
        const store = await openStore(db);
        const snap = await store.load();
        assert.equal(snap.services[0]!.verification, null);
        assert.deepEqual(snap.instances[0]!.verification, { state: 'verified', reason: '', at: 0 });
        const rows = (await sql(db, 'SELECT version FROM schema_migration ORDER BY version')) as Array<{ version: number }>;
        assert.deepEqual(rows.map((r) => r.version), [1, 2, 3]);
      }
    });

    it('compares names, ids and metadata keys exactly: case and trailing spaces count', async () => {
      const store = await openStore(newDatabase());
      await store.transaction(async (tx) => {
        await tx.putNamespace({ name: 'ns', comment: '', createdAt: now, updatedAt: now });
        await tx.putNamespace({ name: 'NS', comment: 'upper', createdAt: now, updatedAt: now });
        await tx.putService(service('svc'));
        await tx.putService(service('Svc'));
        await tx.putInstance(instance('i1', { metadata: { a: '1', A: '2', 'a ': '3', 'ключ': 'значение 🚀' } }));
        await tx.putInstance(instance('I1', { service: 'Svc' }));
      });
      const snap = await store.load();
      assert.deepEqual(snap.namespaces.map((n) => n.name).sort(), ['NS', 'ns']);
      assert.deepEqual(snap.services.map((s) => s.name).sort(), ['Svc', 'svc']);
      const i1 = snap.instances.find((i) => i.id === 'i1');
      assert.deepEqual(i1?.metadata, { a: '1', A: '2', 'a ': '3', 'ключ': 'значение 🚀' });
      assert.equal(snap.instances.find((i) => i.id === 'I1')?.service, 'Svc');
      const r = await store.readRecords({ namespaces: ['NS'], services: [['ns', 'Svc'], ['ns', 'SVC'], ['NS', 'svc']], instances: ['I1', 'i1 '] });
      assert.deepEqual([r.namespaces.map((n) => n.comment), r.services.map((s) => s.name), r.instances.map((i) => i.id)], [['upper'], ['Svc'], ['I1']]);
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
      // ... and read (locked) first, as the naming service does.
      await store.transaction(async (tx) => {
        const svc = (await tx.getService('ns', 'svc'))!;
        await tx.putService({ ...svc, revision: 70 });
        assert.equal((await tx.getService('ns', 'svc'))?.revision, 100, 'a read in the same transaction agrees');
      });
      got = (await store.readRecords({ namespaces: [], services: [['ns', 'svc']], instances: [] })).services[0];
      assert.equal(got?.revision, 100);
      await store.close();
    });

    it('two nodes inserting the same new instance: the second gets UNAVAILABLE and takes nothing over', async () => {
      const db = newDatabase();
      const [a, b] = await Promise.all([openStore(db), openStore(db)]);
      await seed(a);
      const bInserted = deferred();
      const aTried = deferred();
      const bTx = b.transaction(async (tx) => {
        assert.equal(await tx.getInstance('new'), undefined);
        await tx.putInstance(instance('new', { tokenHash: 'b'.repeat(64) }), null);
        bInserted.resolve();
        await aTried.promise;
      });
      const aTx = a.transaction(async (tx) => {
        assert.equal(await tx.getInstance('new'), undefined);
        await bInserted.promise;
        const put = tx.putInstance(instance('new', { tokenHash: 'a'.repeat(64) }), null);
        // a waits on b's uncommitted row; let b commit, then a learns it lost.
        setTimeout(() => aTried.resolve(), 100);
        await put;
      });
      const [bResult, aResult] = await Promise.allSettled([bTx, aTx]);
      assert.equal(bResult.status, 'fulfilled');
      assert.equal(aResult.status, 'rejected');
      const err = (aResult as PromiseRejectedResult).reason as Error;
      assert.ok(isUnavailable(err) && /concurrent write; retry$/.test(err.message), String(err));
      const rows = (await a.readRecords({ namespaces: [], services: [], instances: ['new'] })).instances;
      assert.equal(rows[0]?.tokenHash, 'b'.repeat(64));
      await Promise.all([a.close(), b.close()]);
    });

    it('two nodes creating the same namespace: the second learns it already exists', async () => {
      const db = newDatabase();
      const [a, b] = await Promise.all([openStore(db), openStore(db)]);
      const create = (s: Store, comment: string) => s.transaction(async (tx) => {
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

    it('a deadlock fails the whole batch as UNAVAILABLE: nothing of it is committed', async () => {
      const db = newDatabase();
      const [a, b] = await Promise.all([openStore(db), openStore(db)]);
      await seed(a, ['svc1', 'svc2']);
      const aLocked = deferred();
      const bLocked = deferred();
      const batcher = new WriteBatcher(a, { maxSize: 10, maxWaitMs: 20 }, { onCommitted: () => {} }, pino({ level: 'silent' }));
      // Two writes in one batch: the first is done and released when the second deadlocks.
      const first = batcher.submit((tx) => tx.putInstance(instance('x1', { service: 'svc1' }), null));
      const second = batcher.submit(async (tx) => {
        await tx.getService('ns', 'svc1');
        aLocked.resolve();
        await bLocked.promise;
        await tx.getService('ns', 'svc2');
        await tx.putInstance(instance('x2', { service: 'svc2' }), null);
      });
      // b is the heavier transaction, so the database picks a's as the victim.
      const bTx = b.transaction(async (tx) => {
        for (let i = 0; i < 20; i++) await tx.putInstance(instance(`b${i}`, { service: 'svc2' }), null);
        await tx.getService('ns', 'svc2');
        await aLocked.promise;
        bLocked.resolve();
        await tx.getService('ns', 'svc1');
      });
      const [r1, r2, rb] = await Promise.allSettled([first, second, bTx]);
      assert.equal(rb.status, 'fulfilled', 'the heavier transaction commits');
      for (const r of [r1, r2]) {
        assert.equal(r.status, 'rejected');
        assert.ok(isUnavailable((r as PromiseRejectedResult).reason), String((r as PromiseRejectedResult).reason));
      }
      const ids = (await a.load()).instances.map((i) => i.id);
      assert.ok(!ids.includes('x1') && !ids.includes('x2'), `the victim batch left nothing behind: ${ids.join(',')}`);
      assert.equal(ids.length, 20);
      await batcher.close();
      await Promise.all([a.close(), b.close()]);
    });

    it('two nodes writing at once: no lost update, each revision is its newest change, only UNAVAILABLE to retry', async () => {
      const db = newDatabase();
      // Both start at once on an empty database: the migration lock lets one migrate.
      const nodes = await Promise.all([openStore(db), openStore(db)]);
      await nodes[0]!.transaction(async (tx) => tx.putNamespace({ name: 'ns', comment: '', createdAt: now, updatedAt: now }));
      const perNode = 200;
      const ids = Array.from({ length: 25 }, (_, i) => `i${i}`);
      let retries = 0;

      /** A registration as the naming service does it: service created on first use, revision bumped. */
      const registerLike = (node: string, id: string) => async (tx: StoreTx) => {
        let svc = await tx.getService('ns', 'svc');
        if (!svc) {
          svc = service('svc');
          svc.revision = await tx.appendEvent({ type: 'service.created', namespace: 'ns', service: 'svc', at: Date.now(), detail: {} });
          await tx.putService(svc);
        }
        const prev = await tx.getInstance(id);
        const revision = await tx.appendEvent({ type: prev ? 'instance.updated' : 'instance.registered', namespace: 'ns', service: 'svc', instanceId: id, at: Date.now(), detail: { node } });
        svc.revision = revision;
        await tx.putService(svc);
        const rec = prev
          ? { ...prev, weight: prev.weight + 1, revision, metadata: { ...prev.metadata, [node]: String(Number(prev.metadata[node] ?? 0) + 1) } }
          : instance(id, { weight: 1, revision, metadata: { [node]: '1' } });
        await tx.putInstance(rec, prev ?? null);
      };

      const run = async (store: Store, node: string) => {
        const batcher = new WriteBatcher(store, { maxSize: 32, maxWaitMs: 1 }, { onCommitted: () => {} }, pino({ level: 'silent' }));
        await Promise.all(Array.from({ length: perNode }, async (_, k) => {
          const id = ids[(k * 7 + (node === 'a' ? 0 : 3)) % ids.length]!;
          for (let attempt = 1; ; attempt++) {
            try {
              return await batcher.submit(registerLike(node, id));
            } catch (err) {
              if (!isUnavailable(err)) throw err;
              assert.ok(attempt < 100, `gave up after ${attempt} retries: ${(err as Error).message}`);
              retries++;
              await new Promise((r) => setTimeout(r, Math.random() * 20));
            }
          }
        }));
        await batcher.close();
      };
      const t0 = Date.now();
      await Promise.all([run(nodes[0]!, 'a'), run(nodes[1]!, 'b')]);
      const ms = Date.now() - t0;

      const snap = await nodes[0]!.load();
      const events = await nodes[0]!.listEvents({ limit: 10_000 });
      const instances = snap.instances;
      assert.equal(instances.reduce((n, i) => n + i.weight, 0), 2 * perNode, 'every acknowledged write counted once');
      for (const node of ['a', 'b']) {
        assert.equal(instances.reduce((n, i) => n + Number(i.metadata[node] ?? 0), 0), perNode, `node ${node}'s writes all there`);
      }
      assert.equal(events.filter((e) => e.type.startsWith('instance.')).length, 2 * perNode, 'one event per acknowledged write');
      const svc = snap.services.find((s) => s.name === 'svc')!;
      assert.equal(svc.revision, Math.max(...events.map((e) => e.id)), 'the service revision is its newest change');
      for (const i of instances) {
        assert.equal(i.revision, Math.max(...events.filter((e) => e.instanceId === i.id).map((e) => e.id)), `${i.id}: revision is its newest change`);
      }
      assert.equal(snap.lastEventId, Math.max(...events.map((e) => e.id)));
      console.log(`# mysql: 2 nodes x ${perNode} contended writes in ${ms} ms, ${retries} UNAVAILABLE retried`);
      await Promise.all(nodes.map((n) => n.close()));
    });

    it('keeps the newest event when pruning everything by age, so the change number survives', async () => {
      const store = await openStore(newDatabase());
      await seed(store);
      const ids = await store.transaction(async (tx) => {
        const out: number[] = [];
        for (let i = 0; i < 5; i++) out.push(await tx.appendEvent({ type: 'instance.registered', namespace: 'ns', at: now + i, detail: {} }));
        return out;
      });
      assert.equal(await store.transaction((tx) => tx.pruneEvents(1000, now + 10_000)), 4);
      assert.deepEqual((await store.listEvents({ limit: 10 })).map((e) => e.id), [ids[4]]);
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
      let r = await elapsed(new MysqlStore({ url: `mysql://root@127.0.0.1:${closedPort}/x`, writeTimeoutMs: timeoutMs }).open());
      assert.ok(r.error instanceof Error && /cannot connect to MySQL at 127\.0\.0\.1/.test(r.error.message), String(r.error));
      assert.ok(r.ms < timeoutMs + margin, `refused: ${r.ms} ms`);

      // Accepts and never answers: open() gives up after the timeout.
      const silent = new Partition(server.host, server.port);
      silent.frozen = true;
      const silentPort = await silent.listen();
      r = await elapsed(new MysqlStore({ url: `mysql://root@127.0.0.1:${silentPort}/x`, writeTimeoutMs: timeoutMs }).open());
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
      // The database restarts: pooled connections are gone, the next write still works.
      proxy.dropConnections();
      await write();
      assert.equal((await store.load()).instances.length, 2);
      await store.close();
      await proxy.close();
    });
  });
}
