import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { deriveInstanceId, scopedInstanceId } from '../src/naming/identity.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { MYSQL, REDIS, clusterServicesProblem } from './cluster-services.js';
import { api, bearer, startServer, tempDir } from './harness.js';
import { call, registryClient, rejectsWith, type RegistryClient } from './grpc-client.js';

/**
 * An instance's id and endpoint belong to its service. A token for one namespace cannot take the
 * id another namespace's endpoint will get, nor an id another service chose, to make its
 * registrations fail; and an instance's own heartbeatToken cannot point it at another endpoint
 * where only write rights may register one.
 */

type Server = Awaited<ReturnType<typeof startServer>>;
const withToken = (token: string) => {
  const m = new grpc.Metadata();
  m.set('authorization', `Bearer ${token}`);
  return m;
};
function grpcRegister(client: RegistryClient, req: object, token: string): Promise<any> {
  return new Promise((resolve, reject) => {
    client['Register'](req, withToken(token), (err: grpc.ServiceError | null, res: unknown) =>
      err ? reject(err) : resolve(res),
    );
  });
}

describe('instance ids never reach into another namespace or service (auth.clients required)', () => {
  let s: Server;
  let admin = '',
    dev = '',
    prod = '';
  let grpcClient: RegistryClient;
  before(async () => {
    s = await startServer({ 'auth.enabled': true, 'auth.clients': 'required' });
    admin = fs.readFileSync(path.join(s.dataDir, 'admin.token'), 'utf8').trim();
    for (const ns of ['dev', 'prod'])
      assert.equal((await api(s.url, 'POST', '/v1/namespaces', { name: ns }, bearer(admin))).status, 201);
    const token = async (name: string, rule: string) =>
      (await api(s.url, 'POST', '/v1/tokens', { name, rules: [rule] }, bearer(admin))).body.secret as string;
    dev = await token('dev-ci', 'write:dev/*');
    prod = await token('prod-orders', 'write:prod/*');
    grpcClient = registryClient(s.grpcAddress);
  });
  after(async () => {
    grpcClient.close();
    await s.stop();
  });

  it('the id prod/orders-api 10.0.0.9:8080 derives, taken first by a dev token, still goes to the real provider (HTTP)', async () => {
    const victimId = deriveInstanceId('prod', 'orders-api', '10.0.0.9', 8080);
    const squat = await api(
      s.url,
      'POST',
      '/v1/namespaces/dev/services/junk/instances',
      { id: victimId, host: '10.66.0.1', port: 1 },
      bearer(dev),
    );
    assert.equal(squat.status, 201, JSON.stringify(squat.body));
    assert.notEqual(squat.body.instance.id, victimId, 'the squatter got an id of its own service');
    assert.equal(squat.body.instance.id, scopedInstanceId('dev', 'junk', victimId));
    for (const token of [prod, admin]) {
      const real = await api(
        s.url,
        'POST',
        '/v1/namespaces/prod/services/orders-api/instances',
        { host: '10.0.0.9', port: 8080 },
        bearer(token),
      );
      assert.ok(real.status === 201 || real.status === 200, JSON.stringify(real.body));
      assert.equal(real.body.instance.id, victimId);
      assert.equal(real.body.instance.namespace, 'prod');
    }
    // Registering the squatter's body again is idempotent: its own instance, not a copy.
    const again = await api(
      s.url,
      'POST',
      '/v1/namespaces/dev/services/junk/instances',
      { id: victimId, host: '10.66.0.1', port: 1 },
      bearer(dev),
    );
    assert.deepEqual([again.status, again.body.instance.id], [200, squat.body.instance.id]);
  });

  it('the same over gRPC: a derived id of prod, named by a dev registration, does not block prod', async () => {
    const victimId = deriveInstanceId('prod', 'payments', '10.0.0.10', 9090);
    const squat = await grpcRegister(
      grpcClient,
      { namespace: 'dev', service: 'junk', id: victimId, host: '10.66.0.2', port: 1 },
      dev,
    );
    assert.notEqual(squat.instance.id, victimId);
    const real = await grpcRegister(
      grpcClient,
      { namespace: 'prod', service: 'payments', host: '10.0.0.10', port: 9090 },
      prod,
    );
    assert.equal(real.instance.id, victimId);
    assert.equal(real.created, true);
  });

  it('an id chosen by one service, taken first by another namespace, gives the second an id scoped to its service', async () => {
    const first = await api(
      s.url,
      'POST',
      '/v1/namespaces/dev/services/junk/instances',
      { id: 'orders-1', host: '10.66.0.3', port: 1 },
      bearer(dev),
    );
    assert.deepEqual([first.status, first.body.instance.id], [201, 'orders-1']);
    const body = { id: 'orders-1', host: '10.0.0.11', port: 8080 };
    const mine = await api(s.url, 'POST', '/v1/namespaces/prod/services/orders-api/instances', body, bearer(prod));
    assert.equal(mine.status, 201, JSON.stringify(mine.body));
    assert.equal(mine.body.instance.id, scopedInstanceId('prod', 'orders-api', 'orders-1'));
    // The same key finds the same instance again, over HTTP and gRPC, and heartbeats reach it.
    const again = await api(
      s.url,
      'POST',
      '/v1/namespaces/prod/services/orders-api/instances',
      body,
      bearer(mine.body.heartbeatToken),
    );
    assert.deepEqual([again.status, again.body.instance.id], [200, mine.body.instance.id]);
    const viaGrpc = await call(grpcClient, 'Register', {
      namespace: 'prod',
      service: 'orders-api',
      ...body,
      heartbeatToken: mine.body.heartbeatToken,
    });
    assert.deepEqual([viaGrpc.created, viaGrpc.instance.id], [false, mine.body.instance.id]);
    assert.equal(
      (
        await api(
          s.url,
          'PUT',
          `/v1/instances/${mine.body.instance.id}/heartbeat`,
          undefined,
          bearer(mine.body.heartbeatToken),
        )
      ).status,
      204,
    );
    // The first holder is untouched.
    const theirs = await api(s.url, 'GET', '/v1/instances/orders-1', undefined, bearer(admin));
    assert.deepEqual([theirs.body.namespace, theirs.body.host], ['dev', '10.66.0.3']);
  });
});

