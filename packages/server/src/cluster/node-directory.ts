import { clusterKeys } from './cluster-keys.js';
import {
  type ClusterLog,
  DEFAULT_COMMAND_TIMEOUT_MS,
  errorMessage,
  type RedisModuleOptions,
  silentLog,
  withTimeout,
} from './redis-common.js';

/** What a node says about itself. */
export interface NodeSelf {
  /** Unique per running process (it is the hash field: two processes with one id overwrite each other). */
  id: string;
  httpAddress: string;
  grpcAddress: string;
  version: string;
  /** When the process started, ms since the epoch (its own clock). */
  startedAt: number;
}

/** A node as the directory lists it. */
export interface NodeInfo extends NodeSelf {
  /** When it last wrote its entry, ms since the epoch on Redis's clock. */
  lastSeen: number;
  /** How long ago that was, measured on Redis's clock (so nodes' clock skew does not enter). */
  lastSeenAgoMs: number;
  /** Not seen for `staleAfterMs`: probably gone; removed after `expireMs`. */
  stale: boolean;
  /** It holds the sweep lease. */
  leaseHolder: boolean;
  /** It is the node that asked. */
  self: boolean;
  /**
   * Its own wall clock minus Redis's when it last wrote its entry (plus that write's one-way
   * latency): how far its clock is off. Undefined for an entry of a version that does not say.
   */
  clockOffsetMs?: number;
}

export interface DirectorySnapshot {
  /** Sorted by id. */
  nodes: NodeInfo[];
  /** The sweep lease's holder as Redis has it, null when nobody holds it (it may be missing from `nodes`). */
  leaseHolder: string | null;
  /** Redis's clock when it answered, ms since the epoch. */
  now: number;
}

export interface NodeDirectoryOptions extends RedisModuleOptions {
  self: NodeSelf;
  /** How often this node writes its entry. Default 1000 ms. */
  intervalMs?: number;
  /** An entry not written for this long is listed as stale. Default 5 × intervalMs. */
  staleAfterMs?: number;
  /** An entry not written for this long is removed from the hash. Default 30 000 ms. */
  expireMs?: number;
  /** This node's wall clock, sent with every write so readers can tell how far it is off. Default Date.now. */
  wallClock?: () => number;
}

// Stamps the entry with Redis's clock, not the writer's: every reader then compares lastSeen
// with the same clock. The entry's JSON (an object, without lastSeen) gets lastSeen appended as
// text, so numbers and strings stay exactly as the node wrote them (cjson would re-encode them).
const WRITE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], string.sub(ARGV[2], 1, -2) .. ',"lastSeen":' .. string.format('%.0f', now) .. '}')
return now`;

// Answers Redis's clock, the lease holder and every entry, and removes entries not written for
// ARGV[1] ms: atomically, so an entry refreshed a moment ago is never deleted on an old reading.
// Unreadable entries are returned (the caller logs them) but not deleted.
const LIST = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local keep = {}
for i = 1, #all, 2 do
  local ok, e = pcall(cjson.decode, all[i + 1])
  local seen = ok and type(e) == 'table' and tonumber(e.lastSeen) or nil
  if seen ~= nil and now - seen > tonumber(ARGV[1]) then
    redis.call('HDEL', KEYS[1], all[i])
  else
    keep[#keep + 1] = all[i + 1]
  end
end
return { now, redis.call('GET', KEYS[2]), keep }`;

/**
 * Cluster membership for `GET /v1/cluster`: every node writes its entry (id, addresses, version,
 * start time) into the hash `${prefix}nodes` every `intervalMs`, stamped with Redis's clock;
 * `list()` answers every entry with how long ago it was written, marks the silent ones stale and
 * removes those silent for `expireMs`. `stop()` removes this node's own entry at once.
 */
export class NodeDirectory {
  private readonly redis: NodeDirectoryOptions['redis'];
  private readonly log: ClusterLog;
  private readonly self: NodeSelf;
  private readonly keys: ReturnType<typeof clusterKeys>;
  private readonly intervalMs: number;
  private readonly staleAfterMs: number;
  private readonly expireMs: number;
  private readonly timeoutMs: number;
  private readonly wallClock: () => number;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<boolean> | undefined;
  private _available = false;
  /** Why the last round trip failed; undefined after one that worked. */
  lastError: string | undefined;

