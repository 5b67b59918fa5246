import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { MusterClient } from '@muster/client';
import type { ClusterStatus, RegistryEvent } from '@muster/api';
import { MYSQL, REDIS, clusterServicesProblem } from './cluster-services.js';
import { FaultProxy } from './fault-proxy.js';
import { call, registryClient } from './grpc-client.js';
import {
  api,
  bearer,
  musterBin,
  sleep,
  spawnServer,
  tempDir,
  waitFor,
  type ChildServer,
  type Flags,
} from './harness.js';

/**
 * Cluster mode under faults: a node whose clock is wrong, a node paused while its clients give
 * up, a database or Redis that goes away under a node (through fault proxies, the machine's
 * services are never stopped), and reads that must see the writes a client made through another
 * node. Every node is a child process on the real MariaDB and Redis; each suite has its own
 * database and Redis key prefix.
 */

const why = await clusterServicesProblem();
if (why && process.env['CI'] === 'true') throw new Error(`cluster tests need MariaDB and Redis on CI: ${why}`);

const skewedClock = pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), 'skewed-clock.js')).href;

/** A suite's database and Redis key prefix, and the nodes to kill after it. */
function suite(tag: string) {
  const run = `${process.pid}_${randomBytes(3).toString('hex')}_${tag}`;
  const s = {
    database: `muster_faults_${run}`,
    prefix: `muster-test-${run}`,
    nodes: [] as ChildServer[],
    /** Flags of a node of this suite's cluster; `prefix` puts it in another cluster on the same database. */
    flags: (id: string, extra: Flags = {}): Flags => ({
      'store.type': 'mysql',
      'store.url': `${MYSQL}/${s.database}`,
      'cluster.redis': REDIS,
      'cluster.prefix': s.prefix,
      'cluster.nodeId': id,
      'cluster.leaseTtl': '1s',
      'health.sweepInterval': '100ms',
      ...extra,
    }),
    start: async (id: string, extra: Flags = {}, env: NodeJS.ProcessEnv = {}): Promise<ChildServer> => {
      const n = await spawnServer(s.flags(id, extra), tempDir(), env);
      s.nodes.push(n);
      return n;
    },
    cleanUp: async (): Promise<void> => {
      await Promise.all(s.nodes.map((n) => (n.child.kill('SIGCONT'), n.kill('SIGKILL'))));
      const conn = await mysql.createConnection({ uri: MYSQL });
      await conn.query(`DROP DATABASE IF EXISTS \`${s.database}\``);
      await conn.end();
      const r = new Redis(REDIS);
      const keys = await r.keys(`${s.prefix}*`);
      if (keys.length > 0) await r.del(...keys);
      r.disconnect();
    },
  };
  return s;
}

interface Registered {
  id: string;
  token: string;
}

