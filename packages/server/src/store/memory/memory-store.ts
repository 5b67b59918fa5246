import type { RegistryEvent } from '@muster/api';
import type { TokenRecord } from '../../model/records.js';
import { matchesEvent } from '../event-filter.js';
import type { ChangeLog, ChangeLogFilter, RecordKeys, Records, Snapshot, Store, StoreTx } from '../store.js';
import { clone, MemoryTx, svcKey, type MemoryData } from './memory-tx.js';

/**
 * A store in process memory: for tests and throwaway runs. Transactions keep an undo log, so
 * savepoints and rollbacks behave as they do on the SQL stores.
 */
export class MemoryStore implements Store, ChangeLog {
  readonly kind = 'memory';
  private readonly data: MemoryData = {
    namespaces: new Map(),
    services: new Map(),
    instances: new Map(),
    tokens: new Map(),
    events: [],
    lastEventId: 0,
  };

  async open(): Promise<void> {}
  async close(): Promise<void> {}
  async ping(): Promise<void> {}

  async load(): Promise<Snapshot> {
    const d = this.data;
    return {
      namespaces: [...d.namespaces.values()].map(clone),
      services: [...d.services.values()].map(clone),
      instances: [...d.instances.values()].map(clone),
      tokens: [...d.tokens.values()].map(clone),
      lastEventId: d.lastEventId,
    };
  }

  async readRecords(keys: RecordKeys): Promise<Records> {
    const d = this.data;
    const present = <T>(v: T | undefined): v is T => v !== undefined;
    return {
      namespaces: keys.namespaces
        .map((n) => d.namespaces.get(n))
        .filter(present)
        .map(clone),
      services: keys.services
        .map(([ns, name]) => d.services.get(svcKey(ns, name)))
        .filter(present)
        .map(clone),
      instances: keys.instances
        .map((id) => d.instances.get(id))
        .filter(present)
        .map(clone),
    };
  }

  async listTokens(): Promise<TokenRecord[]> {
    return [...this.data.tokens.values()].map(clone);
  }

  async listEvents(f: ChangeLogFilter): Promise<RegistryEvent[]> {
    const out: RegistryEvent[] = [];
    const list = f.newestFirst ? [...this.data.events].reverse() : this.data.events;
    for (const s of list) {
      if (out.length >= f.limit) break;
      if (matchesEvent(s.event, f, s.at)) out.push(clone(s.event));
    }
    return out;
  }

  async transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    const tx = new MemoryTx(this.data);
    try {
      return await fn(tx);
    } catch (err) {
      tx.rollbackTo(0);
      throw err;
    }
  }
}