  constructor(opts: NodeDirectoryOptions) {
    this.redis = opts.redis;
    this.log = opts.log ?? silentLog;
    this.self = {
      id: opts.self.id,
      httpAddress: opts.self.httpAddress,
      grpcAddress: opts.self.grpcAddress,
      version: opts.self.version,
      startedAt: opts.self.startedAt,
    };
    this.keys = clusterKeys(opts.prefix);
    this.intervalMs = opts.intervalMs ?? 1000;
    this.staleAfterMs = opts.staleAfterMs ?? 5 * this.intervalMs;
    this.expireMs = opts.expireMs ?? 30_000;
    this.timeoutMs = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.wallClock = opts.wallClock ?? Date.now;
    if (!this.self.id) throw new RangeError('node directory: self.id must not be empty');
    if (!(this.intervalMs > 0 && this.staleAfterMs > this.intervalMs && this.expireMs >= this.staleAfterMs)) {
      throw new RangeError('node directory: need 0 < intervalMs < staleAfterMs <= expireMs');
    }
  }

  /** Whether the last Redis round trip worked. */
  get available(): boolean {
    return this._available;
  }

  /** Writes this node's entry now and then every interval. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.beat(), this.intervalMs);
    this.timer.unref();
    void this.beat();
  }

  /**
   * Stops writing and, unless `remove: false` (which leaves the entry to go stale, like a
   * crash), removes this node's entry so the others stop listing it at once.
   */
  async stop(opts: { remove?: boolean } = {}): Promise<void> {
    const wasRunning = this.timer !== undefined;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.writing; // or it could write the entry back after the delete
    if (!wasRunning || opts.remove === false) return;
    try {
      await withTimeout(this.redis.hdel(this.keys.nodes, this.self.id), this.timeoutMs, 'node directory remove');
    } catch (e) {
      this.log.warn(
        { err: errorMessage(e) },
        "node directory: could not remove this node's entry; it expires on its own",
      );
    }
  }

  /** Writes this node's entry now. Resolves false when Redis did not take it; never rejects. */
  beat(): Promise<boolean> {
    this.writing ??= this.write().finally(() => (this.writing = undefined));
    return this.writing;
  }

  /** Every node with a live entry, or undefined when Redis did not answer. */
  async list(): Promise<NodeInfo[] | undefined> {
    return (await this.snapshot())?.nodes;
  }

  /** The nodes and the lease holder in one reading, or undefined when Redis did not answer. */
  async snapshot(): Promise<DirectorySnapshot | undefined> {
    let reply: unknown;
    try {
      reply = await withTimeout(
        this.redis.eval(LIST, 2, this.keys.nodes, this.keys.sweepLease, String(this.expireMs)),
        this.timeoutMs,
        'node directory list',
      );
      this.setAvailable(true);
    } catch (e) {
      this.setAvailable(false, e);
      return undefined;
    }
    const [now, holder, entries] = reply as [number, string | null, string[]];
    const nodes: NodeInfo[] = [];
    for (const raw of entries) {
      const e = parseEntry(raw);
      if (!e) {
        this.log.warn({ entry: raw.slice(0, 200) }, 'node directory: ignored an unreadable entry');
        continue;
      }
      const ago = Math.max(0, now - e.lastSeen);
      const { wallTime, ...entry } = e;
      nodes.push({
        ...entry,
        lastSeenAgoMs: ago,
        stale: ago > this.staleAfterMs,
        leaseHolder: e.id === holder,
        self: e.id === this.self.id,
        ...(wallTime !== undefined ? { clockOffsetMs: wallTime - e.lastSeen } : {}),
      });
    }
    nodes.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { nodes, leaseHolder: holder, now };
  }

  private async write(): Promise<boolean> {
    try {
      await withTimeout(
        this.redis.eval(
          WRITE,
          1,
          this.keys.nodes,
          this.self.id,
          JSON.stringify({ ...this.self, wallTime: this.wallClock() }),
        ),
        this.timeoutMs,
        'node directory write',
      );
      this.setAvailable(true);
      return true;
    } catch (e) {
      this.setAvailable(false, e);
      return false;
    }
  }

  private setAvailable(v: boolean, e?: unknown): void {
    this.lastError = v ? undefined : errorMessage(e);
    if (this._available === v) return;
    this._available = v;
    if (!v) this.log.warn({ err: this.lastError }, 'node directory: Redis not reachable');
  }
}

function parseEntry(raw: string): (NodeSelf & { lastSeen: number; wallTime?: number }) | undefined {
  try {
    const x = JSON.parse(raw) as Record<string, unknown>;
    const { id, httpAddress, grpcAddress, version, startedAt, lastSeen, wallTime } = x;
    if (
      typeof id !== 'string' ||
      typeof httpAddress !== 'string' ||
      typeof grpcAddress !== 'string' ||
      typeof version !== 'string'
    )
      return undefined;
    if (typeof startedAt !== 'number' || typeof lastSeen !== 'number') return undefined;
    return {
      id,
      httpAddress,
      grpcAddress,
      version,
      startedAt,
      lastSeen,
      ...(typeof wallTime === 'number' ? { wallTime } : {}),
    };
  } catch {
    return undefined;
  }
}
