import type { RegistryEvent } from '@muster/api';
import type { InstanceRecord, NamespaceRecord, ServiceRecord, TokenRecord } from '../../model/records.js';
import { iso } from '../../model/records.js';
import type { NewEvent, StoreTx } from '../store.js';

/** What a MemoryStore holds; a transaction changes it in place and keeps an undo log. */
export interface MemoryData {
  namespaces: Map<string, NamespaceRecord>;
  services: Map<string, ServiceRecord>;
  instances: Map<string, InstanceRecord>;
  tokens: Map<string, TokenRecord>;
  events: StoredEvent[];
  lastEventId: number;
}

export interface StoredEvent {
  event: RegistryEvent;
  at: number;
}

export const clone = <T>(v: T): T => structuredClone(v);

export function svcKey(ns: string, name: string): string {
  return `${ns}/${name}`;
}

/**
 * One transaction of a MemoryStore: every change goes straight into the data and pushes its
 * undo, so savepoints and rollbacks behave as they do on the SQL stores.
 */
export class MemoryTx implements StoreTx {
  private readonly undo: Array<() => void> = [];
  private readonly savepoints: number[] = [];

  constructor(private readonly data: MemoryData) {}

  /** Undoes everything back to the undo log's length `mark` (0: the whole transaction). */
  rollbackTo(mark: number): void {
    while (this.undo.length > mark) this.undo.pop()!();
  }

  async savepoint(): Promise<void> {
    this.savepoints.push(this.undo.length);
  }

  async releaseSavepoint(): Promise<void> {
    this.savepoints.pop();
  }

  async rollbackToSavepoint(): Promise<void> {
    this.rollbackTo(this.savepoints.pop() ?? 0);
  }

  async getNamespace(name: string): Promise<NamespaceRecord | undefined> {
    return clone(this.data.namespaces.get(name));
  }

  async putNamespace(rec: NamespaceRecord): Promise<void> {
    this.setIn(this.data.namespaces, rec.name, rec);
  }

  async deleteNamespace(name: string): Promise<void> {
    this.setIn(this.data.namespaces, name, undefined);
  }

  async countServices(ns: string): Promise<number> {
    return [...this.data.services.values()].filter((s) => s.namespace === ns).length;
  }

  async getService(ns: string, name: string): Promise<ServiceRecord | undefined> {
    return clone(this.data.services.get(svcKey(ns, name)));
  }

  async putService(rec: ServiceRecord): Promise<void> {
    if (!this.data.namespaces.has(rec.namespace)) throw new Error(`foreign key: namespace ${rec.namespace}`);
    this.setIn(this.data.services, svcKey(rec.namespace, rec.name), rec);
  }

  async deleteService(ns: string, name: string): Promise<void> {
    this.setIn(this.data.services, svcKey(ns, name), undefined);
  }

  async getInstance(id: string): Promise<InstanceRecord | undefined> {
    return clone(this.data.instances.get(id));
  }

  async putInstance(rec: InstanceRecord): Promise<void> {
    if (!this.data.services.has(svcKey(rec.namespace, rec.service)))
      throw new Error(`foreign key: service ${rec.namespace}/${rec.service}`);
    this.setIn(this.data.instances, rec.id, rec);
  }

  async deleteInstance(id: string): Promise<void> {
    this.setIn(this.data.instances, id, undefined);
  }

  async listInstanceIds(ns: string, svc: string): Promise<string[]> {
    return [...this.data.instances.values()].filter((i) => i.namespace === ns && i.service === svc).map((i) => i.id);
  }

  async updateHeartbeats(beats: ReadonlyArray<{ id: string; lastHeartbeat: number }>): Promise<void> {
    for (const b of beats) {
      const cur = this.data.instances.get(b.id);
      if (cur) this.setIn(this.data.instances, b.id, { ...cur, lastHeartbeat: b.lastHeartbeat });
    }
  }

  async listTokens(): Promise<TokenRecord[]> {
    return [...this.data.tokens.values()].map(clone);
  }

  async putToken(rec: TokenRecord): Promise<void> {
    this.setIn(this.data.tokens, rec.id, rec);
  }

  async appendEvent(e: NewEvent): Promise<number> {
    const data = this.data;
    const prevLast = data.lastEventId;
    const id = ++data.lastEventId;
    const event: RegistryEvent = { ...clone(e), id, at: iso(e.at) };
    data.events.push({ event, at: e.at });
    this.undo.push(() => {
      data.events.pop();
      data.lastEventId = prevLast;
    });
    return id;
  }

  async pruneEvents(keep: number, olderThan: number): Promise<number> {
    const data = this.data;
    const before = data.events;
    const cut = Math.max(0, before.length - keep);
    data.events = before.filter((s, i) => i >= cut && s.at >= olderThan);
    this.undo.push(() => (data.events = before));
    return before.length - data.events.length;
  }

  private setIn<V>(map: Map<string, V>, key: string, value: V | undefined): void {
    const prev = map.get(key);
    this.undo.push(() => (prev === undefined ? map.delete(key) : map.set(key, prev)));
    if (value === undefined) map.delete(key);
    else map.set(key, clone(value));
  }
}
