import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { MusterClient, MusterHttpClient, type StaleReason } from '@muster/client';
import { MYSQL, REDIS, clusterServicesProblem } from './cluster-services.js';
import { FaultProxy } from './fault-proxy.js';
import { call, registryClient, StreamReader, type RegistryClient } from './grpc-client.js';
import { api, spawnServer, tempDir, waitFor, type ChildServer } from './harness.js';

/**
 * A cluster-mode node that cannot read the shared database says so on every protocol: HTTP GET
 * and its 304, SSE snapshots, gRPC Discover and Watch; the SDK turns it into its view's `stale`
 * marker and clears it once the node is current again. The database goes away through a fault
 * proxy; MariaDB itself is never stopped.
 */

const why = await clusterServicesProblem();
if (why && process.env['CI'] === 'true') throw new Error(`cluster tests need MariaDB and Redis on CI: ${why}`);

const PATH = '/v1/namespaces/default/services/behind/instances';

/** The snapshots of an SSE watch, parsed, as they arrive. */
class SseSnapshots {
  readonly items: Array<{ revision: number; stale?: boolean; staleReason?: string }> = [];
  private readonly ctl = new AbortController();

  constructor(url: string) {
    void (async () => {
      const res = await fetch(url, { headers: { accept: 'text/event-stream' }, signal: this.ctl.signal });
      const decoder = new TextDecoder();
      let buf = '';
      for await (const chunk of res.body! as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const lines = buf.slice(0, cut).split('\n');
          buf = buf.slice(cut + 2);
          if (lines.includes('event: snapshot'))
            this.items.push(JSON.parse(lines.find((l) => l.startsWith('data: '))!.slice(6)));
        }
      }
    })().catch(() => {});
  }

  get last() {
    return this.items[this.items.length - 1];
  }

  close(): void {
    this.ctl.abort();
  }
}

