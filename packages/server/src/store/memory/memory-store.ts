import type { RegistryEvent } from '@muster/api';
import type { InstanceRecord, NamespaceRecord, ServiceRecord, TokenRecord } from '../../model/records.js';
import { iso } from '../../model/records.js';
import { matchesEvent } from '../event-filter.js';
import type { ChangeLog, ChangeLogFilter, NewEvent, RecordKeys, Records, Snapshot, Store, StoreTx } from '../store.js';

interface StoredEvent {
  event: RegistryEvent;
  at: number;
}

const clone = <T>(v: T): T => structuredClone(v);

/**
 * A store in process memory: for tests and throwaway runs. Transactions keep an undo log, so
 * savepoints and rollbacks behave as they do on the SQL stores.
 */
export class MemoryStore implements Store, ChangeLog {
  readonly kind = 'memory';
  private namespaces = new Map<string, NamespaceRecord>();
  private services = new Map<string, ServiceRecord>();
  private instances = new Map<string, InstanceRecord>();
  private tokens = new Map<string, TokenRecord>();
  private events: StoredEvent[] = [];
  private lastEventId = 0;

  async open(): Promise<void> {}
  async close(): Promise<void> {}
  async ping(): Promise<void> {}

  async load(): Promise<Snapshot> {
    return {
      namespaces: [...this.namespaces.values()].map(clone),
      services: [...this.services.values()].map(clone),
      instances: [...this.instances.values()].map(clone),
      tokens: [...this.tokens.values()].map(clone),
      lastEventId: this.lastEventId,
    };
  }

  async readRecords(keys: RecordKeys): Promise<Records> {
    const present = <T>(v: T | undefined): v is T => v !== undefined;
    return {
      namespaces: keys.namespaces.map((n) => this.namespaces.get(n)).filter(present).map(clone),
      services: keys.services.map(([ns, name]) => this.services.get(`${ns}/${name}`)).filter(present).map(clone),
      instances: keys.instances.map((id) => this.instances.get(id)).filter(present).map(clone),
    };
  }

  async listTokens(): Promise<TokenRecord[]> {
    return [...this.tokens.values()].map(clone);
  }

  async listEvents(f: ChangeLogFilter): Promise<RegistryEvent[]> {
    const out: RegistryEvent[] = [];
    const list = f.newestFirst ? [...this.events].reverse() : this.events;
    for (const s of list) {
      if (out.length >= f.limit) break;
      if (matchesEvent(s.event, f, s.at)) out.push(clone(s.event));
    }
    return out;
  }

  async transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    const undo: Array<() => void> = [];
    const savepoints: number[] = [];
    const rollbackTo = (mark: number) => {
      while (undo.length > mark) undo.pop()!();
    };
    const setIn = <V>(map: Map<string, V>, key: string, value: V | undefined) => {
      const prev = map.get(key);
      undo.push(() => (prev === undefined ? map.delete(key) : map.set(key, prev)));
      if (value === undefined) map.delete(key);
      else map.set(key, clone(value));
    };
    const svcKey = (ns: string, name: string) => `${ns}/${name}`;

    const tx: StoreTx = {
      savepoint: async () => void savepoints.push(undo.length),
      releaseSavepoint: async () => void savepoints.pop(),
      rollbackToSavepoint: async () => rollbackTo(savepoints.pop() ?? 0),

      getNamespace: async (name) => clone(this.namespaces.get(name)),
      putNamespace: async (rec) => setIn(this.namespaces, rec.name, rec),
      deleteNamespace: async (name) => setIn(this.namespaces, name, undefined),
      countServices: async (ns) => [...this.services.values()].filter((s) => s.namespace === ns).length,

      getService: async (ns, name) => clone(this.services.get(svcKey(ns, name))),
      putService: async (rec) => {
        if (!this.namespaces.has(rec.namespace)) throw new Error(`foreign key: namespace ${rec.namespace}`);
        setIn(this.services, svcKey(rec.namespace, rec.name), rec);
      },
      deleteService: async (ns, name) => setIn(this.services, svcKey(ns, name), undefined),

      getInstance: async (id) => clone(this.instances.get(id)),
      putInstance: async (rec) => {
        if (!this.services.has(svcKey(rec.namespace, rec.service))) throw new Error(`foreign key: service ${rec.namespace}/${rec.service}`);
        setIn(this.instances, rec.id, rec);
      },
      deleteInstance: async (id) => setIn(this.instances, id, undefined),
      listInstanceIds: async (ns, svc) =>
        [...this.instances.values()].filter((i) => i.namespace === ns && i.service === svc).map((i) => i.id),
      updateHeartbeats: async (beats) => {
        for (const b of beats) {
          const cur = this.instances.get(b.id);
          if (cur) setIn(this.instances, b.id, { ...cur, lastHeartbeat: b.lastHeartbeat });
        }
      },

      listTokens: async () => [...this.tokens.values()].map(clone),
      putToken: async (rec) => setIn(this.tokens, rec.id, rec),

      appendEvent: async (e: NewEvent) => {
        const prevLast = this.lastEventId;
        const id = ++this.lastEventId;
        const event: RegistryEvent = { ...clone(e), id, at: iso(e.at) };
        this.events.push({ event, at: e.at });
        undo.push(() => {
          this.events.pop();
          this.lastEventId = prevLast;
        });
        return id;
      },
      pruneEvents: async (keep, olderThan) => {
        const before = this.events;
        const cut = Math.max(0, before.length - keep);
        this.events = before.filter((s, i) => i >= cut && s.at >= olderThan);
        undo.push(() => (this.events = before));
        return before.length - this.events.length;
      },
    };

    try {
      return await fn(tx);
    } catch (err) {
      rollbackTo(0);
      throw err;
    }
  }
}
