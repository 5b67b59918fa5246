import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { MusterClient } from '@muster/client';
import type { ClusterStatus, RegistryEvent } from '@muster/api';
import { FaultProxy } from './fault-proxy.js';
import { api, bearer, sleep, spawnServer, waitFor, type ChildServer } from './harness.js';
import { MYSQL, REDIS, clusterServicesProblem } from './cluster-services.js';

/**
 * Three nodes as child processes on one MariaDB database and one Redis, on loopback: what
 * DESIGN's cluster mode promises, end to end. A fresh database and Redis key prefix per run.
 */

/** Kills a test's nodes and drops its database and Redis keys. */
async function cleanUp(nodes: ChildServer[], database: string, run: string): Promise<void> {
  await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
  const conn = await mysql.createConnection({ uri: MYSQL });
  await conn.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await conn.end();
  const r = new Redis(REDIS);
  const keys = await r.keys(`muster-test-${run}*`);
  if (keys.length > 0) await r.del(...keys);
  r.disconnect();
}

const why = await clusterServicesProblem();
if (why && process.env['CI'] === 'true') throw new Error(`cluster tests need MariaDB and Redis on CI: ${why}`);

describe('cluster mode: three nodes on MariaDB and Redis', { skip: why }, () => {
  const run = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const database = `muster_cluster_${run}`;
  const nodes: ChildServer[] = [];
  const flags = (id: string) => ({
    'store.type': 'mysql',
    'store.url': `${MYSQL}/${database}`,
    'cluster.redis': REDIS,
    'cluster.prefix': `muster-test-${run}`,
    'cluster.nodeId': id,
    'cluster.leaseTtl': '1s',
    'cluster.pollInterval': '1s',
    'health.sweepInterval': '100ms',
  });
  const start = async (id: string) => {
    const n = await spawnServer(flags(id));
    nodes.push(n);
    return n;
  };

  let a: ChildServer, b: ChildServer, c: ChildServer;
  before(async () => {
    // One first, so the schema is created once; the others then start at the same moment.
    a = await start('node-a');
    [b, c] = await Promise.all([start('node-b'), start('node-c')]);
  });
  after(() => cleanUp(nodes, database, run));

  it('lists its three nodes and one lease holder', async () => {
    await waitFor(
      async () => ((await api(a.url, 'GET', '/v1/cluster')).body as ClusterStatus).nodes?.length === 3,
      5000,
      'three nodes in the directory',
    );
    const status = (await api(c.url, 'GET', '/v1/cluster')).body as ClusterStatus;
    assert.equal(status.mode, 'cluster');
    assert.deepEqual(
      status.nodes.map((n) => n.id),
      ['node-a', 'node-b', 'node-c'],
    );
    assert.equal(status.nodes.find((n) => n.self)!.id, 'node-c');
    await waitFor(
      async () => ((await api(b.url, 'GET', '/v1/cluster')).body as ClusterStatus).leaseHolder !== null,
      5000,
      'a lease holder',
    );
    assert.equal(
      ((await api(b.url, 'GET', '/v1/cluster')).body as ClusterStatus).nodes.filter((n) => n.leaseHolder).length,
      1,
    );
  });

  it('a registration on node A is visible on node C within 1 s, every one of 200', async () => {
    const acked = new Map<number, number>();
    const seen = new Map<number, number>();
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const r = await api(c.url, 'GET', '/v1/namespaces/default/services/spread/instances?status=all');
        const now = Date.now();
        for (const i of r.body?.instances ?? []) if (!seen.has(i.port)) seen.set(i.port, now);
        await sleep(20);
      }
    })();
    await Promise.all(
      Array.from({ length: 200 }, async (_, k) => {
        await sleep(k * 5); // spread over a second, like real traffic
        const r = await api(a.url, 'POST', '/v1/namespaces/default/services/spread/instances', {
          host: '10.9.0.1',
          port: 1000 + k,
          healthCheck: { ttl: 60 },
        });
        assert.equal(r.status, 201, JSON.stringify(r.body));
        acked.set(1000 + k, Date.now());
      }),
    );
    await waitFor(() => seen.size === 200, 3000, 'all 200 on node C');
    polling = false;
    await poller;
    const delays = [...acked].map(([port, at]) => Math.max(0, seen.get(port)! - at)).sort((x, y) => x - y);
    assert.ok(
      delays[delays.length - 1]! < 1000,
      `slowest became visible ${delays[delays.length - 1]} ms after its ack (p50 ${delays[100]} ms)`,
    );
  });

  it('a heartbeat sent to node B keeps an instance registered on node A healthy, and its absence expires it', async () => {
    const reg = (
      await api(a.url, 'POST', '/v1/namespaces/default/services/beats/instances', {
        host: '10.9.0.2',
        port: 80,
        healthCheck: { ttl: 1 },
      })
    ).body;
    const id = reg.instance.id as string;
    const beat = async () =>
      assert.equal(
        (await api(b.url, 'PUT', `/v1/instances/${id}/heartbeat`, undefined, bearer(reg.heartbeatToken))).status,
        204,
      );
    for (let t = 0; t < 12; t++) {
      await beat();
      await sleep(300);
    }
    for (const n of [a, b, c])
      assert.equal(
        (await api(n.url, 'GET', `/v1/instances/${id}`)).body.healthy,
        true,
        `healthy on ${n.url} after 3.6 s of heartbeats through node B`,
      );
    await waitFor(
      async () => (await api(c.url, 'GET', `/v1/instances/${id}`)).body.healthy === false,
      6000,
      'the instance to expire once its heartbeats stop',
    );
  });

  it('when the lease holder is killed, another node takes the sweep and an instance expires exactly once', async () => {
    const holderId = ((await api(a.url, 'GET', '/v1/cluster')).body as ClusterStatus).leaseHolder!;
    const holder = [a, b, c][['node-a', 'node-b', 'node-c'].indexOf(holderId)]!;
    const others = [a, b, c].filter((n) => n !== holder);
    const killedAt = Date.now();
    await holder.kill('SIGKILL');
    const reg = (
      await api(others[0]!.url, 'POST', '/v1/namespaces/default/services/orphan/instances', {
        host: '10.9.0.3',
        port: 80,
        healthCheck: { ttl: 1 },
      })
    ).body;
    const id = reg.instance.id as string;
    await waitFor(
      async () => {
        const s = (await api(others[1]!.url, 'GET', '/v1/cluster')).body as ClusterStatus;
        return s.leaseHolder !== null && s.leaseHolder !== holderId;
      },
      5000,
      'another node to take the lease',
    );
    const took = Date.now() - killedAt;
    assert.ok(took < 1000 + 1000 + 500, `lease taken over ${took} ms after the kill (lease 1 s)`);
    // The new holder first gives the killed node (at most 5 s) to flush heartbeats it might hold.
    await waitFor(
      async () => (await api(others[1]!.url, 'GET', `/v1/instances/${id}`)).body.healthy === false,
      10_000,
      'the silent instance to expire',
    );
    await sleep(1500); // time for a duplicate expiry to show, if there were one
    const events = (await api(others[0]!.url, 'GET', `/v1/events?instance=${id}&limit=100`)).body
      .events as RegistryEvent[];
    assert.equal(events.filter((e) => e.type === 'instance.unhealthy').length, 1, JSON.stringify(events));
  });
});

