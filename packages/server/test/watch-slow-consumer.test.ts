import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { api, bearer, startServer } from './harness.js';

describe('watch: a reader that stops reading', () => {
  it('is sent no backlog of snapshots, then dropped with a reason once it falls too far behind', async () => {
    const s = await startServer({ 'watch.maxBufferedBytes': 16384 });
    try {
      const svc = '/v1/namespaces/default/services/big/instances';
      const big = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`k${i}`, 'v'.repeat(60)]));
      const regs = [];
      for (let i = 0; i < 40; i++) regs.push((await api(s.url, 'POST', svc, { host: `10.20.0.${i}`, port: 1, metadata: big })).body);
      const { port } = new URL(s.url);

      // A raw socket that asks for the stream and then does not read: kernel buffers fill first.
      const sock = net.connect(Number(port), '127.0.0.1');
      await new Promise((r) => sock.once('connect', r));
      sock.write('GET /v1/watch?namespace=default&service=big HTTP/1.1\r\nHost: x\r\n\r\n');
      sock.pause();
      const chunks: Buffer[] = [];
      sock.on('data', (c: Buffer) => chunks.push(c));

      // About 170 KB per snapshot; enough changes to fill every buffer between us many times over.
      const first = regs[0];
      for (let i = 0; i < 150; i++) {
        await api(s.url, 'PATCH', `/v1/instances/${first.instance.id}`, { weight: i % 2 }, bearer(first.heartbeatToken));
      }
      const closed = new Promise<void>((r) => sock.once('end', () => r()));
      sock.resume();
      await closed;
      const text = Buffer.concat(chunks).toString('utf8');
      const snapshots = text.split('event: snapshot').length - 1;
      assert.ok(snapshots < 150, `${snapshots} snapshots were queued for a reader that did not read`);
      assert.match(text, /event: close\ndata: \{"reason":"slow-consumer"/);
      // The registry itself is fine and keeps serving.
      assert.equal((await api(s.url, 'GET', svc)).status, 200);
    } finally {
      await s.stop();
    }
  });
});
