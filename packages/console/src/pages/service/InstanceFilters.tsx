import type { InstanceQuery } from './instance-view';

/** The table's filters; each one narrows what the watch delivered, nothing is asked of the server. */
export function InstanceFilters({
  q,
  zones,
  onChange,
}: {
  q: InstanceQuery;
  zones: string[];
  onChange(q: InstanceQuery): void;
}) {
  const set = <K extends keyof InstanceQuery>(k: K, v: InstanceQuery[K]) => onChange({ ...q, [k]: v });
  return (
    <div className="filters" role="search">
      <label>
        Search{' '}
        <input
          type="search"
          value={q.search}
          placeholder="id, host:port, version"
          onChange={(e) => set('search', e.target.value)}
        />
      </label>
      <label>
        Status
        <select value={q.status} onChange={(e) => set('status', e.target.value as InstanceQuery['status'])}>
          <option value="all">all</option>
          <option value="healthy">healthy</option>
          <option value="unhealthy">unhealthy</option>
        </select>
      </label>
      <label>
        Isolated
        <select value={q.isolated} onChange={(e) => set('isolated', e.target.value as InstanceQuery['isolated'])}>
          <option value="all">all</option>
          <option value="yes">isolated</option>
          <option value="no">not isolated</option>
        </select>
      </label>
      <label>
        Zone
        <select value={q.zone} onChange={(e) => set('zone', e.target.value)}>
          <option value="">any</option>
          {zones.map((z) => (
            <option key={z} value={z}>
              {z}
            </option>
          ))}
        </select>
      </label>
      <label>
        Metadata{' '}
        <input
          type="text"
          value={q.metadata}
          placeholder="key=value"
          onChange={(e) => set('metadata', e.target.value)}
        />
      </label>
    </div>
  );
}
