import type { InstanceRecord, NamespaceRecord, ServiceRecord, TokenRecord } from '../model/records.js';
import type { NewEvent, StoreTx } from '../store/store.js';
import type { Change } from './changes.js';

/**
 * A store transaction that also records every put and delete, and every change number taken,
 * as a Change for the index. It calls the store's transaction through its methods, never copies
 * them, so a store's transaction may be a class.
 */
export class RecordingTx implements StoreTx {
  constructor(
    private readonly tx: StoreTx,
    private readonly changes: Change[],
  ) {}

  savepoint(): Promise<void> {
    return this.tx.savepoint();
  }

  releaseSavepoint(): Promise<void> {
    return this.tx.releaseSavepoint();
  }

  rollbackToSavepoint(): Promise<void> {
    return this.tx.rollbackToSavepoint();
  }

  getNamespace(name: string): Promise<NamespaceRecord | undefined> {
    return this.tx.getNamespace(name);
  }

  async putNamespace(rec: NamespaceRecord): Promise<void> {
    await this.tx.putNamespace(rec);
    this.changes.push({ kind: 'namespace', name: rec.name, rec });
  }

  async deleteNamespace(name: string): Promise<void> {
    await this.tx.deleteNamespace(name);
    this.changes.push({ kind: 'namespace', name, rec: undefined });
  }

  countServices(namespace: string): Promise<number> {
    return this.tx.countServices(namespace);
  }

  getService(namespace: string, name: string): Promise<ServiceRecord | undefined> {
    return this.tx.getService(namespace, name);
  }

  async putService(rec: ServiceRecord): Promise<void> {
    await this.tx.putService(rec);
    this.changes.push({ kind: 'service', namespace: rec.namespace, name: rec.name, rec });
  }

  async deleteService(namespace: string, name: string): Promise<void> {
    await this.tx.deleteService(namespace, name);
    this.changes.push({ kind: 'service', namespace, name, rec: undefined });
  }

  getInstance(id: string): Promise<InstanceRecord | undefined> {
    return this.tx.getInstance(id);
  }

  async putInstance(rec: InstanceRecord, prev?: InstanceRecord | null): Promise<void> {
    await this.tx.putInstance(rec, prev);
    this.changes.push({ kind: 'instance', id: rec.id, rec });
  }

  async deleteInstance(id: string): Promise<void> {
    await this.tx.deleteInstance(id);
    this.changes.push({ kind: 'instance', id, rec: undefined });
  }

  listInstanceIds(namespace: string, service: string): Promise<string[]> {
    return this.tx.listInstanceIds(namespace, service);
  }

  updateHeartbeats(beats: ReadonlyArray<{ id: string; lastHeartbeat: number }>): Promise<void> {
    return this.tx.updateHeartbeats(beats);
  }

  async appendEvent(event: NewEvent): Promise<number> {
    const id = await this.tx.appendEvent(event);
    this.changes.push({ kind: 'event', id });
    return id;
  }

  pruneEvents(keep: number, olderThan: number): Promise<number> {
    return this.tx.pruneEvents(keep, olderThan);
  }

  listTokens(): Promise<TokenRecord[]> {
    return this.tx.listTokens();
  }

  async putToken(rec: TokenRecord): Promise<void> {
    await this.tx.putToken(rec);
    this.changes.push({ kind: 'token', rec });
  }
}
