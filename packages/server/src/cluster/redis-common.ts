import type { Redis } from 'ioredis';

/** The part of a pino logger the cluster modules use; a pino `Logger` fits as it is. */
export interface ClusterLog {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLog: ClusterLog = { debug() {}, info() {}, warn() {}, error() {} };

/** What every cluster module takes besides its own settings. */
export interface RedisModuleOptions {
  /**
   * The caller's ioredis client. The modules never quit or reconfigure it (the change bus takes
   * a `duplicate()` for its subscriber connection and owns that copy).
   */
  redis: Redis;
  /** Prepended to every key and channel (see cluster-keys.ts). */
  prefix: string;
  log?: ClusterLog;
  /**
   * How long one Redis round trip may take before it counts as failed. ioredis queues commands
   * while it reconnects (and retries them up to `maxRetriesPerRequest` times), so without a bound
   * a call could hang for minutes while the module should already be reporting the outage.
   */
  commandTimeoutMs?: number;
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 2000;

/**
 * Rejects when `p` has not settled within `ms`. The command itself is not cancelled (ioredis
 * cannot): it may still run later, which is why every write the modules send is safe to apply
 * late or twice (compare-and-set scripts, max-merges, idempotent deletes).
 */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer from Redis within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A tiny listener list: a callback that throws is logged, never propagated into the module. */
export class Listeners<T> {
  private readonly list = new Set<(value: T) => void>();

  constructor(
    private readonly log: ClusterLog,
    private readonly what: string,
  ) {}

  /** Adds a listener; returns the function that removes it. */
  add(cb: (value: T) => void): () => void {
    this.list.add(cb);
    return () => this.list.delete(cb);
  }

  emit(value: T): void {
    for (const cb of [...this.list]) {
      try {
        cb(value);
      } catch (e) {
        this.log.error({ err: e }, `${this.what} listener threw`);
      }
    }
  }
}
