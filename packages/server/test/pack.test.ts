import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import {
  HUNG_AFTER_MS,
  cleanEnv,
  repoRoot,
  runMuster,
  spawnMuster,
  tempDir,
  waitFor,
  type ChildServer,
} from './harness.js';

/**
 * The newcomer's path outside this repository: the packages packed as npm publishes them,
 * installed by npm into empty projects (dependencies come from the npm registry, from the local
 * cache when it has them), then a provider and a consumer of the SDK run against a server of the
 * packed server package.
 */
const INSTALL_HUNG_AFTER_MS = 30 * 60_000;

/**
 * The server's install would compile better-sqlite3 from source (no prebuilt binary can be
 * downloaded here): minutes on 2 cores, over ten under load, and that compile is
 * better-sqlite3's own, not the packaging under test. So the registry project installs without
 * install scripts and takes the addon this repository built for the same version; another
 * version is rebuilt.
 */
async function provideSqliteAddon(project: string): Promise<void> {
  const version = (dir: string) =>
    (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;
  const ours = path.join(repoRoot, 'node_modules', 'better-sqlite3');
  const theirs = path.join(project, 'node_modules', 'better-sqlite3');
  const addon = path.join('build', 'Release', 'better_sqlite3.node');
  if (version(ours) === version(theirs) && fs.existsSync(path.join(ours, addon))) {
    fs.mkdirSync(path.dirname(path.join(theirs, addon)), { recursive: true });
    fs.copyFileSync(path.join(ours, addon), path.join(theirs, addon));
    return;
  }
  const r = await runMuster(['rebuild', 'better-sqlite3'], {}, ['npm'], {
    cwd: project,
    hungAfterMs: INSTALL_HUNG_AFTER_MS,
  });
  assert.equal(r.code, 0, r.stdout + r.stderr);
}

function project(dir: string, name: string): string {
  const p = path.join(dir, name);
  fs.mkdirSync(p);
  fs.writeFileSync(
    path.join(p, 'package.json'),
    `${JSON.stringify({ name, private: true, type: 'module' }, null, 2)}\n`,
  );
  return p;
}

async function npmInstall(cwd: string, tarballs: string[], flags: string[] = []): Promise<string> {
  const r = await runMuster(
    ['install', '--no-audit', '--no-fund', '--prefer-offline', ...flags, ...tarballs],
    {},
    ['npm'],
    { cwd, hungAfterMs: INSTALL_HUNG_AFTER_MS },
  );
  const out = r.stdout + r.stderr;
  assert.equal(r.code, 0, `npm install ${tarballs.map((t) => path.basename(t)).join(' ')} in ${cwd}:\n${out}`);
  return out;
}

const PROVIDER = `
import http from 'node:http';
import { MusterClient } from '@muster/client';

const server = http.createServer((_req, res) => res.end('hello from the packed provider'));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const client = new MusterClient({ servers: [process.env.REGISTRY] });
const reg = await client.register({ service: 'packed', host: '127.0.0.1', port: server.address().port, deregisterOnExit: true });
console.log(\`registered \${reg.id} \${reg.state}\`);
process.once('SIGTERM', () => server.close());
`;

const CONSUMER = `
import { MusterClient } from '@muster/client';

const client = new MusterClient({ servers: [process.env.REGISTRY] });
await client.ready('packed');
console.log('waiting');
while (!client.pick('packed')) await new Promise((resolve) => setTimeout(resolve, 20));
const answer = await client.call('packed', (i) => fetch(\`http://\${i.host}:\${i.port}/\`).then((r) => r.text()));
console.log(JSON.stringify({ answer, source: (await client.discover('packed')).source }));
await client.close();
`;

/** The SDK's types resolve from the installed package: a strict TypeScript consumer compiles. */
const TYPED = `
import { MusterClient, MusterError, type DiscoveredInstance } from '@muster/client';

const client = new MusterClient({ servers: ['127.0.0.1:8091'], outlierDetection: { maxEjectedShare: 0.3 } });
const picked: DiscoveredInstance | undefined = client.pick('packed');
const failed: MusterError = new MusterError('UNAVAILABLE', String(picked?.port));
export { client, failed };
`;

describe('the packed packages, installed outside the repository', () => {
  const work = tempDir('muster-pack-');
  const children: ChildServer[] = [];
  after(async () => {
    await Promise.all(children.map((c) => c.stop()));
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('install from their tarballs into empty projects; a provider and a consumer of the SDK run against the packed server', async () => {
    const packed = await runMuster([path.join(repoRoot, 'scripts', 'pack.mjs'), path.join(work, 'tarballs')], {}, [
      process.execPath,
    ]);
    assert.equal(packed.code, 0, packed.stderr);
    const tarballs = packed.stdout.trim().split('\n');
    assert.deepEqual(
      tarballs.map((t) => path.basename(t)),
      ['muster-api-0.1.0.tgz', 'muster-client-0.1.0.tgz', 'muster-server-0.1.0.tgz'],
    );
    const [apiTgz, clientTgz, serverTgz] = tarballs as [string, string, string];

    // The SDK alone (no server, nothing native), and the server with the muster command.
    const sdk = project(work, 'sdk-app');
    const registry = project(work, 'registry');
    const outputs = await Promise.all([
      npmInstall(sdk, [apiTgz, clientTgz]),
      npmInstall(registry, [apiTgz, clientTgz, serverTgz], ['--ignore-scripts']),
    ]);
    await provideSqliteAddon(registry);
    for (const out of outputs) assert.doesNotMatch(out, /EBADENGINE/, out);
    assert.deepEqual(Object.keys(JSON.parse(fs.readFileSync(path.join(sdk, 'package.json'), 'utf8')).dependencies), [
      '@muster/api',
      '@muster/client',
    ]);
    assert.ok(!fs.existsSync(path.join(sdk, 'node_modules', 'better-sqlite3')), 'the SDK has no native dependency');
    for (const p of ['api', 'client'])
      assert.ok(
        fs.existsSync(path.join(sdk, 'node_modules', '@muster', p, 'LICENSE')),
        `@muster/${p} ships its LICENSE`,
      );

    const muster = path.join(registry, 'node_modules', '.bin', 'muster');
    const version = await runMuster(['--version'], {}, [muster], { cwd: registry });
    assert.equal(version.stdout, '0.1.0\n', version.stderr);
    const dataDir = path.join(work, 'data');
    const server = await spawnMuster(
      ['--http-port', '0', '--grpc-port', '0', '--data-dir', dataDir],
      cleanEnv(),
      dataDir,
      [muster],
      registry,
    );
    children.push(server);
    assert.ok(fs.existsSync(path.join(dataDir, 'admin.token')), 'the packed server created its data');

    fs.writeFileSync(path.join(sdk, 'provider.mjs'), PROVIDER);
    fs.writeFileSync(path.join(sdk, 'consumer.mjs'), CONSUMER);
    fs.writeFileSync(path.join(sdk, 'typed.ts'), TYPED);
    const env = cleanEnv({ REGISTRY: server.grpcAddress });
    const start = (file: string) => {
      const child = spawn(process.execPath, [file], { cwd: sdk, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      return { child, exited, output: () => out };
    };
    // The consumer first: it watches a service that has no instance yet.
    const consumer = start('consumer.mjs');
    await waitFor(
      () => consumer.output().includes('waiting'),
      HUNG_AFTER_MS,
      `the consumer to start:\n${consumer.output()}`,
    );
    const provider = start('provider.mjs');
    try {
      await waitFor(
        () => /registered \S+ registered/.test(provider.output()),
        HUNG_AFTER_MS,
        `the provider to register:\n${provider.output()}`,
      );
      assert.equal(await consumer.exited, 0, consumer.output());
      assert.deepEqual(JSON.parse(consumer.output().trim().split('\n').at(-1)!), {
        answer: 'hello from the packed provider',
        source: 'watch',
      });

      const listed = await runMuster(
        ['--server', server.url, 'instances', 'ls', 'packed', '-o', 'json'],
        {},
        [muster],
        { cwd: registry },
      );
      assert.equal(listed.code, 0, listed.stderr);
      assert.equal(JSON.parse(listed.stdout).instances.length, 1);
    } finally {
      provider.child.kill('SIGTERM');
      await provider.exited;
    }

    const tsc = await runMuster(
      [
        '--noEmit',
        '--strict',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--target',
        'es2022',
        '--types',
        'node',
        '--typeRoots',
        path.join(repoRoot, 'node_modules', '@types'),
        'typed.ts',
      ],
      {},
      [process.execPath, path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc')],
      { cwd: sdk },
    );
    assert.equal(tsc.code, 0, `a TypeScript consumer of the installed SDK compiles:\n${tsc.stdout}${tsc.stderr}`);
  });
});