describe('cluster mode: a registration decided on a stale index', { skip: why }, () => {
  const run = `${process.pid}_${randomBytes(3).toString('hex')}_stale`;
  const database = `muster_cluster_${run}`;
  const nodes: ChildServer[] = [];
  after(() => cleanUp(nodes, database, run));

  it('verification turned on through another node a moment ago is not bypassed: the registration comes out pending', async () => {
    // Node A hears nothing of node B (another Redis prefix) and reads the change log once a
    // minute: its index keeps the service as it was, and a new instance there needs no read.
    const flags = (id: string, prefix: string) => ({
      'store.type': 'mysql',
      'store.url': `${MYSQL}/${database}`,
      'cluster.redis': REDIS,
      'cluster.prefix': prefix,
      'cluster.nodeId': id,
      'cluster.pollInterval': '1m',
    });
    const a = await spawnServer(flags('stale-a', `muster-test-${run}-a`));
    nodes.push(a);
    const path = '/v1/namespaces/default/services/guarded/instances';
    const plain = '/v1/namespaces/default/services/plain/instances';
    assert.equal((await api(a.url, 'POST', path, { host: '10.9.0.1', port: 80 })).status, 201);
    assert.equal((await api(a.url, 'POST', plain, { host: '10.9.0.1', port: 80 })).status, 201);
    const b = await spawnServer(flags('stale-b', `muster-test-${run}-b`));
    nodes.push(b);
    const on = await api(b.url, 'PATCH', '/v1/namespaces/default/services/guarded', {
      verification: { secret: 's'.repeat(32) },
    });
    assert.equal(on.status, 200, JSON.stringify(on.body));

    const r = await api(a.url, 'POST', path, { host: '10.9.0.2', port: 80 });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(
      r.body.instance.verification.state,
      'pending',
      'decided on the service as the database holds it, not as the index did',
    );
    // Pending, or failed once the check of that unreachable address has run (2 s): never verified.
    assert.notEqual(
      (await api(a.url, 'GET', `/v1/instances/${r.body.instance.id}`)).body.verification.state,
      'verified',
    );
    // The write that ran again read the service, and its commit brought node A's index up to date.
    assert.equal((await api(a.url, 'GET', '/v1/namespaces/default/services/guarded')).body.verification.enabled, true);

    // An instance node B registered, unknown to A's index: A finds it (a duplicate key, then a
    // read) and answers as for any live instance registered by someone else.
    assert.equal((await api(b.url, 'POST', plain, { host: '10.9.0.3', port: 80 })).status, 201);
    const again = await api(a.url, 'POST', plain, { host: '10.9.0.3', port: 80 });
    assert.equal(again.status, 409, JSON.stringify(again.body));
    assert.equal(again.body.error.code, 'ALREADY_EXISTS');
  });
});

