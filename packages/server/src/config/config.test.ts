import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, loadConfig, parseDuration, type MusterConfig } from './config.js';
import { OPTIONS, envName, flagName } from './options.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'muster-config-test-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function yamlFile(text: string): string {
  const file = path.join(dir, `muster-${++fileCount}.yaml`);
  fs.writeFileSync(file, text);
  return file;
}

/** The value of one option in a loaded config, by its dotted key. */
function get(config: MusterConfig, key: string): unknown {
  return key.split('.').reduce<unknown>((o, p) => (o as Record<string, unknown>)[p], config);
}

const fromFlag = (key: string, raw: unknown) => get(loadConfig({ flags: { [key]: raw } }), key);

/** Asserts a ConfigError whose message matches every pattern. */
function rejects(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('config: sources and precedence', () => {
  it('uses the defaults of the option table when nothing is given', () => {
    const c = loadConfig();
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.httpPort, 8090);
    assert.equal(c.grpcPort, 8091);
    assert.equal(c.dataDir, './data');
    assert.deepEqual(c.store, {
      type: 'sqlite',
      url: '',
      sqlite: { synchronous: 'full' },
      mysql: { poolSize: 10, commitsInFlight: 4, writeTimeout: 5000 },
    });
    assert.equal(c.autoCreateService, true);
    assert.equal(c.health.cleanupAfter, 3_600_000);
    assert.equal(c.health.protectRatio, 0.5);
    assert.equal(c.health.protectMin, 10);
    assert.equal(c.events.maxAge, 7 * 86_400_000);
    assert.equal(c.log.requests, 'writes');
    assert.equal(c.shutdownTimeout, 10_000);
    for (const o of OPTIONS) assert.notEqual(get(c, o.key), undefined, `${o.key} has a value`);
  });

  it('file < env < flags: each source overrides the previous one, key by key', () => {
    const file = yamlFile(
      ['httpPort: 9001', 'dataDir: /from/file', 'health:', '  cleanupAfter: 30m', '  protectMin: 20'].join('\n'),
    );
    const c = loadConfig({
      file,
      env: { MUSTER_HTTP_PORT: '9002', MUSTER_HEALTH_CLEANUP_AFTER: '2h' },
      flags: { httpPort: '9003' },
    });
    assert.equal(c.httpPort, 9003, 'flag beats env and file');
    assert.equal(c.health.cleanupAfter, 7_200_000, 'env beats file');
    assert.equal(c.health.protectMin, 20, 'file beats default');
    assert.equal(c.dataDir, '/from/file');
    assert.equal(c.host, '127.0.0.1', 'untouched keys keep their default');
  });

  it('reads nested YAML sections, dotted keys and deeper nesting alike', () => {
    const c = loadConfig({
      file: yamlFile(
        [
          'health:',
          '  cleanupAfter: 30m',
          '  protectRatio: 0.25',
          'health.protectMin: 3',
          'store:',
          '  type: memory',
          '  sqlite:',
          '    synchronous: normal',
          'log: { level: warn, requests: none }',
        ].join('\n'),
      ),
    });
    assert.equal(c.health.cleanupAfter, 30 * 60_000);
    assert.equal(c.health.protectRatio, 0.25);
    assert.equal(c.health.protectMin, 3);
    assert.deepEqual(c.store, {
      type: 'memory',
      url: '',
      sqlite: { synchronous: 'normal' },
      mysql: { poolSize: 10, commitsInFlight: 4, writeTimeout: 5000 },
    });
    assert.deepEqual(c.log, { level: 'warn', requests: 'none' });
  });

  it('accepts an empty file and sections whose options are all commented out', () => {
    assert.deepEqual(loadConfig({ file: yamlFile('') }), loadConfig());
    assert.deepEqual(
      loadConfig({ file: yamlFile('# nothing yet\nhealth:\n  # cleanupAfter: 30m\nstore:\n  sqlite:\n') }),
      loadConfig(),
    );
  });

  it('names environment variables MUSTER_ plus the key in upper snake case, and ignores empty ones', () => {
    assert.equal(envName('httpPort'), 'MUSTER_HTTP_PORT');
    assert.equal(envName('grpcPort'), 'MUSTER_GRPC_PORT');
    assert.equal(envName('store.sqlite.synchronous'), 'MUSTER_STORE_SQLITE_SYNCHRONOUS');
    assert.equal(envName('health.protectRatio'), 'MUSTER_HEALTH_PROTECT_RATIO');
    const c = loadConfig({
      env: {
        MUSTER_STORE_SQLITE_SYNCHRONOUS: 'normal',
        MUSTER_HTTP_PORT: '',
        MUSTER_NO_SUCH_OPTION: 'x',
        PATH: '/bin',
      },
    });
    assert.equal(c.store.sqlite.synchronous, 'normal');
    assert.equal(c.httpPort, 8090, 'an empty variable counts as unset');
  });

  it('names flags -- plus the key in kebab case', () => {
    assert.equal(flagName('httpPort'), '--http-port');
    assert.equal(flagName('grpcPort'), '--grpc-port');
    assert.equal(flagName('store.sqlite.synchronous'), '--store-sqlite-synchronous');
    assert.equal(flagName('watch.maxBufferedBytes'), '--watch-max-buffered-bytes');
  });

  it('ignores flags that were not given', () => {
    assert.equal(loadConfig({ env: { MUSTER_HTTP_PORT: '9002' }, flags: { httpPort: undefined } }).httpPort, 9002);
  });
});

