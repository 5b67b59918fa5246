import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { api, runMuster, spawnServer, tempDir } from './harness.js';

/** A loopback port something else listens on, for as long as the test runs. */
async function takenPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  after(() => srv.close());
  return (srv.address() as net.AddressInfo).port;
}

describe(
  'muster server start-up: ports and data directory checked before anything is created',
  { concurrency: true },
  () => {
    for (const [api, flag, option] of [
      ['HTTP', '--http-port', 'httpPort'],
      ['gRPC', '--grpc-port', 'grpcPort'],
      ['Consul', '--consul-port', 'consul.port'],
    ] as const) {
      it(`${flag} in use: one line on standard error, exit 2, no data directory and no admin token`, async () => {
        const port = await takenPort();
        const dataDir = path.join(tempDir(), 'data');
        const others = ['--http-port', '--grpc-port'].filter((f) => f !== flag).flatMap((f) => [f, '0']);
        // Auth on, as by default: a start that went further would create and print the admin token.
        const r = await runMuster(['server', flag, String(port), ...others, '--data-dir', dataDir]);
        assert.equal(r.code, 2, r.stderr);
        assert.equal(r.stdout, '');
        assert.equal(
          r.stderr,
          `muster: cannot listen on 127.0.0.1:${port} for the ${api} API: the address is already in use (another Muster server, or another program, listens there). ` +
            `Stop what listens there, or choose another port with ${flag} (option ${option})\n`,
        );
        assert.ok(!fs.existsSync(dataDir), 'nothing created');
      });
    }

    it('a second server on a data directory in use exits 2 naming the directory and the other process; the first serves on', async () => {
      const dataDir = tempDir();
      const first = await spawnServer({}, dataDir);
      try {
        const second = await runMuster(['server', '--http-port', '0', '--grpc-port', '0', '--data-dir', dataDir]);
        assert.equal(second.code, 2, second.stderr);
        assert.match(
          second.stderr,
          new RegExp(
            `^muster: the data directory ${dataDir} is in use by another Muster server \\(pid ${first.child.pid} on [^,]+, since \\S+\\): ` +
              'two servers on one directory would each see only their own registrations\\. Stop that server, or give this one another --data-dir\\n$',
          ),
        );
        assert.equal(
          (
            await api(first.url, 'POST', '/v1/namespaces/default/services/locked/instances', {
              host: '10.0.0.1',
              port: 1,
            })
          ).status,
          201,
        );
      } finally {
        await first.stop();
      }
      assert.ok(!fs.existsSync(path.join(dataDir, 'muster.lock')), 'a stopped server leaves no lock');
      const next = await spawnServer({}, dataDir);
      await next.stop();
    });

    it('the lock of a killed server is taken over by the next one, which has its data', async () => {
      const dataDir = tempDir();
      const first = await spawnServer({}, dataDir);
      assert.equal(
        (await api(first.url, 'POST', '/v1/namespaces/default/services/stale/instances', { host: '10.0.0.2', port: 1 }))
          .status,
        201,
      );
      await first.kill('SIGKILL');
      assert.ok(fs.existsSync(path.join(dataDir, 'muster.lock')), 'SIGKILL leaves the lock file behind');
      const next = await spawnServer({}, dataDir);
      try {
        assert.equal(
          (await api(next.url, 'GET', '/v1/namespaces/default/services/stale/instances')).body.instances.length,
          1,
        );
        assert.equal(JSON.parse(fs.readFileSync(path.join(dataDir, 'muster.lock'), 'utf8')).pid, next.child.pid);
      } finally {
        await next.stop();
      }
    });
  },
);