describe('cluster mode: the database fails under a node (through a fault proxy)', { skip: why }, () => {
  const run = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const database = `muster_fault_${run}`;
  let proxy: FaultProxy;
  let node: ChildServer;
  const acked: string[] = [];
  let port = 2000;
  const register = () =>
    api(node.url, 'POST', '/v1/namespaces/default/services/fault/instances', {
      host: '10.8.0.1',
      port: port++,
      healthCheck: { ttl: 60 },
    });
  const discover = () => api(node.url, 'GET', '/v1/namespaces/default/services/fault/instances');

  before(async () => {
    const db = new URL(MYSQL);
    proxy = await new FaultProxy(db.hostname, Number(db.port || 3306)).start();
    node = await spawnServer({
      'store.type': 'mysql',
      'store.url': `mysql://root@127.0.0.1:${proxy.port}/${database}`,
      'store.mysql.writeTimeout': '1s',
      'cluster.redis': REDIS,
      'cluster.prefix': `muster-test-${run}`,
      'cluster.pollInterval': '200ms',
    });
    for (let i = 0; i < 20; i++) {
      const r = await register();
      assert.equal(r.status, 201);
      acked.push(r.body.instance.id);
    }
  });
  after(async () => {
    await node.kill('SIGKILL');
    await proxy.stop();
    const conn = await mysql.createConnection({ uri: MYSQL });
    await conn.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await conn.end();
  });

  for (const fault of ['cut', 'hold'] as const) {
    it(`${fault === 'cut' ? 'refused and cut' : 'stalled'} connections: writes answer UNAVAILABLE in bounded time, discovery says it may be stale, readiness is false; then it recovers and nothing acknowledged is lost`, async () => {
      if (fault === 'cut') await proxy.cut();
      else proxy.hold();
      const t0 = Date.now();
      const w = await register();
      const took = Date.now() - t0;
      assert.equal(w.status, 503, JSON.stringify(w.body));
      assert.equal(w.body.error.code, 'UNAVAILABLE');
      assert.ok(took < 1000 + 1500, `the write answered after ${took} ms (writeTimeout 1 s)`);

      await waitFor(
        async () => (await discover()).headers.get('x-muster-stale') !== null,
        5000,
        'discovery to say it may be stale',
      );
      const d = await discover();
      assert.equal(d.status, 200);
      assert.equal(d.body.stale, true);
      assert.equal(d.body.instances.length, acked.length, 'still answered from the index');
      await waitFor(
        async () => (await api(node.url, 'GET', '/readyz')).status === 503,
        5000,
        'readiness to turn false',
      );

      if (fault === 'cut') await proxy.restore();
      else proxy.release();
      await waitFor(
        async () => (await api(node.url, 'GET', '/readyz')).status === 200,
        10_000,
        'readiness to come back',
      );
      await waitFor(
        async () => (await discover()).headers.get('x-muster-stale') === null,
        5000,
        'discovery to be current again',
      );
      const again = await register();
      assert.equal(again.status, 201, JSON.stringify(again.body));
      acked.push(again.body.instance.id);
      const all = (await discover()).body.instances.map((i: { id: string }) => i.id);
      for (const id of acked) assert.ok(all.includes(id), `acknowledged ${id} is there`);
    });
  }
});

