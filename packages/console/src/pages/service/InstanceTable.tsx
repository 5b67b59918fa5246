import { useVirtualizer } from '@tanstack/react-virtual';
import { memo, useEffect, useRef, useState } from 'react';
import type { DiscoveredInstance } from '../../api/types';
import { age } from '../../shared/format';
import type { InstanceQuery, SortKey } from './instance-view';

export type InstanceAction = 'isolate' | 'unisolate' | 'weight' | 'deregister';

const COLUMNS: Array<{ key: SortKey | 'metadata' | 'verification' | 'actions'; label: string; sortable: boolean }> = [
  { key: 'state', label: 'State', sortable: true },
  { key: 'address', label: 'Host:port', sortable: true },
  { key: 'version', label: 'Version', sortable: true },
  { key: 'protocol', label: 'Protocol', sortable: true },
  { key: 'zone', label: 'Zone', sortable: true },
  { key: 'weight', label: 'Weight', sortable: true },
  { key: 'priority', label: 'Priority', sortable: true },
  { key: 'metadata', label: 'Metadata', sortable: false },
  { key: 'age', label: 'Last heartbeat', sortable: true },
  { key: 'verification', label: 'Verification', sortable: false },
  { key: 'actions', label: 'Actions', sortable: false },
];

const ROW_HEIGHT = 34;

interface Props {
  rows: DiscoveredInstance[];
  /** When the snapshot arrived (performance.now()): each row's age grows from its answer's. */
  receivedAt: number;
  verification: string;
  q: InstanceQuery;
  onSort(key: SortKey): void;
  /** Absent: the token may not change instances, so no action is offered. */
  onAction?: (action: InstanceAction, instance: DiscoveredInstance) => void;
}

/**
 * Only the rows in view are in the DOM (a window of @tanstack/react-virtual), so 5,000
 * instances cost what 30 do, and a new snapshot re-renders only those.
 */
export function InstanceTable({ rows, receivedAt, verification, q, onSort, onAction }: Props) {
  const scroller = useRef<HTMLDivElement>(null);
  const now = useNow(1000);
  const virtual = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 10,
  });
  return (
    <div className="instance-table" role="table" aria-label="Instances" aria-rowcount={rows.length + 1}>
      <div role="rowgroup" className="thead">
        <div role="row" className="tr">
          {COLUMNS.map((c) => (
            <div
              role="columnheader"
              key={c.key}
              className={`td col-${c.key}`}
              aria-sort={c.key === q.sort ? (q.descending ? 'descending' : 'ascending') : undefined}
            >
              {c.sortable ? (
                <button type="button" className="sort" onClick={() => onSort(c.key as SortKey)}>
                  {c.label}
                  {c.key === q.sort ? (q.descending ? ' ▼' : ' ▲') : ''}
                </button>
              ) : (
                c.label
              )}
            </div>
          ))}
        </div>
      </div>
      <div ref={scroller} className="tbody" role="rowgroup">
        {rows.length === 0 && <p className="muted empty">No instance matches.</p>}
        <div style={{ height: virtual.getTotalSize(), position: 'relative' }}>
          {virtual.getVirtualItems().map((v) => {
            const i = rows[v.index]!;
            return (
              <Row
                key={i.id}
                i={i}
                index={v.index}
                top={v.start}
                ageMs={i.lastHeartbeatAgeMs + (now - receivedAt)}
                verification={verification}
                onAction={onAction}
              />
            );
          })}
        </div>
      </div>
    </div>
  );
}

const Row = memo(function Row({
  i,
  index,
  top,
  ageMs,
  verification,
  onAction,
}: {
  i: DiscoveredInstance;
  index: number;
  top: number;
  ageMs: number;
  verification: string;
  onAction: Props['onAction'];
}) {
  const late = ageMs > i.healthCheck.ttl * 1000 * 1.5;
  const metadata = Object.entries(i.metadata)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  return (
    <div
      role="row"
      className={`tr${i.healthy ? '' : ' unhealthy'}`}
      aria-rowindex={index + 2}
      data-id={i.id}
      style={{ position: 'absolute', top, left: 0, right: 0, height: ROW_HEIGHT }}
    >
      <div role="cell" className="td col-state" data-col="state">
        <span className={`state ${i.healthy ? 'ok' : 'bad'}`}>{i.healthy ? 'healthy' : 'unhealthy'}</span>
        {i.isolate && <span className="tag isolated">isolated</span>}
      </div>
      <div role="cell" className="td col-address mono" title={i.id}>
        {i.host}:{i.port}
      </div>
      <div role="cell" className="td col-version">
        {i.version}
      </div>
      <div role="cell" className="td col-protocol">
        {i.protocol}
      </div>
      <div role="cell" className="td col-zone">
        {i.location.zone ?? ''}
      </div>
      <div role="cell" className="td col-weight num" data-col="weight">
        {i.weight}
      </div>
      <div role="cell" className="td col-priority num">
        {i.priority}
      </div>
      <div role="cell" className="td col-metadata mono" title={metadata}>
        {metadata}
      </div>
      <div role="cell" className={`td col-age${late ? ' bad-text' : ''}`} title={`ttl ${i.healthCheck.ttl} s`}>
        {age(ageMs)} ago
      </div>
      <div role="cell" className="td col-verification">
        {verification}
      </div>
      <div role="cell" className="td col-actions">
        {onAction && (
          <>
            <button type="button" onClick={() => onAction(i.isolate ? 'unisolate' : 'isolate', i)}>
              {i.isolate ? 'Un-isolate' : 'Isolate'}
            </button>
            <button type="button" onClick={() => onAction('weight', i)}>
              Weight
            </button>
            <button type="button" className="danger" onClick={() => onAction('deregister', i)}>
              Deregister
            </button>
          </>
        )}
      </div>
    </div>
  );
});

/** A clock that ticks every `ms`: heartbeat ages count up between snapshots. */
function useNow(ms: number): number {
  const [now, setNow] = useState(() => performance.now());
  useEffect(() => {
    const t = setInterval(() => setNow(performance.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
