import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { MusterClient, MusterError, type RegistrationState } from '@muster/client';
import { HUNG_AFTER_MS, api, repoRoot, startServer, tempDir, waitFor } from './harness.js';

const TRANSPORTS = ['grpc', 'http'] as const;

for (const transport of TRANSPORTS) {
  describe(`SDK provider over ${transport}`, () => {
    const clients: MusterClient[] = [];
    after(() => Promise.all(clients.map((c) => c.close())));

    it('registers, stays healthy on heartbeats, and deregisters', async () => {
      const s = await startServer({ 'health.sweepInterval': '100ms' });
      try {
        const client = new MusterClient({ transport, servers: [transport === 'grpc' ? s.muster.grpcAddress : s.url] });
        clients.push(client);
        const reg = await client.register({ service: 'prov', host: '10.0.0.1', port: 8080, healthCheck: { ttl: 1 } });
        assert.equal(reg.state, 'registered');
        const id = reg.id!;
        // Three ttls without heartbeats would expire it; the SDK's heartbeats keep it healthy.
        await new Promise((r) => setTimeout(r, 3500));
        const seen = await api(s.url, 'GET', `/v1/instances/${id}`);
        assert.equal(seen.status, 200);
        assert.equal(seen.body.healthy, true, 'heartbeats kept it healthy');
        assert.ok(seen.body.lastHeartbeatAgeMs < 1000, `last heartbeat ${seen.body.lastHeartbeatAgeMs} ms ago`);
        assert.equal(await reg.deregister(), true);
        assert.equal(reg.state, 'deregistered');
        assert.equal((await api(s.url, 'GET', `/v1/instances/${id}`)).status, 404);
      } finally {
        await s.stop();
      }
    });

    it('re-registers by itself within 2 x ttl after the registry restarts on a fresh data directory', async () => {
      const first = await startServer();
      const ports = { httpPort: first.muster.port, grpcPort: first.muster.grpcPort };
      const client = new MusterClient({
        transport,
        servers: [transport === 'grpc' ? first.muster.grpcAddress : first.url],
        backoffMaxMs: 500,
      });
      clients.push(client);
      const reg = await client.register({
        service: 'restarted',
        host: '10.0.0.2',
        port: 8080,
        healthCheck: { ttl: 1 },
      });
      const states: RegistrationState[] = [];
      reg.on('state', (st) => states.push(st));
      const reregistered = new Promise<MusterError>((resolve) =>
        reg.once('reregistered', (_i, reason) => resolve(reason)),
      );

      await first.stop();
      await waitFor(() => reg.state === 'retrying', 3000, 'the registration to notice the registry is gone');
      const second = await startServer(ports, tempDir());
      const back = Date.now();
      try {
        const reason = await reregistered;
        const took = Date.now() - back;
        assert.equal(reason.code, 'NOT_FOUND');
        assert.ok(took <= 2000, `re-registered ${took} ms after the restart (2 x ttl = 2000 ms)`);
        const seen = await api(second.url, 'GET', `/v1/namespaces/default/services/restarted/instances`);
        assert.equal(seen.body.instances.length, 1);
        assert.equal(reg.state, 'registered');
        assert.ok(states.includes('retrying'));
      } finally {
        await reg.deregister();
        await second.stop();
      }
    });

    it('rejects what retrying cannot fix, with the typed error', async () => {
      const s = await startServer();
      try {
        const client = new MusterClient({ transport, servers: [transport === 'grpc' ? s.muster.grpcAddress : s.url] });
        clients.push(client);
        await assert.rejects(client.register({ service: 'bad', host: '10.0.0.3', port: 70000 }), (err: unknown) => {
          assert.ok(err instanceof MusterError);
          assert.equal(err.code, 'INVALID_ARGUMENT');
          assert.equal(err.field, 'port');
          return true;
        });
        await assert.rejects(client.register({ service: 'bad', namespace: 'nope', host: '10.0.0.3', port: 80 }), {
          code: 'NOT_FOUND',
        });
      } finally {
        await s.stop();
      }
    });

    it('a restarted provider whose earlier registration is still alive takes over once it expires', async () => {
      const s = await startServer({ 'health.sweepInterval': '100ms' });
      try {
        // The earlier process: registered the same endpoint, then died without deregistering.
        const before = await api(s.url, 'POST', '/v1/namespaces/default/services/restart/instances', {
          host: '10.0.0.5',
          port: 8080,
          healthCheck: { ttl: 1 },
        });
        assert.equal(before.status, 201);
        const client = new MusterClient({ transport, servers: [transport === 'grpc' ? s.muster.grpcAddress : s.url] });
        clients.push(client);
        const t0 = Date.now();
        const reg = await client.register({
          service: 'restart',
          host: '10.0.0.5',
          port: 8080,
          healthCheck: { ttl: 1 },
        });
        assert.equal(reg.state, 'retrying', 'the live twin holds the endpoint for now');
        await new Promise((resolve) => reg.once('registered', resolve));
        assert.ok(Date.now() - t0 < 5000, `took over after ${Date.now() - t0} ms (3 x ttl = 3000 ms)`);
        assert.equal(reg.id, before.body.instance.id);
        await reg.deregister();
      } finally {
        await s.stop();
      }
    });

    it('starts while no registry is reachable, and registers once one is', async () => {
      const probe = await startServer();
      const ports = { httpPort: probe.muster.port, grpcPort: probe.muster.grpcPort };
      const address = transport === 'grpc' ? probe.muster.grpcAddress : probe.url;
      await probe.stop();
      const client = new MusterClient({ transport, servers: [address], backoffMaxMs: 300, timeoutMs: 1000 });
      clients.push(client);
      const reg = await client.register({ service: 'early', host: '10.0.0.4', port: 8080, healthCheck: { ttl: 1 } });
      assert.equal(reg.state, 'retrying');
      const registered = new Promise((resolve) => reg.once('registered', resolve));
      const s = await startServer(ports);
      try {
        await registered;
        assert.equal((await api(s.url, 'GET', `/v1/instances/${reg.id}`)).status, 200);
      } finally {
        await reg.deregister();
        await s.stop();
      }
    });
  });
}

