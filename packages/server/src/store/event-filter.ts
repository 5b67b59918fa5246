import type { RegistryEvent } from '@muster/api';
import type { ChangeLogFilter } from './store.js';

/** The filter of listEvents as a predicate, for stores that filter in process (memory). */
export function matchesEvent(e: RegistryEvent, f: ChangeLogFilter, atMs: number): boolean {
  if (f.namespace !== undefined && e.namespace !== f.namespace) return false;
  if (f.service !== undefined && e.service !== f.service) return false;
  if (f.instanceId !== undefined && e.instanceId !== f.instanceId) return false;
  if (f.types !== undefined && f.types.length > 0 && !f.types.includes(e.type)) return false;
  if (f.afterId !== undefined && e.id <= f.afterId) return false;
  if (f.since !== undefined && atMs < f.since) return false;
  if (f.skip?.some(([from, to]) => e.id >= from && e.id <= to)) return false;
  return true;
}

/** The filter of listEvents as an SQL WHERE clause over the event table, the same on SQLite and MySQL. */
export function eventWhere(f: ChangeLogFilter): { where: string; args: Array<string | number> } {
  const conds: string[] = [];
  const args: Array<string | number> = [];
  if (f.namespace !== undefined) (conds.push('namespace = ?'), args.push(f.namespace));
  if (f.service !== undefined) (conds.push('service = ?'), args.push(f.service));
  if (f.instanceId !== undefined) (conds.push('instance_id = ?'), args.push(f.instanceId));
  if (f.types !== undefined && f.types.length > 0)
    (conds.push(`type IN (${f.types.map(() => '?').join(',')})`), args.push(...f.types));
  if (f.afterId !== undefined) (conds.push('id > ?'), args.push(f.afterId));
  if (f.since !== undefined) (conds.push('at >= ?'), args.push(f.since));
  for (const [from, to] of f.skip ?? []) (conds.push('id NOT BETWEEN ? AND ?'), args.push(from, to));
  return { where: conds.length ? `WHERE ${conds.join(' AND ')}` : '', args };
}
