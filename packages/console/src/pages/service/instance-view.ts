import type { DiscoveredInstance } from '../../api/types';

/** What the table shows of the watched instances: the filters and the sort of its header. */
export interface InstanceQuery {
  status: 'all' | 'healthy' | 'unhealthy';
  isolated: 'all' | 'yes' | 'no';
  zone: string;
  /** `key=value` (or `key` alone: has the key). */
  metadata: string;
  /** Matched against id, host:port, version and protocol. */
  search: string;
  sort: SortKey;
  descending: boolean;
}

export type SortKey = 'state' | 'address' | 'version' | 'protocol' | 'zone' | 'weight' | 'priority' | 'age';

export const DEFAULT_QUERY: InstanceQuery = {
  status: 'all',
  isolated: 'all',
  zone: '',
  metadata: '',
  search: '',
  sort: 'address',
  descending: false,
};

const plain = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
// Numbers inside names compare as numbers: 10.0.0.9 before 10.0.0.10, v2 before v10.
const text = new Intl.Collator('en', { numeric: true }).compare;

const COMPARE: Record<SortKey, (a: DiscoveredInstance, b: DiscoveredInstance) => number> = {
  // Unhealthy first, then isolated: what needs a look.
  state: (a, b) => Number(a.healthy) - Number(b.healthy) || Number(b.isolate) - Number(a.isolate),
  address: (a, b) => text(a.host, b.host) || a.port - b.port,
  version: (a, b) => text(a.version, b.version),
  protocol: (a, b) => text(a.protocol, b.protocol),
  zone: (a, b) => text(a.location.zone ?? '', b.location.zone ?? ''),
  weight: (a, b) => a.weight - b.weight,
  priority: (a, b) => a.priority - b.priority,
  age: (a, b) => a.lastHeartbeatAgeMs - b.lastHeartbeatAgeMs,
};

/** Filters and sorts; the id breaks ties so rows do not jump between snapshots. */
export function viewInstances(all: readonly DiscoveredInstance[], q: InstanceQuery): DiscoveredInstance[] {
  const search = q.search.trim().toLowerCase();
  const eq = q.metadata.indexOf('=');
  const mdKey = (eq < 0 ? q.metadata : q.metadata.slice(0, eq)).trim();
  const mdValue = eq < 0 ? undefined : q.metadata.slice(eq + 1).trim();
  const out = all.filter((i) => {
    if (q.status === 'healthy' && !i.healthy) return false;
    if (q.status === 'unhealthy' && i.healthy) return false;
    if (q.isolated === 'yes' && !i.isolate) return false;
    if (q.isolated === 'no' && i.isolate) return false;
    if (q.zone !== '' && (i.location.zone ?? '') !== q.zone) return false;
    if (mdKey !== '') {
      const v = i.metadata[mdKey];
      if (v === undefined || (mdValue !== undefined && v !== mdValue)) return false;
    }
    if (search !== '') {
      const hay = `${i.id} ${i.host}:${i.port} ${i.version} ${i.protocol}`.toLowerCase();
      if (!hay.includes(search)) return false;
    }
    return true;
  });
  const cmp = COMPARE[q.sort];
  const dir = q.descending ? -1 : 1;
  return out.sort((a, b) => dir * cmp(a, b) || plain(a.id, b.id));
}

export function zonesOf(all: readonly DiscoveredInstance[]): string[] {
  const zones = new Set<string>();
  for (const i of all) if (i.location.zone) zones.add(i.location.zone);
  return [...zones].sort();
}