describe('SDK provider: many instances, one process', () => {
  it('keeps 200 instances alive over one client and one heartbeat stream', async () => {
    const s = await startServer({ 'health.sweepInterval': '100ms' });
    const client = new MusterClient({ servers: [s.muster.grpcAddress] });
    const metric = async (name: string) => {
      const text = (await api(s.url, 'GET', '/metrics')).body as string;
      return Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
    };
    try {
      const regs = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          client.register({ service: 'many', host: '10.1.0.1', port: 1000 + i, healthCheck: { ttl: 1 } }),
        ),
      );
      await new Promise((r) => setTimeout(r, 3500));
      const seen = await api(s.url, 'GET', '/v1/namespaces/default/services/many/instances');
      assert.equal(seen.body.instances.length, 200, 'all 200 stayed healthy');
      assert.ok(regs.every((r) => r.state === 'registered'));
      assert.ok(
        (await metric('muster_heartbeats_total{result="ok"}')) >= 200 * 5,
        'about two heartbeats a second each',
      );
      assert.equal(await metric('muster_grpc_requests_total{method="Heartbeat",code="OK"}'), 0, 'no unary heartbeats');
    } finally {
      await client.close();
      const left = await api(s.url, 'GET', '/v1/namespaces/default/services/many/instances?status=all');
      assert.equal(left.body.instances.length, 0, 'close() deregistered them');
      // A stream is counted when it ends: close() ended the one stream all heartbeats used.
      await waitFor(
        async () =>
          (await metric('muster_grpc_requests_total{method="HeartbeatStream",code="CANCELLED"}')) +
            (await metric('muster_grpc_requests_total{method="HeartbeatStream",code="OK"}')) ===
          1,
        2000,
        'the one heartbeat stream to be counted',
      );
      await s.stop();
    }
  });
});

describe('examples/provider.js', () => {
  it('registers, and deregisters on SIGTERM before it exits', async () => {
    const s = await startServer();
    try {
      const child = spawn(process.execPath, [path.join(repoRoot, 'examples', 'dist', 'provider.js')], {
        env: { ...process.env, MUSTER_SERVERS: s.muster.grpcAddress, PORT: '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
        child.once('exit', (code, signal) => resolve(signal ?? code)),
      );
      await waitFor(() => out.includes('serving on'), HUNG_AFTER_MS, `the example to start:\n${out}`);
      assert.equal(
        (await api(s.url, 'GET', '/v1/namespaces/default/services/example-provider/instances')).body.instances.length,
        1,
      );
      child.kill('SIGTERM');
      const how = await exited;
      assert.ok(how === 'SIGTERM' || how === 0, `exited by ${String(how)}:\n${out}`);
      const left = await api(s.url, 'GET', '/v1/namespaces/default/services/example-provider/instances?status=all');
      assert.equal(left.body.instances.length, 0, `deregistered before exit:\n${out}`);
    } finally {
      await s.stop();
    }
  });
});
