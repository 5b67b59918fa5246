import type { DiscoverFilter, Location, Metadata } from './types.js';

/** What a discovery filter looks at; both the server's records and the SDK's instances have it. */
export interface Filterable {
  healthy: boolean;
  isolate: boolean;
  location: Location;
  metadata: Metadata;
}

/** The default filter: healthy and not isolated, nothing else. */
export function isDefaultFilter(f: DiscoverFilter): boolean {
  return (
    (f.status ?? 'healthy') === 'healthy' &&
    (f.isolated ?? 'false') === 'false' &&
    f.metadata === undefined &&
    f.region === undefined &&
    f.zone === undefined &&
    f.campus === undefined
  );
}

/** The meaning of a discovery filter, the same on the server and in the SDK's local cache. */
export function matchesFilter(i: Filterable, f: DiscoverFilter): boolean {
  const status = f.status ?? 'healthy';
  if (status !== 'all' && i.healthy !== (status === 'healthy')) return false;
  const isolated = f.isolated ?? 'false';
  if (isolated !== 'all' && i.isolate !== (isolated === 'true')) return false;
  if (f.region !== undefined && i.location.region !== f.region) return false;
  if (f.zone !== undefined && i.location.zone !== f.zone) return false;
  if (f.campus !== undefined && i.location.campus !== f.campus) return false;
  if (f.metadata) for (const [k, v] of Object.entries(f.metadata)) if (i.metadata[k] !== v) return false;
  return true;
}