describe("an instance's own heartbeatToken cannot move it to another endpoint (auth.clients required)", () => {
  let s: Server;
  let admin = '',
    writer = '';
  before(async () => {
    s = await startServer({ 'auth.enabled': true, 'auth.clients': 'required', 'verification.allowLoopback': true });
    admin = fs.readFileSync(path.join(s.dataDir, 'admin.token'), 'utf8').trim();
    writer = (await api(s.url, 'POST', '/v1/tokens', { name: 'writer', rules: ['write:default/*'] }, bearer(admin)))
      .body.secret;
  });
  after(() => s.stop());

  const REG = '/v1/namespaces/default/services/orders/instances';

  it('10.1.1.1 -> 6.6.6.6 with the heartbeatToken is refused, over HTTP and gRPC; the instance stays where it was', async () => {
    const reg = await api(s.url, 'POST', REG, { host: '10.1.1.1', port: 8080 }, bearer(writer));
    assert.equal(reg.status, 201);
    const { id } = reg.body.instance;
    const own = reg.body.heartbeatToken as string;
    for (const [body, field] of [
      [{ id, host: '6.6.6.6', port: 8080 }, 'host'],
      [{ id, host: '10.1.1.1', port: 9999 }, 'port'],
    ] as const) {
      const moved = await api(s.url, 'POST', REG, body, bearer(own));
      assert.equal(moved.status, 403, JSON.stringify(moved.body));
      assert.deepEqual([moved.body.error.code, moved.body.error.field], ['PERMISSION_DENIED', field]);
    }
    const client = registryClient(s.grpcAddress);
    try {
      await rejectsWith(
        call(client, 'Register', { service: 'orders', id, host: '6.6.6.6', port: 8080, heartbeatToken: own }),
        grpc.status.PERMISSION_DENIED,
        'host',
        'gRPC',
      );
    } finally {
      client.close();
    }
    const now = await api(s.url, 'GET', `/v1/instances/${id}`, undefined, bearer(writer));
    assert.deepEqual([now.body.host, now.body.port], ['10.1.1.1', 8080]);
    // The owner may still register its endpoint again, and a token with write may move it.
    assert.equal((await api(s.url, 'POST', REG, { host: '10.1.1.1', port: 8080, weight: 7 }, bearer(own))).status, 200);
    const operator = await api(s.url, 'POST', REG, { id, host: '10.1.1.2', port: 8080 }, bearer(writer));
    assert.deepEqual([operator.status, operator.body.instance.host], [200, '10.1.1.2']);
  });

  it('in a service with verification the move is allowed: the new endpoint is pending until it proves itself', async () => {
    assert.equal(
      (
        await api(
          s.url,
          'POST',
          '/v1/namespaces/default/services',
          { name: 'checked', verification: { secret: 'identity-test-secret-0123456789' } },
          bearer(admin),
        )
      ).status,
      201,
    );
    const reg = await api(
      s.url,
      'POST',
      '/v1/namespaces/default/services/checked/instances',
      { host: '127.0.0.1', port: 1 },
      bearer(writer),
    );
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    const moved = await api(
      s.url,
      'POST',
      '/v1/namespaces/default/services/checked/instances',
      { id: reg.body.instance.id, host: '127.0.0.1', port: 2 },
      bearer(reg.body.heartbeatToken),
    );
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    assert.equal(moved.body.instance.port, 2);
    assert.equal(moved.body.instance.verification.state, 'pending');
  });
});