describe('config: value types', () => {
  it('parses durations: ms, s, m, h, d, decimals, and bare numbers as milliseconds', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration('7d'), 604_800_000);
    assert.equal(parseDuration('1.5h'), 5_400_000);
    assert.equal(parseDuration(' 5m '), 300_000);
    assert.equal(parseDuration('250'), 250);
    assert.equal(parseDuration(250), 250);
    for (const bad of ['', '-1s', '1w', '5 m', '5M', 's', '1h30m', 'soon'])
      assert.equal(parseDuration(bad), undefined, bad);
    assert.equal(parseDuration(-5), undefined);
    assert.equal(parseDuration(Number.NaN), undefined);
    assert.equal(parseDuration(true), undefined);
  });

  it('checks duration ranges, and 0 only where it turns the option off', () => {
    assert.equal(fromFlag('health.sweepInterval', '10ms'), 10);
    assert.equal(fromFlag('health.sweepInterval', '1m'), 60_000);
    rejects(() => fromFlag('health.sweepInterval', '9ms'), /from 10ms to 1m/);
    rejects(() => fromFlag('health.sweepInterval', '61s'), /from 10ms to 1m/);
    rejects(() => fromFlag('health.sweepInterval', '0'), /health\.sweepInterval/);
    assert.equal(fromFlag('health.cleanupAfter', '0'), 0);
    assert.equal(fromFlag('health.cleanupAfter', '0s'), 0);
    assert.equal(fromFlag('discovery.cacheTtl', '0'), 0);
    assert.equal(fromFlag('events.maxAge', '30d'), 30 * 86_400_000);
    rejects(() => fromFlag('events.maxAge', '30s'), /from 1m to 3650d/);
  });

  it('takes durations from YAML as strings or as numbers of milliseconds', () => {
    const c = loadConfig({ file: yamlFile('health:\n  sweepInterval: 250\n  flushInterval: 2s\n') });
    assert.equal(c.health.sweepInterval, 250);
    assert.equal(c.health.flushInterval, 2000);
  });

  it('parses integers within their range only', () => {
    assert.equal(fromFlag('httpPort', '0'), 0);
    assert.equal(fromFlag('httpPort', '65535'), 65535);
    assert.equal(fromFlag('httpPort', 8080), 8080);
    for (const bad of ['65536', '-1', '80.5', 'abc', '', '8o8o'])
      rejects(() => fromFlag('httpPort', bad), /httpPort/, /an integer in 0\.\.65535/);
    rejects(() => fromFlag('batch.maxSize', '0'), /an integer in 1\.\.10000/);
    assert.equal(fromFlag('batch.maxSize', '10000'), 10000);
  });

  it('parses numbers, fractions included, within their range only', () => {
    assert.equal(fromFlag('health.protectRatio', '0'), 0);
    assert.equal(fromFlag('health.protectRatio', '1'), 1);
    assert.equal(fromFlag('health.protectRatio', '0.25'), 0.25);
    for (const bad of ['1.01', '-0.1', 'half', 'NaN', 'Infinity'])
      rejects(() => fromFlag('health.protectRatio', bad), /a number in 0\.\.1/);
  });

  it('parses booleans: true/false, 1/0, yes/no and YAML booleans', () => {
    for (const t of ['true', '1', 'yes', true]) assert.equal(fromFlag('autoCreateService', t), true, String(t));
    for (const f of ['false', '0', 'no', false]) assert.equal(fromFlag('autoCreateService', f), false, String(f));
    for (const bad of ['maybe', 'TRUE', '2', ''])
      rejects(() => fromFlag('autoCreateService', bad), /autoCreateService/, /true or false/);
    assert.equal(loadConfig({ file: yamlFile('autoCreateService: false\n') }).autoCreateService, false);
  });

  it('parses enums exactly, and lists the allowed values when one is wrong', () => {
    assert.equal(fromFlag('store.type', 'memory'), 'memory');
    assert.equal(fromFlag('log.level', 'silent'), 'silent');
    rejects(() => fromFlag('store.type', 'postgres'), /store\.type/, /one of sqlite, mysql, memory/);
    rejects(() => fromFlag('log.level', 'INFO'), /one of fatal, error, warn, info, debug, trace, silent/);
  });

  it('refuses empty strings and non-strings for string options', () => {
    assert.equal(fromFlag('dataDir', '/var/lib/muster'), '/var/lib/muster');
    rejects(() => fromFlag('dataDir', ''), /dataDir/);
    rejects(() => loadConfig({ file: yamlFile('host: [a, b]\n') }), /host/);
  });

  it('accepts every default of the option table as its own value', () => {
    for (const o of OPTIONS) assert.doesNotThrow(() => fromFlag(o.key, String(o.default)), o.key);
  });
});