async function register(n: ChildServer, service: string, port: number, ttl: number): Promise<Registered> {
  const r = await api(n.url, 'POST', `/v1/namespaces/default/services/${service}/instances`, {
    host: '10.3.0.1',
    port,
    healthCheck: { ttl },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return { id: r.body.instance.id, token: r.body.heartbeatToken };
}

const holder = async (n: ChildServer) => ((await api(n.url, 'GET', '/v1/cluster')).body as ClusterStatus).leaseHolder;
const healthy = async (n: ChildServer, id: string) =>
  (await api(n.url, 'GET', `/v1/instances/${id}`)).body.healthy as boolean;
const events = async (n: ChildServer, query: string) =>
  (await api(n.url, 'GET', `/v1/events?limit=1000&${query}`)).body.events as RegistryEvent[];
const unhealthyEvents = async (n: ChildServer, id: string) =>
  (await events(n, `instance=${id}&type=instance.unhealthy`)).length;

/** Heartbeats `reg` through `n` every 300 ms for `ms`, each one answered 204. */
async function beat(n: ChildServer, reg: Registered, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const r = await api(n.url, 'PUT', `/v1/instances/${reg.id}/heartbeat`, undefined, bearer(reg.token));
    assert.equal(r.status, 204, JSON.stringify(r.body));
    await sleep(300);
  }
}

describe('cluster faults: nodes whose clocks are 20 s off', { skip: why }, () => {
  const s = suite('skew');
  after(() => s.cleanUp());

  it("a node 20 s behind or ahead changes no instance's health, whichever node sweeps: heartbeats through it keep an instance healthy, and one whose heartbeats stop expires on time", async () => {
    const a = await s.start('skew-a');
    await waitFor(
      async () => (await holder(a)) === 'skew-a',
      5000,
      'the node with a right clock to hold the sweep lease',
    );
    const skewed = (ms: number) => ({ NODE_OPTIONS: `--import=${skewedClock}`, MUSTER_TEST_CLOCK_SKEW_MS: String(ms) });
    const [ahead, behind] = await Promise.all([
      s.start('skew-ahead', {}, skewed(20_000)),
      s.start('skew-behind', {}, skewed(-20_000)),
    ]);

    // The right clock sweeps: heartbeats through the node behind keep an instance healthy; one
    // registered and heartbeating through the node ahead expires 3 × ttl after its last heartbeat.
    const kept = await register(a, 'skew', 1, 1);
    const dying = await register(ahead, 'skew', 2, 1);
    let dyingStoppedAt = 0;
    await Promise.all([beat(behind, kept, 4000), beat(ahead, dying, 1000).then(() => (dyingStoppedAt = Date.now()))]);
    await waitFor(async () => !(await healthy(a, dying.id)), 6000, 'the instance whose heartbeats stopped to expire');
    const expiredAfter = Date.now() - dyingStoppedAt;
    assert.ok(expiredAfter > 2000, `expired ${expiredAfter} ms after its last heartbeat, before 3 × ttl`);
    assert.equal(await healthy(a, kept.id), true);
    assert.equal(
      await unhealthyEvents(a, kept.id),
      0,
      'the instance heartbeating through the node 20 s behind never expired',
    );

    // GET /v1/cluster shows how far each machine's clock is from the cluster's (nothing depends on it).
    const offsets = Object.fromEntries(
      ((await api(a.url, 'GET', '/v1/cluster')).body as ClusterStatus).nodes.map((n) => [n.id, n.clockOffsetMs]),
    );
    assert.ok(
      Math.abs(offsets['skew-a']!) < 1000 &&
        Math.abs(offsets['skew-ahead']! - 20_000) < 1000 &&
        Math.abs(offsets['skew-behind']! + 20_000) < 1000,
      JSON.stringify(offsets),
    );

    // A wrong clock sweeps: a heartbeat through the other skewed node is 40 s off from its clock.
    await a.stop(); // hands the lease on
    await waitFor(
      async () => ['skew-ahead', 'skew-behind'].includes((await holder(ahead)) ?? ''),
      5000,
      'a skewed node to take the lease',
    );
    const other = (await holder(ahead)) === 'skew-ahead' ? behind : ahead;
    const third = await register(other, 'skew', 3, 1);
    await beat(other, third, 3500);
    assert.equal(await healthy(other, third.id), true);
    assert.equal(await unhealthyEvents(other, third.id), 0, 'heartbeats through the other skewed node kept it healthy');
    const stoppedAt = Date.now();
    await waitFor(async () => !(await healthy(other, third.id)), 7000, 'it to expire once its heartbeats stopped');
    assert.ok(Date.now() - stoppedAt > 2000, 'not before 3 × ttl');
  });
});

describe('cluster faults: a node paused while its clients give up', { skip: why }, () => {
  const s = suite('pause');
  after(() => s.cleanUp());

  it('what a paused node received is not applied once it waited past limits.writeWait or its client left: DEADLINE_EXCEEDED, nothing committed; a heartbeat that waited is dropped', async () => {
    // Only the node that is paused has the short bound: on a loaded machine a registration through
    // the other may itself take more than a second.
    const [sweeper, paused] = await Promise.all([s.start('pause-s'), s.start('pause-p', { 'limits.writeWait': '1s' })]);
    const path = '/v1/namespaces/default/services/paused/instances';
    const beating = await register(sweeper, 'paused', 1, 60);
    const grpcClient = registryClient(paused.grpcAddress);
    try {
      await call(grpcClient, 'Discover', { service: 'paused' }); // the channel is up before the pause

      paused.child.kill('SIGSTOP');
      const gaveUp = Array.from({ length: 10 }, (_, k) =>
        fetch(paused.url + path, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ host: '10.3.0.2', port: 3000 + k }),
          signal: AbortSignal.timeout(300),
        }).then(
          () => 'answered',
          () => 'gave up',
        ),
      );
      const grpcGaveUp = call(
        grpcClient,
        'Register',
        { service: 'paused', host: '10.3.0.2', port: 3100 },
        { deadline: Date.now() + 300 },
      ).then(
        () => 'answered',
        (e: grpc.ServiceError) => grpc.status[e.code],
      );
      const patient = api(paused.url, 'POST', path, { host: '10.3.0.2', port: 3200 });
      const patientBeat = api(
        paused.url,
        'PUT',
        `/v1/instances/${beating.id}/heartbeat`,
        undefined,
        bearer(beating.token),
      );
      assert.deepEqual(await Promise.all(gaveUp), Array(10).fill('gave up'));
      assert.equal(await grpcGaveUp, 'DEADLINE_EXCEEDED');
      await sleep(1500); // the pause outlasts limits.writeWait
      paused.child.kill('SIGCONT');

      const late = await patient;
      assert.equal(late.status, 504, JSON.stringify(late.body));
      assert.equal(late.body.error.code, 'DEADLINE_EXCEEDED');
      const lateBeat = await patientBeat;
      assert.equal(
        lateBeat.status,
        504,
        `a heartbeat that waited out the pause is dropped: ${JSON.stringify(lateBeat.body)}`,
      );

      // The node works again (right after a pause it dates new requests back to the pause's
      // start for a moment: it cannot tell them from the ones that came during it). What it
      // received before this registration was decided before it.
      await waitFor(
        async () => (await api(paused.url, 'POST', path, { host: '10.3.0.2', port: 3300 })).status === 201,
        5000,
        'the node to take registrations again',
      );
      const ports = (await events(sweeper, 'service=paused&type=instance.registered'))
        .map((e) => e.detail['port'])
        .sort();
      assert.deepEqual(ports, [1, 3300], 'nothing the clients gave up on, or that waited out the pause, was committed');
    } finally {
      paused.child.kill('SIGCONT');
      grpcClient.close();
    }
  });
});

