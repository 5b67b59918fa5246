import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import http2 from 'node:http2';
import { metric } from './grpc-client.js';
import { api, bearer, sleep, startServer, waitFor } from './harness.js';

describe('watch: a reader that stops reading', () => {
  it('is sent no backlog of snapshots, then dropped with a reason once it falls too far behind', async () => {
    const s = await startServer({ 'watch.maxBufferedBytes': 16384 });
    try {
      const svc = '/v1/namespaces/default/services/big/instances';
      const big = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`k${i}`, 'v'.repeat(60)]));
      const regs = [];
      for (let i = 0; i < 40; i++)
        regs.push((await api(s.url, 'POST', svc, { host: `10.20.0.${i}`, port: 1, metadata: big })).body);
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
        await api(
          s.url,
          'PATCH',
          `/v1/instances/${first.instance.id}`,
          { weight: i % 2 },
          bearer(first.heartbeatToken),
        );
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

describe('gRPC Watch: a reader that stops reading', () => {
  it('is dropped once its snapshots stop leaving (HTTP/2 flow control) for twice watch.keepAlive', async () => {
    const s = await startServer({ 'watch.keepAlive': '1s' });
    // A raw HTTP/2 client that sends one Watch request and never reads: a gRPC library would
    // keep reading into its own buffers, so only a raw stream shows what a stuck client does.
    const session = http2.connect(`http://${s.grpcAddress}`);
    session.on('error', () => {});
    try {
      const svc = '/v1/namespaces/default/services/big/instances';
      const big = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`k${i}`, 'v'.repeat(60)]));
      const regs = [];
      for (let i = 0; i < 40; i++)
        regs.push((await api(s.url, 'POST', svc, { host: `10.21.0.${i}`, port: 1, metadata: big })).body);
      const msg = Buffer.concat([
        Buffer.from([0x0a, 7]),
        Buffer.from('default'),
        Buffer.from([0x12, 3]),
        Buffer.from('big'),
      ]);
      const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, msg.length]), msg]);
      const stream = session.request({
        ':method': 'POST',
        ':path': '/muster.v1.Registry/Watch',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      let trailers: http2.IncomingHttpHeaders | undefined;
      stream.on('trailers', (t) => (trailers = t));
      stream.on('error', () => {});
      stream.end(frame);
      stream.pause();
      const watching = () => metric(s.url, 'muster_watchers', 'kind="grpc"');
      await waitFor(async () => (await watching()) === 1, 2000, 'the watch to open');
      const first = regs[0];
      const started = Date.now();
      let i = 0;
      while ((await watching()) === 1 && Date.now() - started < 10_000) {
        await api(
          s.url,
          'PATCH',
          `/v1/instances/${first.instance.id}`,
          { weight: i++ % 2 },
          bearer(first.heartbeatToken),
        );
        await sleep(100);
      }
      assert.equal(await watching(), 0, 'the watch was dropped');
      assert.ok(Date.now() - started >= 1500, 'not before the reader had time to read');
      stream.resume();
      await waitFor(() => trailers !== undefined, 5000, 'the stream to end with its status');
      assert.equal(trailers!['grpc-status'], String(grpc.status.RESOURCE_EXHAUSTED));
      assert.equal((await api(s.url, 'GET', svc)).status, 200);
    } finally {
      session.destroy();
      await s.stop();
    }
  });
});
