import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DiscoveredInstance } from '@muster/api';

/** What is kept per service: the last answer the registry confirmed, and when. */
export interface CachedAnswer {
  namespace: string;
  service: string;
  revision: number;
  /** When the registry last confirmed this list (epoch ms). */
  confirmedAt: number;
  /** When the list arrived: instances' lastHeartbeatAgeMs were measured then. */
  receivedAt: number;
  instances: DiscoveredInstance[];
}

/**
 * The last good answer per service on disk, one JSON file each, written by rename so a crash
 * mid-write leaves the previous file whole. Writes of one service are coalesced to one per
 * `minIntervalMs`; failures to write are reported, never thrown into the caller.
 */
export class DiskCache {
  private pending = new Map<string, CachedAnswer>();
  private timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly dir: string,
    private readonly onError: (err: Error) => void,
    private readonly minIntervalMs = 1000,
  ) {}

  fileOf(namespace: string, service: string): string {
    return path.join(this.dir, encodeURIComponent(namespace), `${encodeURIComponent(service)}.json`);
  }

  async load(namespace: string, service: string): Promise<CachedAnswer | undefined> {
    try {
      const a = JSON.parse(await readFile(this.fileOf(namespace, service), 'utf8')) as CachedAnswer;
      if (
        a.namespace !== namespace ||
        a.service !== service ||
        !Array.isArray(a.instances) ||
        typeof a.confirmedAt !== 'number'
      )
        return undefined;
      return a;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.onError(err as Error);
      return undefined;
    }
  }

  save(a: CachedAnswer): void {
    const key = this.fileOf(a.namespace, a.service);
    this.pending.set(key, a);
    if (this.timers.has(key)) return;
    const t = setTimeout(() => void this.write(key), 0);
    this.timers.set(key, t);
  }

  private async write(key: string): Promise<void> {
    const a = this.pending.get(key);
    this.pending.delete(key);
    if (a) {
      try {
        await mkdir(path.dirname(key), { recursive: true });
        const tmp = `${key}.${process.pid}.tmp`;
        await writeFile(tmp, JSON.stringify(a));
        await rename(tmp, key);
      } catch (err) {
        this.onError(err as Error);
      }
    }
    // Hold the slot a little so a burst of changes writes the file once more, not once each.
    const t = setTimeout(() => {
      this.timers.delete(key);
      if (this.pending.has(key)) this.save(this.pending.get(key)!);
    }, this.minIntervalMs);
    t.unref();
    this.timers.set(key, t);
  }

  /** Writes what is pending now; used at close. */
  async flush(): Promise<void> {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await Promise.all([...this.pending.keys()].map((k) => this.write(k)));
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
