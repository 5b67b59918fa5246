/** Rows as the driver answers them, and records as the MySQL store writes and copies them. */

import type { RowDataPacket } from 'mysql2/promise';
import type { EventType, RegistryEvent } from '@muster/api';
import type { InstanceRecord, ServiceRecord } from '../../model/records.js';
import { iso, sameMetadata } from '../../model/records.js';
import { instanceFromRow, type InstanceRowFields } from '../instance-row.js';
import type { NamespaceRowFields, ServiceRowFields } from '../service-row.js';
import type { Value } from './statements.js';

export interface NsRow extends RowDataPacket, NamespaceRowFields {}
export interface SvcRow extends RowDataPacket, ServiceRowFields {}
export interface InstanceRow extends RowDataPacket, InstanceRowFields {
  /** One metadata pair per row when joined with instance_metadata (NULL: none). */
  md_key?: string | null;
  md_value?: string | null;
}
export interface EventRow extends RowDataPacket {
  id: number;
  type: string;
  namespace: string;
  service: string | null;
  instance_id: string | null;
  at: number;
  detail: string;
}

/** Rows of INSTANCE_SELECT folded into records, with each row's seq. */
export function instancesWithSeq(rows: InstanceRow[]): Array<{ rec: InstanceRecord; seq: number }> {
  const seqs = new Map<string, number>();
  for (const r of rows) seqs.set(r.id, Number(r.seq));
  return instancesFromJoinedRows(rows).map((rec) => ({ rec, seq: seqs.get(rec.id)! }));
}

/** Rows of INSTANCE_SELECT (one per metadata pair) folded into records, in first-seen order. */
export function instancesFromJoinedRows(rows: InstanceRow[]): InstanceRecord[] {
  const out = new Map<string, InstanceRecord>();
  for (const r of rows) {
    let rec = out.get(r.id);
    if (!rec) out.set(r.id, (rec = instanceFromRow(r, {})));
    if (r.md_key != null) rec.metadata[r.md_key] = r.md_value ?? '';
  }
  return [...out.values()];
}

export function eventFromRow(r: EventRow): RegistryEvent {
  const e: RegistryEvent = {
    id: Number(r.id),
    type: r.type as EventType,
    namespace: r.namespace,
    at: iso(Number(r.at)),
    detail: JSON.parse(r.detail) as Record<string, unknown>,
  };
  if (r.service !== null) e.service = r.service;
  if (r.instance_id !== null) e.instanceId = r.instance_id;
  return e;
}

/** The instance's columns; `revision` says how its revision is written (a provisional one is an expression). */
export function instanceRow(rec: InstanceRecord, revision: (n: number) => Value): Value[] {
  return [
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
    revision(rec.revision),
    rec.createdAt,
    rec.updatedAt,
    rec.tokenHash,
    rec.verification.state,
    rec.verification.reason,
    rec.verification.at,
  ];
}

export function cloneInstance(r: InstanceRecord): InstanceRecord {
  return { ...r, metadata: { ...r.metadata }, location: { ...r.location } };
}

/** A service's settings as its columns hold them: comment, metadata, verify_secret, verify_path. */
export function settingsOf(rec: ServiceRecord): Value[] {
  return [rec.comment, JSON.stringify(rec.metadata), rec.verification?.secret ?? null, rec.verification?.path ?? null];
}

/** What a service is configured with, apart from its revision and timestamps. */
export function sameSettings(a: ServiceRecord, b: ServiceRecord): boolean {
  return (
    a.comment === b.comment &&
    sameMetadata(a.metadata, b.metadata) &&
    (a.verification?.secret ?? null) === (b.verification?.secret ?? null) &&
    (a.verification?.path ?? null) === (b.verification?.path ?? null)
  );
}

export function svcKey(ns: string, name: string): string {
  return `${ns}\u0000${name}`;
}

export function cloneService(r: ServiceRecord): ServiceRecord {
  return { ...r, metadata: { ...r.metadata } };
}
