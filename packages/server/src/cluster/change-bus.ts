import type { Redis } from 'ioredis';
import { RepeatedWarning } from '../repeated-warning.js';
import { clusterKeys } from './cluster-keys.js';
import {
  type ClusterLog,
  DEFAULT_COMMAND_TIMEOUT_MS,
  errorMessage,
  Listeners,
  type RedisModuleOptions,
  silentLog,
  withTimeout,
} from './redis-common.js';

/** One committed change, as other nodes hear of it. */
export interface ClusterChange {
  /** The change-log id (event id) of the change; a non-negative integer (0: not known). */
  eventId: number;
  namespace: string;
  service?: string;
  /** The node that committed it. */
  node: string;
}

export interface ChangeBusOptions extends RedisModuleOptions {
  /** This node's id: set on what it publishes, and used by `ignoreOwn`. */
  node: string;
  /** Drop messages this node published itself (it applied those changes already). Default true. */
  ignoreOwn?: boolean;
  /** Changes per message at most; more published in one tick go as several messages. Default 500. */
  maxBatch?: number;
}

/** On the wire: `{"v":1,"node":"n1","changes":[{"eventId":7,"namespace":"ns","service":"svc"}]}`. */
interface Message {
  v: 1;
  node: string;
  changes: { eventId: number; namespace: string; service?: string }[];
}

/**
 * Cross-node change notifications over Redis pub/sub on `${prefix}changes` (DESIGN, cluster mode).
 * A notification only makes the receiving node read the change log sooner: pub/sub delivers at
 * most once, and what a node misses (while it reconnects, or a publish that failed) the periodic
 * change-log read picks up. So publish failures are counted and logged, never thrown, and a
 * reconnect is reported (`onConnection(true)`), so the receiver can read the log at once.
 *
 * Publishes of one event-loop turn go as one message. Subscribing uses a connection of its own
 * (a connection in subscriber mode can do nothing else), made with `redis.duplicate()`, owned by
 * the bus and closed by `stop()`.
 */
export class ChangeBus {
  private readonly redis: Redis;
  private readonly log: ClusterLog;
  private readonly channel: string;
  private readonly node: string;
  private readonly ignoreOwn: boolean;
  private readonly maxBatch: number;
  private readonly timeoutMs: number;
  private readonly handlers = new Set<(change: ClusterChange) => void>();
  private readonly connection: Listeners<boolean>;
  private readonly publishing: RepeatedWarning;

