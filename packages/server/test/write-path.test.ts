import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../src/config/config.js';
import { Muster } from '../src/muster.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { Store } from '../src/store/store.js';
import { api, bearer, startServer, tempDir } from './harness.js';

/** The real SQLite store, counting the transactions the server opens. */
class CountingSqlite extends SqliteStore {
  transactions = 0;
  override transaction<T>(fn: Parameters<Store['transaction']>[0]): Promise<T> {
    this.transactions++;
    return super.transaction(fn) as Promise<T>;
  }
}

describe('write path', () => {
  it('heartbeats touch memory only; a periodic flush writes them in one transaction', async () => {
    const dataDir = tempDir();
    const store = new CountingSqlite({ file: path.join(dataDir, 'muster.db'), synchronous: 'full' });
    // The periodic flush is driven by hand here so the count cannot straddle a timer tick.
    const config = loadConfig({
      flags: { httpPort: '0', grpcPort: '0', dataDir, 'health.flushInterval': '1h', 'auth.enabled': 'false' },
    });
    const muster = await new Muster(config, { store, logger: pino({ level: 'silent' }) }).start();
    try {
      const regs = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          api(muster.url, 'POST', '/v1/namespaces/default/services/hb/instances', { host: `10.10.0.${i}`, port: 1 }),
        ),
      );
      const before = store.transactions;
      for (let round = 0; round < 5; round++) {
        await Promise.all(
          regs.map((r) =>
            api(
              muster.url,
              'PUT',
              `/v1/instances/${r.body.instance.id}/heartbeat`,
              undefined,
              bearer(r.body.heartbeatToken),
            ),
          ),
        );
      }
      assert.equal(store.transactions, before, '100 heartbeats opened no transaction');
      await muster.health.flush();
      assert.equal(store.transactions, before + 1, 'one flush, one transaction');
      await muster.health.flush();
      assert.equal(store.transactions, before + 1, 'nothing new to flush, nothing written');
    } finally {
      await muster.stop();
    }
  });

  it('two changes of one service in one batch: each answers the service as it left it', async () => {
    // A batch window long enough that the two PATCHes share a transaction.
    const s = await startServer({ 'batch.maxWaitMs': 50 });
    try {
      assert.equal((await api(s.url, 'POST', '/v1/namespaces/default/services', { name: 'twice' })).status, 201);
      // The creation's audit entry is written now, so it cannot join the PATCHes' batch.
      await s.muster.audit.flush();
      const before = await writesBeyondOnePerTransaction(s.url);
      const [a, b] = await Promise.all([
        api(s.url, 'PATCH', '/v1/namespaces/default/services/twice', { comment: 'a' }),
        api(s.url, 'PATCH', '/v1/namespaces/default/services/twice', { comment: 'b', metadata: { k: 'v' } }),
      ]);
      assert.deepEqual([a.status, b.status], [200, 200]);
      // Every other transaction since (the PATCHes' audit entries, written once they were
      // answered) holds one write: exactly one more means the two PATCHes shared one.
      assert.equal(
        (await writesBeyondOnePerTransaction(s.url)) - before,
        1,
        'the two PATCHes were committed in one transaction',
      );
      assert.equal(a.body.comment, 'a');
      assert.deepEqual([b.body.comment, b.body.metadata], ['b', { k: 'v' }]);
      assert.notEqual(a.body.revision, b.body.revision);
      const last = a.body.revision > b.body.revision ? a.body : b.body;
      assert.deepEqual((await api(s.url, 'GET', '/v1/namespaces/default/services/twice')).body.comment, last.comment);
    } finally {
      await s.stop();
    }
  });
});

/**
 * From the server's own batch-size metric (muster_batch_size: writes per store transaction):
 * the writes committed so far less the transactions that committed them.
 */
async function writesBeyondOnePerTransaction(url: string): Promise<number> {
  const res = await api(url, 'GET', '/metrics');
  assert.equal(res.status, 200);
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(res.body as string)?.[1]);
  const writes = value('muster_batch_size_sum');
  const transactions = value('muster_batch_size_count');
  assert.ok(Number.isFinite(writes) && Number.isFinite(transactions), 'the batch-size metric is exported');
  return writes - transactions;
}