describe('cluster faults: a node whose database fails (through a fault proxy)', { skip: why }, () => {
  const s = suite('db');
  let proxy: FaultProxy;
  let q: ChildServer;
  let r: ChildServer;
  before(async () => {
    const db = new URL(MYSQL);
    proxy = await new FaultProxy(db.hostname, Number(db.port || 3306)).start();
    // Node q hears nothing of node r (other Redis prefixes) and reads the change log once a minute.
    // One batch committing at a time on q: a write waits in the queue while the one before is stuck.
    [r, q] = await Promise.all([
      s.start('db-r', { 'cluster.prefix': `${s.prefix}-r`, 'cluster.pollInterval': '1m' }),
      s.start('db-q', {
        'cluster.prefix': `${s.prefix}-q`,
        'cluster.pollInterval': '1m',
        'store.url': `mysql://root@127.0.0.1:${proxy.port}/${s.database}`,
        'store.mysql.commitsInFlight': 1,
      }),
    ]);
  });
  after(async () => {
    await proxy?.stop();
    await s.cleanUp();
  });

  it('a heartbeat for an instance the node has not indexed answers UNAVAILABLE while the database is out, never NOT_FOUND', async () => {
    const reg = await register(r, 'dbfault', 1, 60);
    await proxy.cut();
    try {
      const hb = await api(q.url, 'PUT', `/v1/instances/${reg.id}/heartbeat`, undefined, bearer(reg.token));
      assert.equal(hb.status, 503, JSON.stringify(hb.body));
      assert.equal(hb.body.error.code, 'UNAVAILABLE');
    } finally {
      await proxy.restore();
    }
    await waitFor(
      async () =>
        (await api(q.url, 'PUT', `/v1/instances/${reg.id}/heartbeat`, undefined, bearer(reg.token))).status === 204,
      10_000,
      'the heartbeat to find the instance once the database is back',
    );
  });

  it('a write whose client gave up while it waited behind a stalled commit is not committed', async () => {
    const path = '/v1/namespaces/default/services/dbfault/instances';
    proxy.hold();
    let first;
    let gaveUp;
    try {
      first = api(q.url, 'POST', path, { host: '10.3.0.3', port: 2000 });
      await waitFor(() => proxy.heldChunks > 0, 5000, 'the first registration to be stuck in the database');
      gaveUp = await fetch(q.url + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ host: '10.3.0.3', port: 2001 }),
        signal: AbortSignal.timeout(300),
      }).then(
        () => 'answered',
        () => 'gave up',
      );
    } finally {
      proxy.release();
    }
    assert.equal(gaveUp, 'gave up');
    assert.equal((await first).status, 201);
    const fresh = await api(q.url, 'POST', path, { host: '10.3.0.3', port: 2002 });
    assert.equal(fresh.status, 201, JSON.stringify(fresh.body));
    const ports = (await events(r, 'service=dbfault&type=instance.registered')).map((e) => e.detail['port']).sort();
    assert.deepEqual(ports, [1, 2000, 2002], 'the registration whose client gave up is not among them');
  });
});

