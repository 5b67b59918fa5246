import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { OPTIONS, envName, flagName } from '../src/config/options.js';
import { api, cleanEnv, runMuster, spawnMuster, spawnServer, tempDir, type RunResult } from './harness.js';

/**
 * `muster server` as its users run it: a child process reading flags, MUSTER_* variables and a
 * YAML file. Bad configuration must stop it before it touches anything, with exit code 2.
 */

const dirs: string[] = [];
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function dir(): string {
  const d = tempDir('muster-cli-test-');
  dirs.push(d);
  return d;
}

function yamlFile(text: string): string {
  const file = path.join(dir(), 'muster.yaml');
  fs.writeFileSync(file, text);
  return file;
}

const muster = (args: string[], env: NodeJS.ProcessEnv = {}) => runMuster(args, env);

/**
 * Like the harness's spawnServer, but with the caller's arguments only: spawnServer always passes
 * --http-port and --data-dir, which would hide what the environment and the file set.
 */
async function startMuster(args: string[], env: NodeJS.ProcessEnv = {}) {
  const server = await spawnMuster(args, cleanEnv(env));
  children.push(server.child);
  return server;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const register = (url: string, svc: string) =>
  api(url, 'POST', `/v1/namespaces/default/services/${svc}/instances`, { host: '10.0.0.1', port: 8080 });

describe('muster server: bad configuration exits 2 and names the key', { concurrency: true }, () => {
  it('a flag value out of range', async () => {
    const data = dir();
    const r = await muster(['server', '--http-port', '70000', '--data-dir', data]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /invalid value "70000" for httpPort \(from flag --http-port\): must be an integer in 0\.\.65535/,
    );
    assert.deepEqual(fs.readdirSync(data), [], 'nothing was created before the configuration was checked');
  });

  it('an environment variable out of range', async () => {
    const r = await muster(['server', '--data-dir', dir()], { MUSTER_HEALTH_PROTECT_RATIO: '2' });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /health\.protectRatio/);
    assert.match(r.stderr, /environment variable MUSTER_HEALTH_PROTECT_RATIO/);
    assert.match(r.stderr, /a number in 0\.\.1/);
  });

  it('an unknown key in the YAML file, given by --config or MUSTER_CONFIG', async () => {
    const file = yamlFile('health:\n  cleanupAfer: 30m\n');
    const runs = await Promise.all([
      muster(['server', '--config', file, '--data-dir', dir()]),
      muster(['server', '-c', file, '--data-dir', dir()]),
      muster(['server', '--data-dir', dir()], { MUSTER_CONFIG: file }),
    ]);
    for (const r of runs) {
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /unknown option "health\.cleanupAfer"/);
      assert.ok(r.stderr.includes(file), `names the file: ${r.stderr}`);
    }
  });

  it('a bad value in the YAML file', async () => {
    const file = yamlFile('store:\n  type: postgres\n');
    const r = await muster(['server', '--config', file, '--data-dir', dir()]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /store\.type/);
    assert.match(r.stderr, /one of sqlite, mysql, memory/);
  });

  it('a config file that does not exist', async () => {
    const r = await muster(['server', '--config', path.join(dir(), 'nope.yaml')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /cannot read config file .*nope\.yaml/);
  });

  it('usage errors: an unknown flag, a flag without its value', async () => {
    const [unknown, missing] = await Promise.all([
      muster(['server', '--htp-port', '1']),
      muster(['server', '--http-port']),
    ]);
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.match(unknown.stderr, /unknown option '--htp-port'/);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /--http-port <value>' argument missing/);
  });

  it('npm start -- FLAGS passes the flags through to the server', async (t) => {
    let r: RunResult;
    try {
      r = await runMuster(['start', '--silent', '--', '--http-port', '70000', '--data-dir', dir()], {}, ['npm']);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return t.skip('npm is not on PATH');
      throw err;
    }
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /invalid value "70000" for httpPort \(from flag --http-port\)/);
  });
});

describe('muster server --help', { concurrency: true }, () => {
  it('lists every option of the table with its flag, default and environment variable', async () => {
    const r = await muster(['server', '--help']);
    assert.equal(r.code, 0, r.stderr);
    // Help is wrapped to the terminal width: compare with runs of whitespace collapsed.
    const help = r.stdout.replace(/\s+/g, ' ');
    assert.match(help, /-c, --config <file>/);
    for (const o of OPTIONS) {
      assert.ok(
        help.includes(`${flagName(o.key)} ${o.type.kind === 'bool' ? '[value]' : '<value>'}`),
        `--help lists ${flagName(o.key)}`,
      );
      assert.ok(
        help.includes(`(default: ${o.default}; env ${envName(o.key)})`),
        `--help gives the default and env of ${o.key}`,
      );
    }
  });
});