describe('cluster mode: a rolling restart under an SDK provider and consumer', { skip: why }, () => {
  const run = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const database = `muster_rolling_${run}`;
  const flags = (id: string, ports?: { http: number; grpc: number }) => ({
    'store.type': 'mysql',
    'store.url': `${MYSQL}/${database}`,
    'cluster.redis': REDIS,
    'cluster.prefix': `muster-test-${run}`,
    'cluster.nodeId': id,
    'cluster.leaseTtl': '1s',
    'health.sweepInterval': '100ms',
    ...(ports ? { httpPort: ports.http, grpcPort: ports.grpc } : {}),
  });
  let nodes: ChildServer[] = [];
  after(async () => {
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    const conn = await mysql.createConnection({ uri: MYSQL });
    await conn.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await conn.end();
  });

  it("restarts every node in turn; the consumer's picks never fail and the provider stays registered", async () => {
    const first = await spawnServer(flags('r-a'));
    nodes = [first, ...(await Promise.all([spawnServer(flags('r-b')), spawnServer(flags('r-c'))]))];
    const ports = nodes.map((n) => ({
      http: Number(new URL(n.url).port),
      grpc: Number(n.grpcAddress.split(':').pop()),
    }));
    const servers = nodes.map((n) => n.grpcAddress);
    const provider = new MusterClient({ servers, backoffMaxMs: 500 });
    const consumer = new MusterClient({ servers, backoffMaxMs: 500 });
    try {
      const reg = await provider.register({
        service: 'rolling',
        host: '10.7.0.1',
        port: 8080,
        healthCheck: { ttl: 1 },
      });
      await consumer.ready('rolling');
      let picks = 0;
      let misses = 0;
      let picking = true;
      const picker = (async () => {
        while (picking) {
          if (consumer.pick('rolling')?.id === reg.id) picks++;
          else misses++;
          await sleep(10);
        }
      })();
      for (let i = 0; i < nodes.length; i++) {
        await nodes[i]!.stop(); // SIGTERM: a graceful restart, as a deployment does it
        nodes[i] = await spawnServer(flags(`r-${'abc'[i]}`, ports[i]));
        await sleep(500);
      }
      await sleep(2000); // past 3 x ttl after the last restart
      picking = false;
      await picker;
      assert.ok(picks > 100, `${picks} picks`);
      assert.equal(misses, 0, `${misses} of ${picks + misses} picks found no instance`);
      assert.equal(reg.state, 'registered');
      const seen = await api(nodes[1]!.url, 'GET', `/v1/instances/${reg.id}`);
      assert.equal(seen.body.healthy, true);
    } finally {
      await consumer.close();
      await provider.close();
    }
  });
});