describe('cluster faults: writes and reads through several nodes', { skip: why }, () => {
  const s = suite('ryw');
  let a: ChildServer, b: ChildServer, c: ChildServer;
  before(async () => {
    // Node c hears nothing of a and b (another Redis prefix) and reads the change log once a
    // minute: only a request's revision makes it catch up.
    [a, b, c] = await Promise.all([
      s.start('ryw-a'),
      s.start('ryw-b'),
      s.start('ryw-c', { 'cluster.prefix': `${s.prefix}-c`, 'cluster.pollInterval': '1m' }),
    ]);
  });
  after(() => s.cleanUp());

  const revision = (r: { headers: Headers }) => {
    const v = r.headers.get('x-muster-revision');
    assert.match(v ?? '', /^\d+$/, 'a write answers the revision it committed');
    return Number(v);
  };

  it('a write through one node is seen by every later read through another that carries its revision: header, query parameter or gRPC metadata', async () => {
    const grpcC = registryClient(c.grpcAddress);
    try {
      for (let i = 0; i < 10; i++) {
        const reg = await api(a.url, 'POST', '/v1/namespaces/default/services/ryw/instances', {
          host: '10.3.0.4',
          port: 4000 + i,
          healthCheck: { ttl: 60 },
        });
        assert.equal(reg.status, 201);
        const id = reg.body.instance.id as string;
        const seen = await api(c.url, 'GET', `/v1/instances/${id}`, undefined, {
          'x-muster-min-revision': String(revision(reg)),
        });
        assert.equal(seen.status, 200, `registered through a, read through c: ${JSON.stringify(seen.body)}`);

        const del = await api(b.url, 'DELETE', `/v1/instances/${id}`, undefined, bearer(reg.body.heartbeatToken));
        assert.equal(del.status, 204);
        const rev = revision(del);
        assert.ok(rev > revision(reg));
        assert.equal(
          (await api(a.url, 'GET', `/v1/instances/${id}`, undefined, { 'x-muster-min-revision': String(rev) })).status,
          404,
          'deregistered through b, read through a',
        );
        const listed = await api(
          c.url,
          'GET',
          `/v1/namespaces/default/services/ryw/instances?status=all&minRevision=${rev}`,
        );
        assert.equal(listed.status, 200);
        assert.ok(
          !listed.body.instances.some((x: { id: string }) => x.id === id),
          'deregistered through b, discovered through c',
        );
        const md = new grpc.Metadata();
        md.set('muster-min-revision', String(rev));
        const viaGrpc = await new Promise<any>((resolve, reject) =>
          grpcC['Discover']({ service: 'ryw', filter: { status: 'all' } }, md, {}, (e: Error | null, res: unknown) =>
            e ? reject(e) : resolve(res),
          ),
        );
        assert.ok(
          !(viaGrpc.instances ?? []).some((x: { id: string }) => x.id === id),
          'deregistered through b, discovered through c over gRPC',
        );
      }
    } finally {
      grpcC.close();
    }

    // A revision no node of this registry committed is refused at once, not waited for.
    const t0 = Date.now();
    const ahead = await api(c.url, 'GET', '/v1/namespaces', undefined, { 'x-muster-min-revision': '999999999' });
    assert.equal(ahead.status, 409, JSON.stringify(ahead.body));
    assert.deepEqual([ahead.body.error.code, ahead.body.error.field], ['FAILED_PRECONDITION', 'minRevision']);
    assert.ok(Date.now() - t0 < 1500, 'answered without waiting');
    const bad = await api(c.url, 'GET', '/v1/namespaces?minRevision=soon');
    assert.deepEqual([bad.status, bad.body.error.field], [400, 'minRevision']);
  });

  it('the SDK and the CLI carry the revision of their own writes to the next node they ask', async () => {
    // The SDK registers through a; a then stops answering, and the SDK asks c, which has heard of nothing.
    const client = new MusterClient({ servers: [a.grpcAddress, c.grpcAddress], timeoutMs: 500, backoffMaxMs: 500 });
    try {
      const reg = await client.register({ service: 'ryw-sdk', host: '10.3.0.5', port: 80, healthCheck: { ttl: 60 } });
      a.child.kill('SIGSTOP');
      const answer = await client.discover('ryw-sdk');
      assert.deepEqual(
        answer.instances.map((i) => i.id),
        [reg.id],
      );
    } finally {
      a.child.kill('SIGCONT');
      await client.close();
    }

    // The CLI keeps the revision of its last write for its next commands (in XDG_STATE_HOME).
    const env = { XDG_STATE_HOME: tempDir('muster-cli-state-') };
    const reg = JSON.parse(
      await cli(
        ['--server', a.url, 'register', 'ryw-cli', '--host', '10.3.0.6', '--port', '80', '--ttl', '60', '-o', 'json'],
        env,
      ),
    ) as { instance: { id: string }; heartbeatToken: string };
    const listed = async () =>
      (
        JSON.parse(await cli(['--server', c.url, 'instances', 'ls', 'ryw-cli', '-o', 'json'], env)) as {
          instances: Array<{ id: string }>;
        }
      ).instances.map((i) => i.id);
    assert.deepEqual(await listed(), [reg.instance.id], 'registered through a, listed through c');
    await cli(['--server', b.url, 'deregister', reg.instance.id, '--heartbeat-token', reg.heartbeatToken], env);
    assert.deepEqual(await listed(), [], 'deregistered through b, listed through c');
  });

  it('two nodes creating one service at once: every registration succeeds, the collision of the two creations is retried inside the server', async () => {
    const answers = await Promise.all(
      Array.from({ length: 25 }, (_, k) =>
        [a, b].map((n, j) =>
          api(n.url, 'POST', `/v1/namespaces/default/services/race-${k}/instances`, { host: `10.3.1.${j}`, port: 80 }),
        ),
      ).flat(),
    );
    const failed = answers.filter((r) => r.status !== 201).map((r) => `${r.status} ${JSON.stringify(r.body)}`);
    assert.deepEqual(failed, []);
  });
});

