import { createConnection } from 'mysql2/promise';
import type { Connection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { describe } from './error-classification.js';
import { MYSQL_MIGRATIONS, migrationSql } from './migrations.js';
import type { MysqlTarget } from './mysql-url.js';
import { bounded } from './session.js';

/** Statements of a migration: DDL on a big table can take a while. */
const MIGRATION_STATEMENT_TIMEOUT_MS = 300_000;

type Query = <T extends RowDataPacket[] | ResultSetHeader>(
  sql: string,
  values?: unknown[],
  timeout?: number,
) => Promise<T>;

/**
 * Creates the database when missing and brings its schema to this build's version (the
 * migrations of migrations.ts), on a connection of its own, before the pool opens. `timeoutMs`
 * bounds the connect and every statement but the migrations' own.
 */
export async function createAndMigrate(t: MysqlTarget, timeoutMs: number): Promise<void> {
  const where = `${t.host}:${t.port}/${t.database}`;
  let conn: Connection;
  try {
    conn = await bounded(
      createConnection({
        host: t.host,
        port: t.port,
        user: t.user,
        password: t.password,
        charset: 'UTF8MB4_GENERAL_CI',
        connectTimeout: timeoutMs,
        supportBigNumbers: true,
        bigNumberStrings: false,
        trace: false,
        multipleStatements: false,
      }),
      timeoutMs + 1000,
    );
  } catch (err) {
    throw new Error(`cannot connect to MySQL at ${t.host}:${t.port} as ${t.user}: ${describe(err)}`, { cause: err });
  }
  conn.on('error', () => {});
  const q: Query = async <T extends RowDataPacket[] | ResultSetHeader>(
    sql: string,
    values: unknown[] = [],
    timeout = timeoutMs,
  ): Promise<T> => {
    const [rows] = await bounded(conn.query<T>({ sql, timeout }, values), timeout + 1000);
    return rows;
  };
  try {
    await q("SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION', SESSION lock_wait_timeout = 60");
    const collation = await binaryCollation(q);
    const exists = await q<RowDataPacket[]>(
      'SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?',
      [t.database],
    );
    if (exists.length === 0) {
      await q(`CREATE DATABASE IF NOT EXISTS ${quoteId(t.database)} CHARACTER SET utf8mb4 COLLATE ${collation}`);
    }
    await q(`USE ${quoteId(t.database)}`);
    // Several nodes start at once: one migrates, the others wait and then find nothing to do.
    const lock = `muster_migrate:${t.database}`.slice(0, 64);
    const [got] = await q<RowDataPacket[]>('SELECT GET_LOCK(?, 30) AS got', [lock], 35_000);
    if (Number(got?.['got']) !== 1)
      throw new Error(
        `another Muster node has been migrating the database ${where} for 30 s (lock ${lock}); start again when it is done`,
      );
    try {
      await migrate(q, collation, where);
    } finally {
      await q('SELECT RELEASE_LOCK(?)', [lock]).catch(() => {});
    }
  } finally {
    await bounded(conn.end(), 1000).catch(() => conn.destroy());
  }
}

/** The server's binary NO PAD collation (see migrations.ts), or the plain binary one where it has none. */
async function binaryCollation(q: Query): Promise<string> {
  const rows = await q<RowDataPacket[]>(
    "SELECT COLLATION_NAME AS c FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN ('utf8mb4_nopad_bin', 'utf8mb4_0900_bin')",
  );
  const have = new Set(rows.map((r) => String(r['c'])));
  return have.has('utf8mb4_nopad_bin')
    ? 'utf8mb4_nopad_bin'
    : have.has('utf8mb4_0900_bin')
      ? 'utf8mb4_0900_bin'
      : 'utf8mb4_bin';
}

async function migrate(q: Query, collation: string, where: string): Promise<void> {
  await q(
    `CREATE TABLE IF NOT EXISTS schema_migration (
    version INT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=${collation}`,
    [],
    MIGRATION_STATEMENT_TIMEOUT_MS,
  );
  const applied = new Set(
    (await q<RowDataPacket[]>('SELECT version FROM schema_migration')).map((r) => Number(r['version'])),
  );
  const newest = Math.max(0, ...applied);
  const known = Math.max(...MYSQL_MIGRATIONS.map((m) => m.version));
  if (newest > known) {
    throw new Error(
      `the database ${where} has schema version ${newest}, newer than this Muster knows (${known}); upgrade Muster`,
    );
  }
  for (const m of MYSQL_MIGRATIONS) {
    if (applied.has(m.version)) continue;
    for (const statement of m.statements) {
      if (typeof statement === 'string') {
        await q(migrationSql(statement, collation), [], MIGRATION_STATEMENT_TIMEOUT_MS);
        continue;
      }
      const present = await q<RowDataPacket[]>(
        'SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?',
        [statement.table, statement.column],
      );
      if (present.length > 0) continue;
      await q(
        `ALTER TABLE ${quoteId(statement.table)} ADD COLUMN ${quoteId(statement.column)} ${statement.definition}`,
        [],
        MIGRATION_STATEMENT_TIMEOUT_MS,
      );
    }
    await q('INSERT INTO schema_migration (version, name, applied_at) VALUES (?, ?, ?)', [
      m.version,
      m.name,
      Date.now(),
    ]);
  }
}

function quoteId(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}