describe('data written before ids were scoped', () => {
  it('an old squat in the store stays readable and no longer blocks the provider whose id it holds', async () => {
    const dataDir = tempDir();
    const first = await startServer({}, dataDir);
    await first.stop();
    // As an older version let it be written: dev/junk's instance holds the id prod's endpoint derives.
    const victimId = deriveInstanceId('prod', 'orders-api', '10.0.0.9', 8080);
    const store = new SqliteStore({ file: path.join(dataDir, 'muster.db'), synchronous: 'full' });
    await store.open();
    const now = Date.now();
    await store.transaction(async (tx) => {
      for (const ns of ['dev', 'prod'])
        await tx.putNamespace({ name: ns, comment: '', createdAt: now, updatedAt: now });
      await tx.putService({
        namespace: 'dev',
        name: 'junk',
        metadata: {},
        comment: '',
        revision: 1,
        createdAt: now,
        updatedAt: now,
        verification: null,
      });
      await tx.putInstance(
        {
          id: victimId,
          namespace: 'dev',
          service: 'junk',
          host: '10.66.0.1',
          port: 1,
          protocol: '',
          version: '',
          weight: 100,
          priority: 0,
          metadata: {},
          location: {},
          ttl: 60,
          healthy: true,
          isolate: false,
          lastHeartbeat: now,
          healthChangedAt: now,
          revision: 1,
          createdAt: now,
          updatedAt: now,
          tokenHash: 'ab'.repeat(32),
          verification: { state: 'verified', reason: '', at: 0 },
        },
        null,
      );
    });
    await store.close();

    const s = await startServer({}, dataDir);
    try {
      const old = await api(s.url, 'GET', `/v1/instances/${victimId}`);
      assert.deepEqual([old.status, old.body.namespace, old.body.service], [200, 'dev', 'junk']);
      const real = await api(s.url, 'POST', '/v1/namespaces/prod/services/orders-api/instances', {
        host: '10.0.0.9',
        port: 8080,
      });
      assert.equal(real.status, 201, JSON.stringify(real.body));
      assert.equal(real.body.instance.id, scopedInstanceId('prod', 'orders-api', victimId));
      const again = await api(
        s.url,
        'POST',
        '/v1/namespaces/prod/services/orders-api/instances',
        { host: '10.0.0.9', port: 8080 },
        bearer(real.body.heartbeatToken),
      );
      assert.deepEqual([again.status, again.body.instance.id], [200, real.body.instance.id]);
    } finally {
      await s.stop();
    }
  });
});

const clusterWhy = await clusterServicesProblem();
if (clusterWhy && process.env['CI'] === 'true')
  throw new Error(`cluster tests need MariaDB and Redis on CI: ${clusterWhy}`);

describe('instance ids in cluster mode: the same rules on the shared MySQL store', { skip: clusterWhy }, () => {
  const run = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const database = `muster_ids_${run}`;
  after(async () => {
    const conn = await mysql.createConnection({ uri: MYSQL });
    await conn.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await conn.end();
    const r = new Redis(REDIS);
    const keys = await r.keys(`muster-ids-${run}:*`);
    if (keys.length > 0) await r.del(...keys);
    r.disconnect();
  });

  it('a derived id taken through one node by another namespace does not block the provider on another node', async () => {
    const flags = (id: string) => ({
      'store.type': 'mysql',
      'store.url': `${MYSQL}/${database}`,
      'cluster.redis': REDIS,
      'cluster.prefix': `muster-ids-${run}`,
      'cluster.nodeId': id,
    });
    const a = await startServer(flags('ids-a'));
    const b = await startServer(flags('ids-b'));
    try {
      const victimId = deriveInstanceId('prod', 'orders-api', '10.0.0.9', 8080);
      for (const ns of ['dev', 'prod'])
        assert.equal((await api(a.url, 'POST', '/v1/namespaces', { name: ns })).status, 201);
      const squat = await api(a.url, 'POST', '/v1/namespaces/dev/services/junk/instances', {
        id: victimId,
        host: '10.66.0.1',
        port: 1,
      });
      assert.deepEqual([squat.status, squat.body.instance.id], [201, scopedInstanceId('dev', 'junk', victimId)]);
      const chosen = await api(a.url, 'POST', '/v1/namespaces/dev/services/junk/instances', {
        id: 'orders-1',
        host: '10.66.0.2',
        port: 1,
      });
      assert.deepEqual([chosen.status, chosen.body.instance.id], [201, 'orders-1']);
      const real = await api(b.url, 'POST', '/v1/namespaces/prod/services/orders-api/instances', {
        host: '10.0.0.9',
        port: 8080,
      });
      assert.deepEqual([real.status, real.body.instance.id], [201, victimId]);
      // Node B may not have heard of dev's orders-1 yet: its index vouches for an absence the commit disproves, and the write runs again reading.
      const mine = await api(b.url, 'POST', '/v1/namespaces/prod/services/orders-api/instances', {
        id: 'orders-1',
        host: '10.0.0.11',
        port: 8080,
      });
      assert.deepEqual([mine.status, mine.body.instance.id], [201, scopedInstanceId('prod', 'orders-api', 'orders-1')]);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});