/** Runs `muster ...`; resolves its standard output, rejects when it fails. */
function cli(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MUSTER_')));
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [musterBin, ...args],
      { env: { ...clean, ...env }, timeout: 15_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`muster ${args.join(' ')}: ${err.message}\n${stderr}`));
        else resolve(stdout);
      },
    );
  });
}

describe('cluster faults: Redis fails under two nodes (through fault proxies)', { skip: why }, () => {
  const s = suite('redis');
  let pa: FaultProxy, pb: FaultProxy;
  let a: ChildServer, b: ChildServer;
  const holdsLease = async (n: ChildServer) =>
    ((await api(n.url, 'GET', '/readyz')).body.checks.sweepLease as string).startsWith('held by this');
  before(async () => {
    const redis = new URL(REDIS);
    pa = await new FaultProxy(redis.hostname, Number(redis.port || 6379)).start();
    pb = await new FaultProxy(redis.hostname, Number(redis.port || 6379)).start();
    a = await s.start('redis-a', { 'cluster.redis': `redis://127.0.0.1:${pa.port}` });
    await waitFor(() => holdsLease(a), 5000, 'node a to hold the sweep lease');
    b = await s.start('redis-b', { 'cluster.redis': `redis://127.0.0.1:${pb.port}` });
  });
  after(async () => {
    await Promise.all([pa?.stop(), pb?.stop()]);
    await s.cleanUp();
  });

  it('an outage logs "publish failed" once, not once per commit, and says when publishing works again', async () => {
    const lines = (text: string, msg: string) => text.split('\n').filter((l) => l.includes(`"msg":"${msg}`));
    const from = a.output().length;
    await pa.cut();
    try {
      // Commits for 3 s: each one's publish waits for Redis, and fails after 2 s.
      for (let k = 0; k < 30; k++) {
        await register(a, 'outage', 100 + k, 60);
        await sleep(100);
      }
      // By now the publishes of the first second of commits have failed, one by one.
      await waitFor(
        () => lines(a.output().slice(from), 'change bus: publish failed').length > 0,
        5000,
        'a publish to fail',
      );
      const failed = lines(a.output().slice(from), 'change bus: publish failed');
      assert.equal(failed.length, 1, `one warning for the outage, not one per commit:\n${failed.join('\n')}`);
    } finally {
      await pa.restore();
    }
    let port = 200;
    await waitFor(
      async () => {
        await register(a, 'outage', port++, 60);
        return lines(a.output().slice(from), 'change bus: publishing works again').length > 0;
      },
      10_000,
      'a line saying that publishing works again',
    );
  });

  it('after Redis returns, the new holder of the sweep lease waits until the slower node has flushed the heartbeats it kept', async () => {
    const reg = await register(a, 'held', 1, 1);
    let beating = true;
    const beats = (async () => {
      while (beating) {
        const r = await api(b.url, 'PUT', `/v1/instances/${reg.id}/heartbeat`, undefined, bearer(reg.token));
        assert.equal(r.status, 204, JSON.stringify(r.body));
        await sleep(300);
      }
    })();
    const redis = new Redis(REDIS);
    try {
      await waitFor(
        async () => (await redis.hget(`${s.prefix}:hb`, reg.id)) !== null,
        5000,
        'heartbeats through node b to reach Redis',
      );
      await Promise.all([pa.cut(), pb.cut()]);
      await sleep(4000); // Redis is out for longer than 3 × ttl: node b keeps the heartbeats in memory
      await pa.restore();
      await waitFor(() => holdsLease(a), 10_000, 'node a to hold the sweep lease again');
      await sleep(600); // the sweeps that would expire the instance if they did not wait for node b
      const restoredAt = Date.now();
      await pb.restore();
      await waitFor(
        async () => Number(await redis.hget(`${s.prefix}:hb`, reg.id)) > restoredAt,
        10_000,
        'node b to flush its heartbeats',
      );
    } finally {
      redis.disconnect();
      await Promise.all([pa.restore(), pb.restore()]);
      beating = false;
      await beats;
    }
    const what = () =>
      [a, b]
        .flatMap((n) =>
          n
            .output()
            .split('\n')
            .filter((l) => /lease|flush|sweep|relay/.test(l)),
        )
        .join('\n');
    assert.equal(
      await unhealthyEvents(a, reg.id),
      0,
      `the instance heartbeating through node b all along never expired; the nodes said:\n${what()}`,
    );
  });
});
