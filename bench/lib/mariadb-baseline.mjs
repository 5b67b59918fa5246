import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';

const run = promisify(execFile);

/**
 * What MariaDB alone commits on this machine right now: single-row INSERTs in autocommit (one
 * durable transaction each) from `concurrency` clients, sent by MariaDB's own load client
 * (mariadb-slap, or mysqlslap), so no Node client's cost is in it. This is the figure the cluster
 * issue's target is set against ("MariaDB alone commits about 14,000 single-row transactions per
 * second here"); measured beside Muster in the same run, it says how fast the machine's disk and
 * CPU are this minute. Answers { tps } or { skipped } with the reason.
 */
export async function mariadbCommitRate(url, { concurrency = 100, queries = 20_000 } = {}) {
  const u = new URL(url);
  const database = `muster_bench_baseline_${process.pid}_${Date.now()}`;
  const conn = await mysql.createConnection(url);
  try {
    await conn.query(`CREATE DATABASE \`${database}\``);
    await conn.query(
      `CREATE TABLE \`${database}\`.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(100) NOT NULL) ENGINE=InnoDB`,
    );
    const args = [
      `--host=${u.hostname}`,
      `--port=${u.port || 3306}`,
      `--user=${decodeURIComponent(u.username || 'root')}`,
      ...(u.password ? [`--password=${decodeURIComponent(u.password)}`] : []),
      `--create-schema=${database}`,
      '--no-drop',
      `--concurrency=${concurrency}`,
      '--iterations=1',
      `--number-of-queries=${queries}`,
      "--query=INSERT INTO t (v) VALUES ('a single-row transaction')",
    ];
    let out;
    for (const bin of ['mariadb-slap', 'mysqlslap']) {
      try {
        out = (await run(bin, args, { timeout: 120_000 })).stdout;
        break;
      } catch (err) {
        if (err.code !== 'ENOENT')
          return {
            skipped: `${bin} failed: ${
              String(err.stderr || err.message)
                .trim()
                .split('\n')[0]
            }`,
          };
      }
    }
    if (out === undefined) return { skipped: 'neither mariadb-slap nor mysqlslap is installed' };
    const seconds = Number(/Average number of seconds to run all queries: ([\d.]+)/.exec(out)?.[1]);
    if (!(seconds > 0)) return { skipped: `could not read the load client's answer: ${out.trim().slice(0, 200)}` };
    return { tps: queries / seconds };
  } finally {
    await conn.query(`DROP DATABASE IF EXISTS \`${database}\``).catch(() => {});
    await conn.end();
  }
}
