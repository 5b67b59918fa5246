import type { DiscoverFilter, DiscoverResponse, DiscoveredInstance } from '@muster/api';
import { matchesFilter } from '@muster/api';
import type { Change } from '../batch/changes.js';
import type { InstanceRecord, NamespaceRecord, ServiceRecord } from '../model/records.js';
import { toDiscoveredInstance } from '../model/records.js';
import type { Snapshot } from '../store/store.js';

/** A service as the index holds it, read-only outside the index: only committed changes move it. */
export interface ServiceEntry {
  readonly rec: Readonly<ServiceRecord>;
  readonly instances: ReadonlyMap<string, Readonly<InstanceRecord>>;
}

/** The index's own entry: the same object a ServiceEntry is, writable here. */
interface WritableEntry {
  rec: ServiceRecord;
  instances: Map<string, InstanceRecord>;
}

/** The pre-serialized answer for the default filter (healthy, not isolated). */
interface CachedAnswer {
  revision: number;
  builtAt: number;
  body: Buffer;
}

export type ServiceChangeListener = (namespace: string, service: string, revision: number | undefined) => void;

export const serviceKey = (namespace: string, service: string): string => `${namespace}\u0000${service}`;

/**
 * The in-memory registry: namespace -> service -> instances, fed only by committed changes
 * (PolarisMesh's cache/). Discovery reads never touch the store. Other modules read it through
 * read-only views and change it through the named operations below (`load`, `apply`,
 * `noteHeartbeat`): a record handed out is the index's own, so a write through it would skip the
 * revision and the answer cache.
 */
export class RegistryIndex {
  readonly #namespaces = new Map<string, NamespaceRecord>();
  readonly #services = new Map<string, WritableEntry>();
  readonly #instances = new Map<string, InstanceRecord>();
  /** Keyed by the entry object: an entry a watcher still holds after its service was deleted keeps its own. */
  readonly #answers = new WeakMap<ServiceEntry, CachedAnswer>();
  readonly #listeners: ServiceChangeListener[] = [];
  #loaded = false;

  constructor(private readonly ageResolutionMs: number) {}

  get namespaces(): ReadonlyMap<string, Readonly<NamespaceRecord>> {
    return this.#namespaces;
  }

  get instances(): ReadonlyMap<string, Readonly<InstanceRecord>> {
    return this.#instances;
  }

  /** The snapshot of the store is in (readiness). */
  get loaded(): boolean {
    return this.#loaded;
  }

  onServiceChanged(l: ServiceChangeListener): void {
    this.#listeners.push(l);
  }

  load(s: Snapshot): void {
    for (const n of s.namespaces) this.#namespaces.set(n.name, n);
    for (const svc of s.services)
      this.#services.set(serviceKey(svc.namespace, svc.name), { rec: svc, instances: new Map() });
    for (const i of s.instances) {
      this.#instances.set(i.id, i);
      this.#services.get(serviceKey(i.namespace, i.service))?.instances.set(i.id, i);
    }
    this.#loaded = true;
  }

  /** Applies a committed batch's changes in order, then tells listeners which services moved. */
  apply(changes: readonly Change[]): void {
    const touched = new Map<string, [string, string]>();
    const touch = (ns: string, svc: string) => touched.set(serviceKey(ns, svc), [ns, svc]);
    for (const c of changes) {
      if (c.kind === 'namespace') {
        if (c.rec) this.#namespaces.set(c.name, c.rec);
        else this.#namespaces.delete(c.name);
      } else if (c.kind === 'service') {
        const key = serviceKey(c.namespace, c.name);
        if (c.rec) {
          const entry = this.#services.get(key);
          // A revision never goes back: of two batches bumping one service, the later to start
          // may commit first and take the lower number (MySQL locks the row only at commit).
          if (entry) {
            if (c.rec.revision >= entry.rec.revision) entry.rec = c.rec;
            this.#answers.delete(entry);
          } else this.#services.set(key, { rec: c.rec, instances: new Map() });
        } else this.#services.delete(key);
        touch(c.namespace, c.name);
      } else if (c.kind === 'instance') {
        const prev = this.#instances.get(c.id);
        if (prev) {
          this.#services.get(serviceKey(prev.namespace, prev.service))?.instances.delete(c.id);
          touch(prev.namespace, prev.service);
        }
        if (c.rec) {
          // A heartbeat may have landed in memory after the write was decided: keep the newer one.
          if (prev && prev.lastHeartbeat > c.rec.lastHeartbeat) c.rec.lastHeartbeat = prev.lastHeartbeat;
          this.#instances.set(c.id, c.rec);
          this.#services.get(serviceKey(c.rec.namespace, c.rec.service))?.instances.set(c.id, c.rec);
          touch(c.rec.namespace, c.rec.service);
        } else this.#instances.delete(c.id);
      }
    }
    for (const [key, [ns, svc]] of touched) {
      const entry = this.#services.get(key);
      if (entry) this.#answers.delete(entry);
      for (const l of this.#listeners) l(ns, svc, entry?.rec.revision);
    }
  }

  /**
   * A heartbeat taken at `at` (here, or by another node as Redis tells): moves the instance's
   * lastHeartbeat forward, never back. Memory only: the store sees it at the next flush or
   * transition. Answers the instance, undefined when the index does not hold it.
   */
  noteHeartbeat(id: string, at: number): Readonly<InstanceRecord> | undefined {
    const rec = this.#instances.get(id);
    if (rec && at > rec.lastHeartbeat) rec.lastHeartbeat = at;
    return rec;
  }

  service(namespace: string, name: string): ServiceEntry | undefined {
    return this.#services.get(serviceKey(namespace, name));
  }

  servicesOf(namespace: string): ServiceEntry[] {
    const out: ServiceEntry[] = [];
    for (const e of this.#services.values()) if (e.rec.namespace === namespace) out.push(e);
    return out.sort((a, b) => (a.rec.name < b.rec.name ? -1 : a.rec.name > b.rec.name ? 1 : 0));
  }

  /** The default discovery answer as bytes, rebuilt when the revision moved or ages went stale. */
  defaultAnswer(entry: ServiceEntry, now: number): Buffer {
    const c = this.#answers.get(entry);
    if (c && c.revision === entry.rec.revision && now - c.builtAt < this.ageResolutionMs) return c.body;
    const body = Buffer.from(JSON.stringify(this.answer(entry, {}, now)));
    this.#answers.set(entry, { revision: entry.rec.revision, builtAt: now, body });
    return body;
  }

  /**
   * The one place visibility is decided: every discovery answer (HTTP, gRPC, long-poll, watch)
   * is built here. In a service with verification, an instance that has not passed its check
   * is in no answer, whatever the filter.
   */
  answer(entry: ServiceEntry, f: DiscoverFilter, now: number): DiscoverResponse {
    const instances: DiscoveredInstance[] = [];
    const gated = entry.rec.verification !== null;
    for (const i of entry.instances.values()) {
      if (gated && i.verification.state !== 'verified') continue;
      if (matchesFilter(i, f)) instances.push(toDiscoveredInstance(i, now));
    }
    instances.sort((a, b) => (a.id < b.id ? -1 : 1));
    return { namespace: entry.rec.namespace, service: entry.rec.name, revision: entry.rec.revision, instances };
  }
}
