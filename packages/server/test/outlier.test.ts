import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { MusterClient, type Ejection, type ServiceRef } from '@muster/client';
import { HUNG_AFTER_MS, api, repoRoot, startServer, waitFor, type RunningServer } from './harness.js';

const SERVICE = 'example-provider';

/** examples/dist/provider.js: an HTTP server on a free port that registers itself (ttl 5 s). */
async function provider(grpcAddress: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [path.join(repoRoot, 'examples', 'dist', 'provider.js')], {
    env: { ...process.env, MUSTER_SERVERS: grpcAddress, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(
    () => /serving on 127\.0\.0\.1:\d+ .*\(registered\)/.test(out),
    HUNG_AFTER_MS,
    `the provider to register:\n${out}`,
  );
  return { child, port: Number(/serving on 127\.0\.0\.1:(\d+)/.exec(out)![1]) };
}

describe('outlier ejection: a crashed provider that the registry still lists', () => {
  let s: RunningServer;
  const children: ChildProcess[] = [];
  const clients: MusterClient[] = [];
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(clients.map((c) => c.close()));
    await s?.stop();
  });

  it('gets a few failed calls, then none while it stays ejected; it is tried again after a backoff that grows', async () => {
    s = await startServer();
    const [crashed, alive] = await Promise.all([provider(s.grpcAddress), provider(s.grpcAddress)]);
    children.push(crashed.child, alive.child);
    const client = (outlierDetection: boolean) => {
      const c = new MusterClient({ servers: [s.grpcAddress], outlierDetection: outlierDetection ? {} : false });
      clients.push(c);
      return c;
    };
    const guarded = client(true);
    const plain = client(false);
    const ejections: Array<ServiceRef & Ejection> = [];
    guarded.on('eject', (e) => ejections.push(e));
    for (const c of [guarded, plain])
      await waitFor(async () => (await c.discover(SERVICE)).instances.length === 2, HUNG_AFTER_MS, 'both providers');

    crashed.child.kill('SIGKILL');
    await new Promise((r) => crashed.child.once('exit', r));
    // One round of 60 calls each, alternating: what a consumer sees in the first moment after the crash.
    const failures = { guarded: 0, plain: 0 };
    const hit = (inst: { host: string; port: number }) =>
      fetch(`http://${inst.host}:${inst.port}/`).then((r) => r.text());
    for (let i = 0; i < 60; i++) {
      await guarded.call(SERVICE, hit).catch(() => failures.guarded++);
      await plain.call(SERVICE, hit).catch(() => failures.plain++);
    }
    const listed = await api(s.url, 'GET', `/v1/namespaces/default/services/${SERVICE}/instances`);
    assert.equal(listed.body.instances.length, 2, 'the registry still lists the crashed provider as healthy (ttl 5 s)');
    // 3 failures in a row eject it for 2 s; should the round outlast that (a loaded machine), each
    // try after an ejection costs one failure and ejects it for twice as long.
    const judged = () => {
      assert.ok(ejections.length >= 1);
      assert.deepEqual(
        ejections.map((e) => [e.service, e.ejectedForMs]),
        ejections.map((_, i) => [SERVICE, 2000 * 2 ** i]),
      );
      assert.ok(
        ejections.every((e) => e.id === ejections[0]!.id),
        'only the crashed provider',
      );
      assert.equal(
        failures.guarded,
        3 + (ejections.length - 1),
        `3 failures, then one per try after an ejection (without ejection: ${failures.plain} of 60 failed)`,
      );
    };
    judged();
    assert.ok(failures.plain >= 10, `without ejection about half fail: ${failures.plain} of 60`);

    // After its ejection it is picked again: one more failure ejects it for twice as long.
    const before = ejections.length;
    await waitFor(
      async () => {
        await guarded.call(SERVICE, hit).catch(() => failures.guarded++);
        return ejections.length > before;
      },
      HUNG_AFTER_MS,
      'the crashed provider to be tried again and ejected again',
    );
    judged();

    // attempts: 2 moves a failed call on to another instance: the caller sees no error at all.
    const retrying = client(true);
    await retrying.ready(SERVICE);
    for (let i = 0; i < 20; i++)
      assert.match(await retrying.call(SERVICE, hit, { attempts: 2 }), new RegExp(`^hello from ${alive.port}`));
  });
});