  private queue: ClusterChange[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  private sending = new Set<Promise<void>>();
  private sub: Redis | undefined;
  /** Counts the subscriber's connections, so a late SUBSCRIBE reply of an old one is ignored. */
  private generation = 0;
  private _connected = false;
  private stopped = false;
  private lastMalformedLog = 0;

  /** Counters for metrics and tests (`malformed`: messages with anything unreadable in them). */
  readonly stats = { published: 0, publishFailures: 0, received: 0, malformed: 0 };
  /** Why the last publish failed; undefined after one that worked. */
  lastError: string | undefined;

  constructor(opts: ChangeBusOptions) {
    this.redis = opts.redis;
    this.log = opts.log ?? silentLog;
    this.channel = clusterKeys(opts.prefix).changes;
    this.node = opts.node;
    this.ignoreOwn = opts.ignoreOwn ?? true;
    this.maxBatch = opts.maxBatch ?? 500;
    this.timeoutMs = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.connection = new Listeners(this.log, 'change bus');
    // Other nodes pick the changes up with their periodic change-log read: a failing publish
    // costs freshness, and is worth a line per outage, not one per commit.
    this.publishing = new RepeatedWarning(this.log, 'change bus: publish failed', 'change bus: publishing works again');
    if (!(this.maxBatch > 0)) throw new RangeError('change bus: maxBatch must be > 0');
  }

  /** Whether the subscriber connection is up and subscribed (false before `subscribe()`). */
  get connected(): boolean {
    return this._connected;
  }

  /**
   * Called with true when the subscriber is (again) subscribed and false when its connection
   * dropped. After a true that follows a false, notifications may have been missed: read the
   * change log. Returns the unsubscribe function.
   */
  onConnection(cb: (connected: boolean) => void): () => void {
    return this.connection.add(cb);
  }

  /** Announces a committed change to the other nodes. Never throws; sent at the end of this event-loop turn. */
  publish(change: ClusterChange): void {
    if (this.stopped) return;
    this.queue.push(change);
    this.scheduled ??= setImmediate(() => this.send());
  }

  /** Sends what is queued now and waits until every publish under way has settled. */
  async flush(): Promise<void> {
    clearImmediate(this.scheduled);
    this.send();
    await Promise.all([...this.sending]);
  }

  /**
   * Calls `handler` for every change another node (or this one, unless `ignoreOwn`) publishes.
   * The first call opens the subscriber connection. Returns the unsubscribe function.
   */
  subscribe(handler: (change: ClusterChange) => void): () => void {
    if (this.stopped) return () => {};
    this.handlers.add(handler);
    if (!this.sub) this.openSubscriber();
    return () => this.handlers.delete(handler);
  }

  /** Sends what is queued, then closes the subscriber connection. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    await this.flush();
    this.stopped = true;
    this.handlers.clear();
    const sub = this.sub;
    this.sub = undefined;
    this.generation++;
    if (sub) {
      sub.removeAllListeners('message');
      try {
        await withTimeout(sub.quit(), this.timeoutMs, 'closing the subscriber');
      } catch {
        sub.disconnect();
      }
    }
    this.setConnected(false);
  }

  private send(): void {
    this.scheduled = undefined;
    if (this.queue.length === 0) return;
    const queue = this.queue;
    this.queue = [];
    // One message per publishing node (normally all are this node's) and per maxBatch changes.
    const byNode = new Map<string, ClusterChange[]>();
    for (const c of queue) {
      const list = byNode.get(c.node);
      if (list) list.push(c);
      else byNode.set(c.node, [c]);
    }
    for (const [node, changes] of byNode) {
      for (let i = 0; i < changes.length; i += this.maxBatch) {
        const msg: Message = {
          v: 1,
          node,
          changes: changes
            .slice(i, i + this.maxBatch)
            .map(({ eventId, namespace, service }) =>
              service === undefined ? { eventId, namespace } : { eventId, namespace, service },
            ),
        };
        const p = this.publishOne(JSON.stringify(msg), msg.changes.length);
        this.sending.add(p);
        void p.finally(() => this.sending.delete(p));
      }
    }
  }

  private async publishOne(payload: string, n: number): Promise<void> {
    try {
      await withTimeout(this.redis.publish(this.channel, payload), this.timeoutMs, 'publish');
      this.stats.published += n;
      this.lastError = undefined;
      this.publishing.worked({ failedChanges: this.stats.publishFailures });
    } catch (e) {
      this.stats.publishFailures += n;
      this.lastError = errorMessage(e);
      this.publishing.failed({ err: this.lastError, changes: n });
    }
  }

  private openSubscriber(): void {
    // Our own connection, so our own settings: connect now; keep retrying forever (a bus that
    // gave up would silently stop notifying); let a SUBSCRIBE wait through an outage instead of
    // failing after a number of retries; and subscribe again ourselves on every 'ready' (rather
    // than through ioredis's autoResubscribe) so `connected` turns true only once Redis confirmed
    // the subscription, not when the socket came up.
    const sub = this.redis.duplicate({
      lazyConnect: true,
      autoResubscribe: false,
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      retryStrategy: (times: number) => Math.min(times * 100, 2000),
    });
    this.sub = sub;
    sub.on('message', (channel: string, message: string) => {
      if (channel === this.channel) this.receive(message);
    });
    sub.on('ready', () => {
      const gen = ++this.generation;
      sub.subscribe(this.channel).then(
        () => {
          if (gen === this.generation && sub.status === 'ready') this.setConnected(true);
        },
        (e: unknown) => this.log.warn({ err: errorMessage(e) }, 'change bus: subscribe failed; retried on reconnect'),
      );
    });
    sub.on('close', () => {
      this.generation++;
      this.setConnected(false);
    });
    sub.on('error', (e: unknown) =>
      this.log.debug({ err: errorMessage(e) }, 'change bus: subscriber connection error'),
    );
    sub
      .connect()
      .catch((e: unknown) =>
        this.log.warn({ err: errorMessage(e) }, 'change bus: subscriber cannot connect yet; retrying'),
      );
  }

  private receive(raw: string): void {
    let parsed: ReturnType<typeof parseMessage>;
    try {
      parsed = parseMessage(JSON.parse(raw));
    } catch {
      parsed = undefined;
    }
    if (!parsed || parsed.bad > 0) {
      this.stats.malformed++;
      // A flood of bad messages must not flood the log: one line a second at most.
      const now = Date.now();
      if (now - this.lastMalformedLog >= 1000) {
        this.lastMalformedLog = now;
        this.log.warn(
          { channel: this.channel, sample: raw.slice(0, 200), malformed: this.stats.malformed },
          parsed ? 'change bus: ignored malformed entries of a message' : 'change bus: ignored a malformed message',
        );
      }
      if (!parsed) return;
    }
    const { msg } = parsed;
    if (this.ignoreOwn && msg.node === this.node) return;
    for (const c of msg.changes) {
      this.stats.received++;
      const change: ClusterChange =
        c.service === undefined
          ? { eventId: c.eventId, namespace: c.namespace, node: msg.node }
          : { ...c, node: msg.node };
      for (const handler of [...this.handlers]) {
        try {
          handler(change);
        } catch (e) {
          this.log.error({ err: e }, 'change bus: handler threw');
        }
      }
    }
  }

  private setConnected(v: boolean): void {
    if (this._connected === v) return;
    this._connected = v;
    if (v) this.log.info({ channel: this.channel }, 'change bus: subscribed');
    else if (!this.stopped)
      this.log.warn({ channel: this.channel }, 'change bus: subscriber disconnected; reconnecting');
    this.connection.emit(v);
  }
}

/**
 * The message if it has the expected shape, else undefined. Extra fields are allowed (for newer
 * senders); a change entry that does not fit is left out and counted in `bad`, the rest of the
 * message still counts (one odd entry must not hide the others' notifications).
 */
function parseMessage(x: unknown): { msg: Message; bad: number } | undefined {
  if (typeof x !== 'object' || x === null) return undefined;
  const m = x as Record<string, unknown>;
  if (m.v !== 1 || typeof m.node !== 'string' || !Array.isArray(m.changes)) return undefined;
  const changes: Message['changes'] = [];
  let bad = 0;
  for (const c of m.changes as unknown[]) {
    const { eventId, namespace, service } = (typeof c === 'object' && c !== null ? c : {}) as Record<string, unknown>;
    if (
      typeof eventId !== 'number' ||
      !Number.isSafeInteger(eventId) ||
      eventId < 0 ||
      typeof namespace !== 'string' ||
      (service !== undefined && typeof service !== 'string')
    )
      bad++;
    else changes.push(service === undefined ? { eventId, namespace } : { eventId, namespace, service });
  }
  return { msg: { v: 1, node: m.node, changes }, bad };
}