describe('cluster mode: Redis fails under a node (through a fault proxy)', { skip: why }, () => {
  const run = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const database = `muster_redisfault_${run}`;
  let proxy: FaultProxy;
  let node: ChildServer;
  after(async () => {
    await node?.kill('SIGKILL');
    await proxy?.stop();
    const conn = await mysql.createConnection({ uri: MYSQL });
    await conn.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await conn.end();
  });

  it('keeps heartbeats in memory and expires nobody while Redis is out; sweeps again once it is back', async () => {
    const redis = new URL(REDIS);
    proxy = await new FaultProxy(redis.hostname, Number(redis.port || 6379)).start();
    node = await spawnServer({
      'store.type': 'mysql',
      'store.url': `${MYSQL}/${database}`,
      'cluster.redis': `redis://127.0.0.1:${proxy.port}`,
      'cluster.prefix': `muster-test-${run}`,
      'cluster.leaseTtl': '1s',
      'health.sweepInterval': '100ms',
    });
    const reg = async (port: number) =>
      (
        await api(node.url, 'POST', '/v1/namespaces/default/services/redisfault/instances', {
          host: '10.6.0.1',
          port,
          healthCheck: { ttl: 1 },
        })
      ).body;
    const beating = await reg(1);
    const silent = await reg(2);
    const healthy = async (id: string) => (await api(node.url, 'GET', `/v1/instances/${id}`)).body.healthy as boolean;
    await waitFor(
      async () => ((await api(node.url, 'GET', '/readyz')).body.checks.sweepLease as string).startsWith('held by this'),
      5000,
      'the node to hold the lease',
    );

    await proxy.cut();
    const until = Date.now() + 4000; // longer than 3 x ttl
    while (Date.now() < until) {
      assert.equal(
        (
          await api(
            node.url,
            'PUT',
            `/v1/instances/${beating.instance.id}/heartbeat`,
            undefined,
            bearer(beating.heartbeatToken),
          )
        ).status,
        204,
        'heartbeats are still taken',
      );
      await sleep(300);
    }
    assert.equal(
      await healthy(silent.instance.id),
      true,
      'nobody expires while Redis is out, not even a silent instance',
    );
    assert.equal(await healthy(beating.instance.id), true);
    assert.match((await api(node.url, 'GET', '/readyz')).body.checks.redis as string, /unreachable/);

    await proxy.restore();
    await waitFor(
      async () => !(await healthy(silent.instance.id)),
      10_000,
      'the silent instance to expire once Redis is back',
    );
    for (let i = 0; i < 5; i++) {
      assert.equal(
        (
          await api(
            node.url,
            'PUT',
            `/v1/instances/${beating.instance.id}/heartbeat`,
            undefined,
            bearer(beating.heartbeatToken),
          )
        ).status,
        204,
      );
      await sleep(300);
    }
    assert.equal(await healthy(beating.instance.id), true, 'the instance that kept beating stayed healthy throughout');
  });
});

describe('cluster mode with auth: tokens on every node', { skip: why }, () => {
  const run = `${process.pid}_${randomBytes(3).toString('hex')}_auth`;
  const database = `muster_cluster_${run}`;
  const nodes: ChildServer[] = [];
  const flags = (id: string) => ({
    'store.type': 'mysql',
    'store.url': `${MYSQL}/${database}`,
    'cluster.redis': REDIS,
    'cluster.prefix': `muster-test-${run}`,
    'cluster.nodeId': id,
    'cluster.pollInterval': '1s',
    'auth.enabled': true,
  });
  after(() => cleanUp(nodes, database, run));

  it('one admin token for the cluster; a token made on one node works on the other, and its revocation is refused there at once', async () => {
    const { readFileSync, existsSync } = await import('node:fs');
    const { join } = await import('node:path');
    const a = await spawnServer(flags('auth-a'));
    nodes.push(a);
    const b = await spawnServer(flags('auth-b'));
    nodes.push(b);
    assert.ok(!existsSync(join(b.dataDir, 'admin.token')), 'the second node makes no admin token of its own');
    const admin = readFileSync(join(a.dataDir, 'admin.token'), 'utf8').trim();
    assert.equal(
      (await api(b.url, 'GET', '/v1/namespaces', undefined, bearer(admin))).status,
      200,
      'node b knows the admin token',
    );

    const made = await api(a.url, 'POST', '/v1/tokens', { name: 'roaming', rules: ['read:*/*'] }, bearer(admin));
    assert.equal(made.status, 201);
    const secret = made.body.secret as string;
    await waitFor(
      async () => (await api(b.url, 'GET', '/v1/cluster', undefined, bearer(secret))).status === 200,
      2000,
      'node b to accept the new token',
    );

    assert.equal((await api(a.url, 'DELETE', '/v1/tokens/roaming', undefined, bearer(admin))).status, 200);
    const revokedAt = Date.now();
    await waitFor(
      async () => (await api(b.url, 'GET', '/v1/cluster', undefined, bearer(secret))).status === 401,
      1000,
      'node b to refuse the revoked token',
    );
    const took = Date.now() - revokedAt;
    assert.ok(took < 1000, `refused on node b ${took} ms after the revocation was acknowledged`);
  });
});
