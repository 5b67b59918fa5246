import type { Metadata } from '@muster/api';
import type { InstanceRecord, NamespaceRecord, ServiceRecord, TokenRecord } from '../../model/records.js';
import { sameMetadata } from '../../model/records.js';
import { instanceFromRow, type InstanceRowFields } from '../instance-row.js';
import {
  namespaceFromRow as nsFromRow,
  serviceFromRow as svcFromRow,
  type NamespaceRowFields,
  type ServiceRowFields,
} from '../service-row.js';
import type { NewEvent, StoreTx } from '../store.js';
import { tokenArgs, tokenFromRow, type TokenRow } from '../token-row.js';
import type { SqliteStatements } from './statements.js';

/**
 * One transaction of the SQLite store, on its write connection: each operation runs its
 * prepared statements at once. The batcher uses one savepoint level (one per write), so one
 * fixed savepoint name is enough.
 */
export class SqliteTx implements StoreTx {
  constructor(private readonly s: SqliteStatements) {}

  async savepoint(): Promise<void> {
    this.s.savepoint.run();
  }

  async releaseSavepoint(): Promise<void> {
    this.s.release.run();
  }

  async rollbackToSavepoint(): Promise<void> {
    this.s.rollbackTo.run();
    this.s.release.run();
  }

  async getNamespace(name: string): Promise<NamespaceRecord | undefined> {
    const r = this.s.getNamespace.get(name) as NamespaceRowFields | undefined;
    return r && nsFromRow(r);
  }

  async putNamespace(rec: NamespaceRecord): Promise<void> {
    this.s.putNamespace.run(rec);
  }

  async deleteNamespace(name: string): Promise<void> {
    this.s.deleteNamespace.run(name);
  }

  async countServices(ns: string): Promise<number> {
    return (this.s.countServices.get(ns) as { n: number }).n;
  }

  async getService(ns: string, name: string): Promise<ServiceRecord | undefined> {
    const r = this.s.getService.get(ns, name) as ServiceRowFields | undefined;
    return r && svcFromRow(r);
  }

  async putService(rec: ServiceRecord): Promise<void> {
    this.s.putService.run(
      rec.namespace,
      rec.name,
      rec.comment,
      JSON.stringify(rec.metadata),
      rec.revision,
      rec.createdAt,
      rec.updatedAt,
      rec.verification?.secret ?? null,
      rec.verification?.path ?? null,
    );
  }

  async deleteService(ns: string, name: string): Promise<void> {
    this.s.deleteService.run(ns, name);
  }

  async getInstance(id: string): Promise<InstanceRecord | undefined> {
    const r = this.s.getInstance.get(id) as InstanceRowFields | undefined;
    if (!r) return undefined;
    const md: Metadata = {};
    for (const m of this.s.getMetadata.all(r.seq) as Array<{ key: string; value: string }>) md[m.key] = m.value;
    return instanceFromRow(r, md);
  }

  async putInstance(rec: InstanceRecord, prev?: InstanceRecord | null): Promise<void> {
    const s = this.s;
    const { seq } = s.putInstance.get(
      rec.id,
      rec.namespace,
      rec.service,
      rec.host,
      rec.port,
      rec.protocol,
      rec.version,
      rec.weight,
      rec.priority,
      rec.location.region ?? null,
      rec.location.zone ?? null,
      rec.location.campus ?? null,
      rec.healthy ? 1 : 0,
      rec.isolate ? 1 : 0,
      rec.lastHeartbeat,
      rec.healthChangedAt,
      rec.revision,
      rec.createdAt,
      rec.updatedAt,
      rec.tokenHash,
      rec.verification.state,
      rec.verification.reason,
      rec.verification.at,
    ) as { seq: number };
    // prev === null: read in this transaction and absent, so there are no child rows yet;
    // prev === undefined: nothing is known, so every child row is rewritten.
    if (prev == null || !sameMetadata(prev.metadata, rec.metadata)) {
      if (prev !== null) s.deleteMetadata.run(seq);
      for (const [k, v] of Object.entries(rec.metadata)) s.putMetadata.run(seq, k, v);
    }
    if (prev == null || prev.ttl !== rec.ttl) s.putHealthCheck.run(seq, rec.ttl);
  }

  async deleteInstance(id: string): Promise<void> {
    this.s.deleteInstance.run(id);
  }

  async listInstanceIds(ns: string, svc: string): Promise<string[]> {
    return (this.s.listInstanceIds.all(ns, svc) as Array<{ id: string }>).map((r) => r.id);
  }

  async updateHeartbeats(beats: ReadonlyArray<{ id: string; lastHeartbeat: number }>): Promise<void> {
    for (const b of beats) this.s.updateHeartbeat.run(b.lastHeartbeat, b.id);
  }

  async listTokens(): Promise<TokenRecord[]> {
    return (this.s.listTokens.all() as TokenRow[]).map(tokenFromRow);
  }

  async putToken(rec: TokenRecord): Promise<void> {
    this.s.putToken.run(...tokenArgs(rec));
  }

  async appendEvent(e: NewEvent): Promise<number> {
    return Number(
      this.s.appendEvent.run(
        e.type,
        e.namespace,
        e.service ?? null,
        e.instanceId ?? null,
        e.at,
        JSON.stringify(e.detail),
      ).lastInsertRowid,
    );
  }

  async pruneEvents(keep: number, olderThan: number): Promise<number> {
    return this.s.pruneByCount.run(keep).changes + this.s.pruneByAge.run(olderThan).changes;
  }
}
