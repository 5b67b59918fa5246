import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  MusterError,
  MusterHttpClient,
  type ClusterStatus,
  type DiscoverResponse,
  type RegisterResponse,
  type RegistryEvent,
} from '@muster/client';
import {
  HUNG_AFTER_MS,
  cleanEnv,
  musterBin,
  repoRoot,
  runMuster,
  startServer,
  waitFor,
  type RunResult as CliResult,
  type RunningServer,
} from './harness.js';

/** A loopback port nobody listens on. */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Runs `muster ...` as a child process. Async: the server under test lives in this process. */
const muster = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> => runMuster(args, env);

describe('the muster CLI through a whole instance life cycle', () => {
  let s: RunningServer;
  let client: MusterHttpClient;
  /** `muster --server <url> ...`, asserting exit 0 unless told otherwise. */
  let cli: (args: string[], expectCode?: number) => Promise<CliResult>;
  const cliJson = async <T>(args: string[]): Promise<T> => JSON.parse((await cli([...args, '-o', 'json'])).stdout) as T;
  const listed = (status: string) =>
    cliJson<DiscoverResponse>(['instances', 'ls', 'web', '-n', 'cli-ns', '--status', status]);

  let first: RegisterResponse;
  let second: { id: string; token: string };

  before(async () => {
    // Unhealthy instances stay listed for 5 s before cleanup: long enough for a `muster` child
    // process to see one even when the suite loads the machine.
    s = await startServer({ 'health.sweepInterval': '100ms', 'health.cleanupAfter': '5s' });
    client = new MusterHttpClient({ server: s.url });
    cli = async (args, expectCode = 0) => {
      const r = await muster(['--server', s.url, ...args]);
      assert.equal(
        r.code,
        expectCode,
        `muster ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`,
      );
      return r;
    };
  });
  after(() => s.stop());

  it('lists the one node of a single-node registry: muster cluster and GET /v1/cluster', async () => {
    const status = await cliJson<ClusterStatus>(['cluster']);
    assert.equal(status.mode, 'single');
    assert.equal(status.nodes.length, 1);
    assert.equal(status.nodes[0]!.httpAddress, s.url);
    assert.equal(status.nodes[0]!.leaseHolder, true);
    assert.equal(status.leaseHolder, status.nodes[0]!.id);
    const table = (await cli(['cluster'])).stdout;
    assert.match(table, /NODE\s+HTTP\s+GRPC/);
    assert.match(table, /\(this\).*holder/);
    assert.match(table, /single node: no cluster\.redis configured/);
  });

  it('creates and lists namespaces', async () => {
    assert.equal(
      (await cli(['namespaces', 'create', 'cli-ns', '--comment', 'made by the CLI test'])).stdout,
      'namespace "cli-ns" created\n',
    );
    const [all, ls, dup] = await Promise.all([
      cliJson<Array<{ name: string; comment: string }>>(['namespaces', 'ls']),
      cli(['ns', 'ls']),
      cli(['namespaces', 'create', 'cli-ns'], 1),
    ]);
    assert.deepEqual(
      all.map((n) => [n.name, n.comment]),
      [
        ['cli-ns', 'made by the CLI test'],
        ['default', 'created at first start'],
      ],
    );
    const table = ls.stdout.split('\n');
    assert.match(table[0]!, /^NAME\s+CREATED\s+COMMENT$/);
    assert.match(table[1]!, /^cli-ns\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+made by the CLI test$/);
    assert.equal(dup.stderr, 'muster: ALREADY_EXISTS: namespace "cli-ns" already exists\n');
    assert.equal(dup.stdout, '');
  });

  it('registers with a 2 s ttl; the instance stays healthy while the client heartbeats it', async () => {
    first = await cliJson<RegisterResponse>([
      'register',
      'web',
      '-n',
      'cli-ns',
      '--host',
      '10.0.0.1',
      '--port',
      '8080',
      '--ttl',
      '2',
      '--weight',
      '5',
      '--metadata',
      'env=test',
      'zone=a',
      '--metadata',
      'owner=cli',
    ]);
    assert.equal(first.created, true);
    assert.equal(first.instance.healthCheck.ttl, 2);
    assert.equal(first.instance.weight, 5);
    assert.deepEqual(first.instance.metadata, { env: 'test', zone: 'a', owner: 'cli' });
    const registeredAt = Date.now();

    let beating = true;
    const beats = (async () => {
      while (beating) {
        await client.heartbeat(first.instance.id, first.heartbeatToken);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    try {
      const [answer, table, services, shown] = await Promise.all([
        listed('all'),
        cli(['instances', 'ls', 'web', '-n', 'cli-ns']),
        cli(['services', 'ls', '-n', 'cli-ns']),
        cliJson<{ name: string; instanceCount: number; healthyInstanceCount: number }>([
          'services',
          'show',
          'web',
          '-n',
          'cli-ns',
        ]),
      ]);
      assert.deepEqual(
        answer.instances.map((i) => [i.id, i.healthy, i.isolate]),
        [[first.instance.id, true, false]],
      );
      const rows = table.stdout.trimEnd().split('\n');
      assert.match(rows[0]!, /^ID\s+ADDRESS\s+HEALTHY\s+ISOLATE\s+WEIGHT\s+HEARTBEAT\s+METADATA$/);
      assert.equal(rows.length, 2);
      assert.match(
        rows[1]!,
        new RegExp(
          `^${first.instance.id.slice(0, 12)}\\s+10\\.0\\.0\\.1:8080\\s+yes\\s+no\\s+5\\s+\\S+ ago\\s+env=test,owner=cli,zone=a$`,
        ),
      );
      assert.match(services.stdout, /^web\s+1\s+1\s+\d+\s/m);
      assert.deepEqual([shown.name, shown.instanceCount, shown.healthyInstanceCount], ['web', 1, 1]);

      // Past 3 × ttl since registration: only the heartbeats keep it healthy. (A ttl of 2 s, not 1 s:
      // on a loaded machine this loop's heartbeats could stall 3 s, and the history test below
      // asserts the exact events, with no unhealthy/healthy flap among them.)
      await waitFor(() => Date.now() - registeredAt > 6500, 8000, '6.5 s of heartbeats');
      const still = await listed('healthy');
      assert.deepEqual(
        still.instances.map((i) => i.id),
        [first.instance.id],
      );
      assert.ok(
        still.instances[0]!.lastHeartbeatAgeMs < 1000,
        `last heartbeat ${still.instances[0]!.lastHeartbeatAgeMs} ms ago`,
      );
    } finally {
      beating = false;
      await beats;
    }
  });

  it('shows it unhealthy within ~7 s of the last heartbeat, then cleanup removes it', async () => {
    const stoppedAt = Date.now();
    // Each poll spawns a `muster` process; the timing itself is asserted below from the server's own event.
    await waitFor(
      async () => (await listed('unhealthy')).instances.some((i) => i.id === first.instance.id),
      15_000,
      'instances ls --status unhealthy to show it',
    );
    assert.ok(Date.now() - stoppedAt >= 5500, 'not before 3 × ttl');
    // The server's own account is exact where polling through child processes is not.
    const [unhealthy] = await client.events({ namespace: 'cli-ns', type: 'instance.unhealthy' });
    const silentFor = unhealthy?.detail['lastHeartbeatAgeMs'] as number;
    assert.ok(
      silentFor >= 6000 && silentFor < 7000,
      `marked unhealthy ${silentFor} ms after the last heartbeat (3 × ttl = 6000)`,
    );
    assert.deepEqual((await listed('healthy')).instances, []);

    await waitFor(async () => (await listed('all')).instances.length === 0, 10_000, 'cleanup to remove it');
    await assert.rejects(
      client.heartbeat(first.instance.id, first.heartbeatToken),
      (e: unknown) => e instanceof MusterError && e.code === 'NOT_FOUND',
    );
  });

  it('registers again, isolates, and deregisters', async () => {
    const r = await cli(['register', 'web', '-n', 'cli-ns', '--host', '10.0.0.1', '--port', '8080', '--ttl', '30']);
    const id = /^id:\s+(\S+)$/m.exec(r.stdout)?.[1];
    const token = /^heartbeatToken:\s+(\S+)$/m.exec(r.stdout)?.[1];
    assert.ok(id && token, r.stdout);
    assert.equal(id, first.instance.id, 'the same endpoint is the same instance id');
    assert.match(r.stdout, /^status:\s+created$/m);
    second = { id, token };

    const [wrong, isolating] = await Promise.all([
      cli(['isolate', id, '--heartbeat-token', 'wrong'], 1),
      cli(['isolate', id, '--heartbeat-token', token]),
    ]);
    assert.equal(wrong.stderr, `muster: PERMISSION_DENIED: the token presented does not belong to instance "${id}"\n`);
    assert.equal(isolating.stdout, `instance ${id} isolated\n`);
    const [isolated, visible] = await Promise.all([
      cliJson<DiscoverResponse>(['instances', 'ls', 'web', '-n', 'cli-ns', '--isolated', 'true']),
      client.discover('cli-ns', 'web'),
    ]);
    assert.deepEqual(
      isolated.instances.map((i) => [i.id, i.isolate]),
      [[id, true]],
    );
    assert.deepEqual(!visible.notModified && visible.instances, [], 'an isolated instance is not discovered');

    assert.equal(
      (await cli(['isolate', id, '--heartbeat-token', token, '--off'])).stdout,
      `instance ${id} no longer isolated\n`,
    );
    assert.equal((await cli(['deregister', id, '--heartbeat-token', token])).stdout, `instance ${id} deregistered\n`);
    const [left, again] = await Promise.all([listed('all'), cli(['deregister', id, '--heartbeat-token', token], 1)]);
    assert.deepEqual(left.instances, []);
    assert.match(again.stderr, /^muster: NOT_FOUND: instance ".*" does not exist/);
  });

  it('lists the history as events', async () => {
    const [events, removed, latest, { stdout: table }, bogus] = await Promise.all([
      cliJson<RegistryEvent[]>(['events', '-n', 'cli-ns', '--service', 'web']),
      cliJson<RegistryEvent[]>([
        'events',
        '-n',
        'cli-ns',
        '--type',
        'instance.removed,instance.unhealthy',
        '--since',
        '5m',
      ]),
      cliJson<RegistryEvent[]>(['events', '-n', 'cli-ns', '--limit', '2']),
      cli(['events', '-n', 'cli-ns']),
      cli(['events', '--type', 'bogus'], 1),
    ]);
    const types = events.map((e) => e.type);
    assert.deepEqual(types, [
      'service.created',
      'instance.registered',
      'instance.unhealthy',
      'instance.removed',
      'instance.registered',
      'instance.isolated',
      'instance.unisolated',
      'instance.deregistered',
    ]);
    assert.ok(
      events.every((e, i) => i === 0 || e.id > events[i - 1]!.id),
      'oldest first',
    );

    assert.deepEqual(
      removed.map((e) => e.type),
      ['instance.unhealthy', 'instance.removed'],
    );
    assert.deepEqual(
      latest.map((e) => e.type),
      ['instance.unisolated', 'instance.deregistered'],
    );

    assert.match(table, /^ID\s+TIME\s+TYPE\s+NAMESPACE\s+SERVICE\s+INSTANCE\s+DETAIL$/m);
    assert.match(table, /^\d+\s+\S+ \S+\s+namespace\.created\s+cli-ns\s*$/m);
    assert.match(
      table,
      new RegExp(
        `instance\\.removed\\s+cli-ns\\s+web\\s+${second.id.slice(0, 12)}\\s+reason=unhealthy past cleanupAfter`,
      ),
    );
    assert.match(bogus.stderr, /^muster: INVALID_ARGUMENT: type must be/);
  });

  it('watch prints a snapshot block, and another after a change, until interrupted', async () => {
    const child = spawn(process.execPath, [musterBin, '--server', s.url, 'watch', 'web', '-n', 'cli-ns'], {
      cwd: repoRoot,
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await waitFor(
        () => /^# cli-ns\/web {2}revision \d+ {2}at /m.test(out),
        HUNG_AFTER_MS,
        `the first snapshot block (stdout: ${out}, stderr: ${err})`,
      );
      assert.match(out, /^\(no instances\)$/m);
      // A long ttl: the delete test below counts on this instance, however slowly the tests between run.
      await client.register('cli-ns', 'web', { host: '10.0.0.9', port: 9090, healthCheck: { ttl: 60 } });
      await waitFor(
        () => /10\.0\.0\.9:9090\s+yes\s+no\s+100/.test(out),
        5000,
        `a snapshot with the new instance (stdout: ${out})`,
      );
      assert.equal(out.match(/^# cli-ns\/web/gm)?.length, 2, 'one block per snapshot');
    } finally {
      child.kill('SIGINT');
    }
    assert.equal(await exited, 0, `watch exits 0 on Ctrl-C (stderr: ${err})`);
    assert.equal(err, '');
  });

  it('reports errors as "muster: CODE: message" with exit 1, usage errors with exit 2', async () => {
    const port = await closedPort();
    const [missing, noService, badPort, down, viaEnv, ...usage] = await Promise.all([
      cli(['services', 'ls', '-n', 'nope'], 1),
      cli(['watch', 'nothing', '-n', 'cli-ns'], 1),
      cli(['register', 'web', '--host', 'h', '--port', '0'], 1),
      muster(['namespaces', 'ls'], { MUSTER_SERVER: `http://127.0.0.1:${port}` }),
      muster(['namespaces', 'ls', '-o', 'json'], { MUSTER_SERVER: s.url }),
      cli(['register', 'web', '--host', 'h'], 2),
      cli(['register', 'web', '--host', 'h', '--port', 'eighty'], 2),
      cli(['instances', 'ls', 'web', '--status', 'sick'], 2),
      cli(['ns', 'ls', '-o', 'yaml'], 2),
    ]);
    assert.equal(missing.stderr, 'muster: NOT_FOUND: namespace "nope" does not exist\n');
    assert.equal(noService.stderr, 'muster: NOT_FOUND: service "nothing" does not exist in namespace "cli-ns"\n');
    assert.match(badPort.stderr, /^muster: INVALID_ARGUMENT: port must be/);
    assert.equal(down.code, 1);
    assert.match(down.stderr, new RegExp(`^muster: UNAVAILABLE: .*ECONNREFUSED 127\\.0\\.0\\.1:${port}`));
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.deepEqual(
      JSON.parse(viaEnv.stdout).map((n: { name: string }) => n.name),
      ['cli-ns', 'default'],
    );
    for (const u of usage) assert.match(u.stderr, /^error: /);
  });

  it('deletes the service (only with --force while it has instances) and the namespace', async () => {
    const refused = await cli(['services', 'delete', 'web', '-n', 'cli-ns'], 1);
    assert.match(
      refused.stderr,
      /^muster: FAILED_PRECONDITION: service "web" in namespace "cli-ns" still has 1 instance/,
    );
    assert.equal(
      (await cli(['services', 'delete', 'web', '-n', 'cli-ns', '--force'])).stdout,
      'service "web" deleted from namespace "cli-ns"\n',
    );
    assert.equal((await cli(['namespaces', 'delete', 'cli-ns'])).stdout, 'namespace "cli-ns" deleted\n');
    assert.deepEqual(
      (await cliJson<Array<{ name: string }>>(['namespaces', 'ls'])).map((n) => n.name),
      ['default'],
    );
  });
});

describe("the muster CLI on a server with auth on, as by default: the access token and an instance's token kept apart", () => {
  let s: RunningServer;
  let admin: string;
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) => muster(['--server', s.url, ...args], env);
  before(async () => {
    s = await startServer({ 'auth.enabled': true });
    admin = fs.readFileSync(path.join(s.dataDir, 'admin.token'), 'utf8').trim();
  });
  after(() => s.stop());

  it('isolate takes the access token (--token or MUSTER_TOKEN); deregister takes --heartbeat-token or the access token; --access-token still works, with a note', async () => {
    const registered = await run(['register', 'auth-web', '--host', '10.0.0.1', '--port', '8080', '-o', 'json']);
    assert.equal(registered.code, 0, registered.stderr);
    const {
      instance: { id },
      heartbeatToken,
    } = JSON.parse(registered.stdout) as RegisterResponse;

    const byEnv = await run(['isolate', id], { MUSTER_TOKEN: admin });
    assert.equal(byEnv.stdout, `instance ${id} isolated\n`, byEnv.stderr);
    const byFlag = await run(['isolate', id, '--off', '--token', admin]);
    assert.equal(byFlag.stdout, `instance ${id} no longer isolated\n`, byFlag.stderr);
    const old = await run(['--access-token', admin, 'isolate', id]);
    assert.equal(old.stdout, `instance ${id} isolated\n`, old.stderr);
    assert.equal(old.stderr, 'muster: note: --access-token is now --token (or MUSTER_TOKEN); the old name will go\n');
    const instanceToken = await run(['isolate', id, '--off', '--heartbeat-token', heartbeatToken], {
      MUSTER_TOKEN: admin,
    });
    assert.equal(instanceToken.code, 1);
    assert.match(
      instanceToken.stderr,
      /^muster: UNAUTHENTICATED: this is a management API, and the token sent is not an access token: .* or it is an instance's heartbeatToken/,
    );
    const none = await run(['isolate', id, '--off']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /^muster: UNAUTHENTICATED: /);

    const again = await run([
      'register',
      'auth-web',
      '--host',
      '10.0.0.1',
      '--port',
      '8080',
      '--weight',
      '7',
      '--heartbeat-token',
      heartbeatToken,
    ]);
    assert.match(again.stdout, /^status:\s+updated$/m, again.stderr);
    const other = JSON.parse(
      (await run(['register', 'auth-web', '--host', '10.0.0.2', '--port', '8080', '-o', 'json'])).stdout,
    ) as RegisterResponse;
    assert.equal(
      (await run(['deregister', id, '--heartbeat-token', heartbeatToken])).stdout,
      `instance ${id} deregistered\n`,
    );
    assert.equal(
      (await run(['deregister', other.instance.id], { MUSTER_TOKEN: admin })).stdout,
      `instance ${other.instance.id} deregistered\n`,
    );
  });
});
