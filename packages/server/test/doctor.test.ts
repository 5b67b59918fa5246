import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pino from 'pino';
import { loadConfig } from '../src/config/config.js';
import { Muster } from '../src/muster.js';
import { startAuthServer } from './auth-server.js';
import { runMuster as muster } from './harness.js';
import { MYSQL, REDIS, clusterServicesProblem } from './cluster-services.js';
import { FaultProxy } from './fault-proxy.js';
import { startServer, tempDir, waitFor, type RunningServer } from './harness.js';
import { makeCerts, tlsFlags } from './tls-certs.js';

/** `muster doctor` against real servers: healthy, unreachable, TLS, and a cluster with faults. */
describe('muster doctor: a single server', () => {
  let s: RunningServer;
  let admin: string;
  before(async () => {
    ({ admin, ...s } = await startAuthServer());
  });
  after(() => s.stop());

  it('finds nothing wrong with a healthy server and exits 0', async () => {
    const r = await muster(['--server', s.url, 'doctor'], { MUSTER_TOKEN: admin });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const line of [
      /ok\s+reachable/,
      /ok\s+ready/,
      /ok\s+store\s+the store answers/,
      /ok\s+cluster\s+a single node/,
      /ok\s+auth\s+auth is on/,
    ])
      assert.match(r.stdout, line);
    assert.match(r.stdout, /No problem found\.$/m);
    const j = JSON.parse((await muster(['--server', s.url, 'doctor', '-o', 'json'], { MUSTER_TOKEN: admin })).stdout);
    assert.equal(j.ok, true);
  });

  it('says which token it needs to check the cluster, without failing', async () => {
    const r = await muster(['--server', s.url, 'doctor']);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /WARN\s+cluster\s+could not list the nodes/);
    assert.match(r.stdout, /-> give a token with read on every namespace/);
  });

  it('exits 1 when nothing answers at the address', async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const { port } = srv.address() as net.AddressInfo;
    await new Promise<void>((r) => srv.close(() => r()));
    const r = await muster(['--server', `http://127.0.0.1:${port}`, 'doctor']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /FAIL\s+reachable\s+http:\/\/127\.0\.0\.1:\d+ did not answer/);
    assert.match(r.stdout, /-> check that the server runs/);
  });

  it('reads the TLS certificate and warns before it expires', async () => {
    const certs = await makeCerts(); // valid for one day
    const t = await startServer(tlsFlags(certs));
    try {
      const r = await muster(['--server', t.url, '--ca', certs.caFile, 'doctor']);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /WARN\s+tls certificate\s+the certificate expires in 0 day\(s\)/);
      const untrusted = await muster(['--server', t.url, 'doctor']);
      assert.equal(untrusted.code, 1);
      assert.match(untrusted.stdout, /FAIL\s+tls certificate\s+the certificate is not trusted here/);
    } finally {
      await t.stop();
    }
  });
});

const why = await clusterServicesProblem();
if (why && process.env['CI'] === 'true')
  throw new Error(`the doctor's cluster tests need MariaDB and Redis on CI: ${why}`);

describe('muster doctor: a cluster with a skewed clock and a store that went away', { skip: why }, () => {
  const run = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const database = `muster_doctor_${run}`;
  const prefix = `muster-test-${run}`;
  const nodes: Muster[] = [];
  let proxy: FaultProxy;
  let a: Muster;
  let b: Muster;

  const node = async (id: string, storeUrl: string, clock = { now: () => Date.now() }) => {
    const config = loadConfig({
      flags: {
        httpPort: '0',
        grpcPort: '0',
        dataDir: tempDir(),
        'log.level': 'silent',
        'auth.enabled': 'false',
        'store.type': 'mysql',
        'store.url': storeUrl,
        'cluster.redis': REDIS,
        'cluster.prefix': prefix,
        'cluster.nodeId': id,
        'cluster.leaseTtl': '1s',
      },
    });
    const m = await new Muster(config, { logger: pino({ level: 'silent' }), clock }).start();
    nodes.push(m);
    return m;
  };

  before(async () => {
    const u = new URL(MYSQL);
    proxy = await new FaultProxy(u.hostname, Number(u.port || 3306)).start();
    // Node A reaches MariaDB through the proxy (so the test can cut it); node B runs 2 minutes ahead.
    a = await node('node-a', `mysql://${u.username}@127.0.0.1:${proxy.port}/${database}`);
    b = await node('node-b', `${MYSQL}/${database}`, { now: () => Date.now() + 120_000 });
    await waitFor(async () => (await b.clusterStatus()).nodes.length === 2, 5000, 'both nodes in the directory');
  });
  after(async () => {
    await proxy.restore();
    for (const m of nodes) await m.stop().catch(() => {});
    await proxy.stop();
    const conn = await mysql.createConnection({ uri: MYSQL });
    await conn.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await conn.end();
    const r = new Redis(REDIS);
    const keys = await r.keys(`${prefix}*`);
    if (keys.length > 0) await r.del(...keys);
    r.disconnect();
  });

  it("reports the nodes' clocks two minutes apart, and exits 1", async () => {
    const r = await muster(['--server', a.url, 'doctor']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /FAIL\s+clocks\s+the nodes' clocks differ by 1\d{5} ms \(against Redis's clock: node-a [+-]\d+ ms, node-b \+1\d{5} ms\)/,
    );
    assert.match(r.stdout, /-> run time synchronisation/);
    assert.match(r.stdout, /ok\s+sweep lease\s+held by node-[ab]/);
    assert.match(r.stdout, /ok\s+redis/);
  });

  it('reports a store it cannot reach, and exits 1', async () => {
    await proxy.cut();
    const r = await muster(['--server', a.url, 'doctor']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /FAIL\s+ready\s+the server is not ready/);
    assert.match(r.stdout, /FAIL\s+store\s+the store is unreachable: /);
    assert.match(r.stdout, /-> check that the database \(store\.url\) is up and reachable/);
    // Node B still reaches it: only A is wrong.
    assert.doesNotMatch((await muster(['--server', b.url, 'doctor'])).stdout, /FAIL\s+store/);
  });
});
