// Shared by the cluster tests (not a test file itself): a Redis probe that decides skip or fail,
// per-test key prefixes with cleanup, test clients, and a fault proxy in front of Redis.
import { randomBytes } from 'node:crypto';
import { after, afterEach, describe, it } from 'node:test';
import { Redis, type RedisOptions } from 'ioredis';
import { FaultProxy } from '../../test/fault-proxy.js';

// The test Redis: 127.0.0.1:6379 unless MUSTER_TEST_REDIS=host:port says otherwise.
const [host, port] = (process.env.MUSTER_TEST_REDIS ?? '127.0.0.1:6379').split(':');
export const REDIS_HOST = host || '127.0.0.1';
export const REDIS_PORT = Number(port ?? 6379);

async function probe(): Promise<string | undefined> {
  const r = new Redis({
    host: REDIS_HOST,
    port: REDIS_PORT,
    lazyConnect: true,
    connectTimeout: 1000,
    disconnectTimeout: 50,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
  });
  // connect() only rejects with "Connection is closed."; the 'error' event has the cause.
  let cause: Error | undefined;
  r.on('error', (e: Error) => (cause ??= e));
  try {
    await r.connect();
    await r.ping();
    return undefined;
  } catch (e) {
    return `Redis not reachable at ${REDIS_HOST}:${REDIS_PORT}: ${(cause ?? (e instanceof Error ? e : new Error(String(e)))).message}`;
  } finally {
    r.disconnect();
  }
}

/** Why the Redis tests cannot run, or undefined when Redis answers. */
export const redisProblem = await probe();

/**
 * A suite that needs Redis: skipped with the reason when Redis is not reachable, except on CI
 * (CI=true), where a missing Redis is a broken test environment and fails.
 */
export function describeRedis(name: string, fn: () => void): void {
  if (redisProblem && process.env.CI === 'true') {
    describe(name, () =>
      it('needs Redis', () => {
        throw new Error(redisProblem);
      }),
    );
    return;
  }
  describe(name, { skip: redisProblem ?? false }, fn);
}

/**
 * Per-suite resources: every prefix it hands out is deleted after each test, every client is
 * closed and every started module stopped, also when a test failed half way.
 */
export function redisHarness() {
  const prefixes: string[] = [];
  const clients: Redis[] = [];
  const stoppers: (() => Promise<unknown> | unknown)[] = [];
  let admin: Redis | undefined;

  const h = {
    /** A key prefix no other test (or test process) uses. */
    prefix(): string {
      const p = `muster-test:${process.pid}:${randomBytes(4).toString('hex')}:`;
      prefixes.push(p);
      return p;
    },
    /** A client for the test Redis (or `port`, e.g. a proxy) that reconnects quickly. */
    client(opts: Partial<RedisOptions> = {}): Redis {
      // A short disconnectTimeout: a socket still connecting to a cut proxy would otherwise keep
      // the test process alive for ioredis's default 2 s after the tests are done.
      const r = new Redis({
        host: REDIS_HOST,
        port: REDIS_PORT,
        retryStrategy: () => 50,
        disconnectTimeout: 50,
        ...opts,
      });
      r.on('error', () => {}); // reconnect errors are expected in outage tests
      clients.push(r);
      return r;
    },
    /** The client tests use to look at Redis directly. */
    admin(): Redis {
      admin ??= h.client();
      return admin;
    },
    /** Registers something to stop after the test (modules, proxies). */
    defer<T>(thing: T, stop: (t: T) => Promise<unknown> | unknown): T {
      stoppers.push(() => stop(thing));
      return thing;
    },
  };

  afterEach(async () => {
    for (const stop of stoppers.splice(0).reverse()) await stop();
    const r = h.admin();
    for (const p of prefixes.splice(0)) {
      let cursor = '0';
      do {
        const [next, keys] = await r.scan(cursor, 'MATCH', `${p}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await r.del(...keys);
      } while (cursor !== '0');
    }
  });
  after(() => {
    for (const c of clients) c.disconnect();
  });
  return h;
}

/** Polls `cond` every few ms until it is true; fails with `what` after `timeoutMs`. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await cond()) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A fault proxy in front of the test Redis: a Redis outage as a client sees it. */
export class RedisProxy extends FaultProxy {
  constructor() {
    super(REDIS_HOST, REDIS_PORT);
  }
}