describe('config: the MySQL store', () => {
  const url = 'mysql://muster:s3cret@db.internal:3306/muster';

  it('takes store.type mysql with its URL, pool size and write timeout from any source', () => {
    const c = loadConfig({
      env: { MUSTER_STORE_TYPE: 'mysql', MUSTER_STORE_URL: url, MUSTER_STORE_MYSQL_POOL_SIZE: '20' },
      flags: { 'store.mysql.writeTimeout': '2s' },
    });
    assert.deepEqual(c.store, {
      type: 'mysql',
      url,
      sqlite: { synchronous: 'full' },
      mysql: { poolSize: 20, commitsInFlight: 4, writeTimeout: 2000 },
    });
    const f = loadConfig({
      file: yamlFile(
        `store:\n  type: mysql\n  url: ${url}\n  mysql:\n    poolSize: 6\n    commitsInFlight: 2\n    writeTimeout: 500ms\n`,
      ),
    });
    assert.deepEqual(f.store.mysql, { poolSize: 6, commitsInFlight: 2, writeTimeout: 500 });
    assert.equal(envName('store.url'), 'MUSTER_STORE_URL');
    assert.equal(flagName('store.mysql.writeTimeout'), '--store-mysql-write-timeout');
    assert.equal(envName('store.mysql.poolSize'), 'MUSTER_STORE_MYSQL_POOL_SIZE');
  });

  it('needs store.url for store.type mysql, and naming it says how to set it', () => {
    rejects(
      () => loadConfig({ flags: { 'store.type': 'mysql' } }),
      /store\.type mysql needs store\.url/,
      /MUSTER_STORE_URL/,
      /--store-url/,
    );
    rejects(() => loadConfig({ env: { MUSTER_STORE_TYPE: 'mysql', MUSTER_STORE_URL: '' } }), /needs store\.url/);
  });

  it('refuses a store.url that is not a mysql:// URL, without echoing its password', () => {
    for (const bad of [
      'db.internal:3306',
      'postgres://u:pw@h/db',
      'mysql://',
      'mysql://u@h:3306/bad/name',
      'mysql://u:s3cret@h:3306/db?ssl=true',
    ]) {
      assert.throws(
        () => loadConfig({ flags: { 'store.type': 'mysql', 'store.url': bad } }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.match(err.message, /for store\.url/);
          assert.doesNotMatch(err.message, /s3cret/);
          return true;
        },
        bad,
      );
    }
    rejects(
      () => loadConfig({ flags: { 'store.type': 'mysql', 'store.url': 'http://h/db' } }),
      /must be a mysql:\/\/ URL/,
    );
    // Without a database name, the database is muster.
    assert.doesNotThrow(() => loadConfig({ flags: { 'store.type': 'mysql', 'store.url': 'mysql://root@127.0.0.1' } }));
  });

  it('refuses a store.url the store would not use', () => {
    rejects(() => loadConfig({ env: { MUSTER_STORE_URL: url } }), /store\.url is set but store\.type is sqlite/);
  });

  it('checks the pool size and write timeout ranges', () => {
    rejects(() => fromFlag('store.mysql.poolSize', '0'), /store\.mysql\.poolSize/, /1\.\.1000/);
    rejects(() => fromFlag('store.mysql.writeTimeout', '50ms'), /store\.mysql\.writeTimeout/, /from 100ms to 5m/);
    rejects(() => fromFlag('store.mysql.writeTimeout', '0'), /store\.mysql\.writeTimeout/);
    rejects(() => fromFlag('store.mysql.commitsInFlight', '0'), /store\.mysql\.commitsInFlight/, /1\.\.64/);
  });

  it('keeps a connection for reads: commitsInFlight must stay below poolSize', () => {
    const mysql = { 'store.type': 'mysql', 'store.url': url };
    rejects(
      () => loadConfig({ flags: { ...mysql, 'store.mysql.poolSize': '4' } }),
      /store\.mysql\.commitsInFlight \(4\) must be below store\.mysql\.poolSize \(4\)/,
    );
    assert.equal(
      loadConfig({ flags: { ...mysql, 'store.mysql.poolSize': '4', 'store.mysql.commitsInFlight': '3' } }).store.mysql
        .commitsInFlight,
      3,
    );
    // Only the MySQL store has a pool.
    assert.doesNotThrow(() => loadConfig({ flags: { 'store.mysql.poolSize': '1' } }));
  });

  it('lets a cluster run on it', () => {
    const c = loadConfig({
      flags: { 'store.type': 'mysql', 'store.url': url, 'cluster.redis': 'redis://127.0.0.1:6379' },
    });
    assert.equal(c.cluster.redis, 'redis://127.0.0.1:6379');
  });
});