describe('muster server: starting and stopping', { concurrency: true }, () => {
  it('--http-port 0 --data-dir DIR starts, writes DIR/muster.db, and exits 0 on SIGTERM', async () => {
    const data = dir();
    const server = await spawnServer({}, data);
    try {
      assert.ok(fs.existsSync(path.join(data, 'muster.db')), 'the database is in the data dir');
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const health = await api(server.url, 'GET', '/healthz');
      assert.equal(health.status, 200);
      assert.equal((await register(server.url, 'cli-start')).status, 201);
    } finally {
      assert.equal(await server.kill('SIGTERM'), 0, server.output());
    }
    assert.match(server.output(), /"msg":"stopped"/);
    // log.requests defaults to writes: the registration is a line, the health check is not.
    assert.match(
      server.output(),
      /"route":"\/v1\/namespaces\/:ns\/services\/:svc\/instances","url":"[^"]*","status":201,"latencyMs":[\d.]+,"msg":"request"/,
    );
    assert.doesNotMatch(server.output(), /"route":"\/healthz"/);
  });

  it('--log-requests none writes no request lines', async () => {
    const server = await spawnServer({ 'log.requests': 'none' }, dir());
    try {
      assert.equal((await register(server.url, 'quiet')).status, 201);
    } finally {
      assert.equal(await server.kill('SIGTERM'), 0, server.output());
    }
    assert.doesNotMatch(server.output(), /"msg":"request"/);
  });

  it('--config FILE sets options', async () => {
    const data = dir();
    const file = yamlFile(
      [
        'httpPort: 0',
        'grpcPort: 0',
        `dataDir: ${JSON.stringify(data)}`,
        'autoCreateService: false',
        'http:',
        '  bodyLimit: 2048',
      ].join('\n'),
    );
    const server = await startMuster(['--config', file]);
    try {
      assert.ok(fs.existsSync(path.join(data, 'muster.db')), 'dataDir came from the file');
      const refused = await register(server.url, 'not-created');
      assert.equal(refused.status, 404, JSON.stringify(refused.body));
      assert.match(refused.body.error.message, /autoCreateService is off/);
      const big = await api(server.url, 'POST', '/v1/namespaces/default/services/big/instances', {
        host: '10.0.0.1',
        port: 80,
        metadata: { x: 'x'.repeat(3000) },
      });
      assert.equal(big.status, 413, 'http.bodyLimit came from the file');
    } finally {
      assert.equal(await server.kill('SIGTERM'), 0, server.output());
    }
  });

  it('MUSTER_HTTP_PORT, MUSTER_GRPC_PORT and MUSTER_DATA_DIR set the ports and the data dir', async () => {
    const port = await freePort();
    let grpcPort = await freePort();
    while (grpcPort === port) grpcPort = await freePort();
    const data = dir();
    const server = await startMuster([], {
      MUSTER_HTTP_PORT: String(port),
      MUSTER_GRPC_PORT: String(grpcPort),
      MUSTER_DATA_DIR: data,
    });
    try {
      assert.equal(server.url, `http://127.0.0.1:${port}`);
      assert.match(server.output(), new RegExp(`"grpc":"127\\.0\\.0\\.1:${grpcPort}"`));
      assert.equal((await api(server.url, 'GET', '/healthz')).status, 200);
      assert.ok(fs.existsSync(path.join(data, 'muster.db')));
    } finally {
      assert.equal(await server.kill('SIGTERM'), 0, server.output());
    }
  });

  it('file < env < flags when all three are given', async () => {
    const [fromFile, fromEnv, fromFlag] = [dir(), dir(), dir()];
    const file = yamlFile(
      [`dataDir: ${JSON.stringify(fromFile)}`, 'autoCreateService: false', 'httpPort: 1'].join('\n'),
    );
    const server = await startMuster(['--http-port', '0', '--grpc-port', '0', '--data-dir', fromFlag], {
      MUSTER_CONFIG: file,
      MUSTER_DATA_DIR: fromEnv,
      MUSTER_AUTO_CREATE_SERVICE: 'true',
    });
    try {
      assert.ok(fs.existsSync(path.join(fromFlag, 'muster.db')), 'the flag wins');
      assert.ok(!fs.existsSync(path.join(fromEnv, 'muster.db')) && !fs.existsSync(path.join(fromFile, 'muster.db')));
      assert.equal(
        (await register(server.url, 'env-beats-file')).status,
        201,
        'MUSTER_AUTO_CREATE_SERVICE beats the file',
      );
    } finally {
      assert.equal(await server.kill('SIGTERM'), 0, server.output());
    }
  });
});