describe(
  'cluster mode: a node that cannot read the database tells stale answers on every protocol',
  { skip: why },
  () => {
    const run = `${process.pid}_${randomBytes(3).toString('hex')}_stale`;
    const database = `muster_stale_${run}`;
    const prefix = `muster-test-${run}`;
    let proxy: FaultProxy;
    let node: ChildServer;
    let grpcClient: RegistryClient;

    before(async () => {
      const db = new URL(MYSQL);
      proxy = await new FaultProxy(db.hostname, Number(db.port || 3306)).start();
      // The change log is read every 200 ms, so the node notices the outage (and its end) at once;
      // a watcher hears of a change of staleness within watch.keepAlive.
      node = await spawnServer(
        {
          'store.type': 'mysql',
          'store.url': `mysql://root@127.0.0.1:${proxy.port}/${database}`,
          'cluster.redis': REDIS,
          'cluster.prefix': prefix,
          'cluster.nodeId': 'stale-a',
          'cluster.pollInterval': '200ms',
          'watch.keepAlive': '1s',
        },
        tempDir(),
      );
      grpcClient = registryClient(node.grpcAddress);
    });
    after(async () => {
      grpcClient?.close();
      await node?.kill('SIGKILL');
      await proxy?.stop();
      const conn = await mysql.createConnection({ uri: MYSQL });
      await conn.query(`DROP DATABASE IF EXISTS \`${database}\``);
      await conn.end();
      const r = new Redis(REDIS);
      const keys = await r.keys(`${prefix}*`);
      if (keys.length > 0) await r.del(...keys);
      r.disconnect();
    });

    it('HTTP GET and 304, SSE, gRPC Discover and Watch carry stale while the database is out, and stop once it is back; so does the SDK on both transports', async () => {
      const reg = await api(node.url, 'POST', PATH, { host: '10.5.0.1', port: 80, healthCheck: { ttl: 60 } });
      assert.equal(reg.status, 201, JSON.stringify(reg.body));
      const current = await api(node.url, 'GET', PATH);
      assert.equal(current.body.stale, undefined, 'a current node says nothing');
      assert.equal(current.headers.get('x-muster-stale'), null);
      const revision = current.body.revision as number;

      const sse = new SseSnapshots(`${node.url}/v1/watch?namespace=default&service=behind`);
      const watch = new StreamReader(grpcClient['Watch']({ namespace: 'default', service: 'behind' }));
      const staleEvents: Array<{ transport: string; reason: StaleReason }> = [];
      const fresh: string[] = [];
      const clients = (['http', 'grpc'] as const).map((transport) => {
        const c = new MusterClient({
          transport,
          servers: [transport === 'http' ? node.url : node.grpcAddress],
          pollIntervalMs: 60_000,
        });
        c.on('stale', (ref) => staleEvents.push({ transport, reason: ref.reason }));
        c.on('fresh', () => fresh.push(transport));
        return c;
      });
      try {
        for (const c of clients) assert.equal((await c.discover('behind')).instances.length, 1);
        await waitFor(() => sse.items.length > 0, 5000, 'the first SSE snapshot');
        assert.equal(sse.last!.stale, undefined);
        const first = await watch.next();
        assert.equal(first.stale, undefined, 'proto3: false is absent');

        await proxy.cut();
        await waitFor(
          async () => (await api(node.url, 'GET', PATH)).body.stale === true,
          5000,
          'discovery to say stale',
        );

        const stale = await api(node.url, 'GET', PATH);
        assert.equal(stale.status, 200);
        assert.equal(stale.body.instances.length, 1, 'still answered from the index');
        assert.match(stale.body.staleReason, /cannot read the shared store/);
        assert.equal(stale.headers.get('x-muster-stale'), stale.body.staleReason);

        const notModified = await api(node.url, 'GET', `${PATH}?revision=${revision}`);
        assert.equal(notModified.status, 304);
        // The reason names the store's last error, which may change from one read to the next.
        assert.match(
          notModified.headers.get('x-muster-stale') ?? '',
          /cannot read the shared store/,
          'a 304 says it too',
        );
        const http = new MusterHttpClient({ server: node.url, readYourWrites: false });
        const typed = await http.discover('default', 'behind', { revision });
        assert.ok(typed.notModified && typed.revision === revision, JSON.stringify(typed));
        assert.match(typed.staleReason ?? '', /cannot read the shared store/, 'the typed client reads it');
        const httpAnswer = await http.discover('default', 'behind');
        assert.equal(httpAnswer.notModified === false && httpAnswer.stale, true);

        const discovered = await call(grpcClient, 'Discover', { namespace: 'default', service: 'behind' });
        assert.equal(discovered.stale, true);
        assert.match(discovered.staleReason, /cannot read the shared store/);
        assert.equal(discovered.instances.length, 1);
        const unchanged = await call(grpcClient, 'Discover', { namespace: 'default', service: 'behind', revision });
        assert.equal(unchanged.unchanged, true);
        assert.equal(unchanged.stale, true, 'an unchanged answer says it too');

        // Nothing changed in the service: the streams send a snapshot because the node turned stale.
        const staleSnapshot = await watch.next(5000);
        assert.equal(staleSnapshot.stale, true);
        assert.equal(staleSnapshot.revision, revision);
        assert.match(staleSnapshot.staleReason, /cannot read the shared store/);
        await waitFor(() => sse.last?.stale === true, 5000, 'an SSE snapshot saying stale');
        assert.match(sse.last!.staleReason!, /cannot read the shared store/);
        assert.equal(sse.last!.revision, revision);

        await waitFor(() => staleEvents.length === 2, 5000, 'both SDK clients to emit stale');
        assert.deepEqual(
          staleEvents.map((e) => e.reason),
          ['registry-stale', 'registry-stale'],
        );
        for (const c of clients) {
          const a = await c.discover('behind');
          assert.equal(a.stale, true);
          assert.equal(a.staleReason, 'registry-stale');
          assert.equal(a.instances.length, 1, 'a stale answer still serves what the node holds');
        }

        await proxy.restore();
        await waitFor(
          async () => (await api(node.url, 'GET', PATH)).body.stale === undefined,
          10_000,
          'discovery to be current again',
        );
        assert.equal((await api(node.url, 'GET', `${PATH}?revision=${revision}`)).headers.get('x-muster-stale'), null);
        const again = await watch.next(5000);
        assert.equal(again.stale, undefined);
        await waitFor(() => sse.last?.stale === undefined, 5000, 'an SSE snapshot without stale');
        await waitFor(() => fresh.length === 2, 5000, 'both SDK clients to emit fresh');
        for (const c of clients) {
          const a = await c.discover('behind');
          assert.equal(a.stale, false);
          assert.equal(a.staleReason, undefined);
        }
      } finally {
        sse.close();
        watch.stream.cancel();
        for (const c of clients) await c.close();
      }
    });
  },
);
