import type { DiscoverFilter, HealthStatusFilter, IsolatedFilter } from '@muster/api';

/** Builds the discovery filter from already shape-checked query parameters. */
export function filterFromQuery(q: Record<string, unknown>): DiscoverFilter {
  const f: DiscoverFilter = {};
  if (q['status'] !== undefined) f.status = q['status'] as HealthStatusFilter;
  if (q['isolated'] !== undefined) f.isolated = q['isolated'] as IsolatedFilter;
  for (const k of ['region', 'zone', 'campus'] as const) if (typeof q[k] === 'string') f[k] = q[k] as string;
  for (const [k, v] of Object.entries(q)) {
    if (k.startsWith('metadata.') && typeof v === 'string') (f.metadata ??= {})[k.slice('metadata.'.length)] = v;
  }
  return f;
}
