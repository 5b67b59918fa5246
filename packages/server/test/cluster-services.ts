import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';

/** The MariaDB and Redis the cluster-mode tests run against (loopback by default). */
export const MYSQL = process.env['MUSTER_TEST_MYSQL'] ?? 'mysql://root@127.0.0.1:3306';
export const REDIS = process.env['MUSTER_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** Why MariaDB or Redis cannot be used here, or undefined when both answer. */
export async function clusterServicesProblem(): Promise<string | undefined> {
  try {
    const c = await mysql.createConnection({ uri: MYSQL, connectTimeout: 2000 });
    await c.end();
  } catch (err) {
    return `MariaDB not reachable at ${MYSQL}: ${(err as Error).message}`;
  }
  const r = new Redis(REDIS, {
    lazyConnect: true,
    connectTimeout: 1000,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  r.on('error', () => {});
  try {
    await r.connect();
    await r.ping();
  } catch (err) {
    return `Redis not reachable at ${REDIS}: ${(err as Error).message}`;
  } finally {
    r.disconnect();
  }
  return undefined;
}