describe('config: errors name the key, the source and what is allowed', () => {
  it('an unknown YAML key, nested or top level', () => {
    const file = yamlFile('health:\n  cleanupAfer: 30m\n');
    rejects(
      () => loadConfig({ file }),
      /unknown option "health\.cleanupAfer"/,
      new RegExp(escape(file)),
      /muster server --help/,
    );
    rejects(() => loadConfig({ file: yamlFile('prot: 8090\n') }), /unknown option "prot"/);
    rejects(() => loadConfig({ file: yamlFile('store: memory\n') }), /unknown option "store"/);
  });

  it('a bad value in the file', () => {
    const file = yamlFile('health:\n  protectRatio: 2\n');
    rejects(
      () => loadConfig({ file }),
      /invalid value 2 for health\.protectRatio/,
      new RegExp(`config file ${escape(file)}`),
      /a number in 0\.\.1/,
    );
  });

  it('a bad value in the environment, naming the variable', () => {
    rejects(
      () => loadConfig({ env: { MUSTER_HEALTH_PROTECT_RATIO: '2' } }),
      /invalid value "2" for health\.protectRatio/,
      /environment variable MUSTER_HEALTH_PROTECT_RATIO/,
      /a number in 0\.\.1/,
    );
  });

  it('a bad value on the command line', () => {
    rejects(
      () => loadConfig({ flags: { httpPort: '70000' } }),
      /invalid value "70000" for httpPort/,
      /flag --http-port/,
      /an integer in 0\.\.65535/,
    );
    rejects(() => loadConfig({ flags: { httpPort: '0x1F90' } }), /httpPort/);
    rejects(() => loadConfig({ flags: { 'health.protectRatio': '1e-1' } }), /health\.protectRatio/);
    rejects(
      () => loadConfig({ flags: { 'health.cleanupAfter': 'forever' } }),
      /health\.cleanupAfter/,
      /a duration like 500ms, 30s, 5m, 1h or 7d \(a bare number is milliseconds\) from 0 to/,
    );
  });

  it('an unknown flag key', () => {
    rejects(() => loadConfig({ flags: { noSuchOption: '1' } }), /unknown option "noSuchOption"/);
  });

  it('a file that is missing, not YAML, or not a mapping', () => {
    const missing = path.join(dir, 'missing.yaml');
    rejects(() => loadConfig({ file: missing }), /cannot read config file/, new RegExp(escape(missing)));
    rejects(() => loadConfig({ file: yamlFile('health: [\n') }), /cannot read config file/);
    rejects(() => loadConfig({ file: yamlFile('- httpPort: 1\n') }), /must be a mapping of options/);
  });
});
