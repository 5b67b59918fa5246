import { useEffect, useRef, useState } from 'react';
import { EVENT_TYPES } from '../../api/event-types';
import { get, query } from '../../api/http';
import type { RegistryEvent } from '../../api/types';
import { ErrorNote } from '../../shared/ErrorNote';
import { time } from '../../shared/format';
import { useRights } from '../../shared/use-rights';

const KEEP = 1000;
const SINCE = [
  ['', 'any time'],
  ['5m', 'last 5 min'],
  ['1h', 'last hour'],
  ['24h', 'last day'],
  ['7d', 'last week'],
] as const;

interface Filter {
  type: string;
  namespace: string;
  service: string;
  since: string;
}

/**
 * The event log, newest first, live: after the first page it asks every second for what came
 * after the newest event it holds. The audit trail (type audit) is offered to admin tokens.
 */
export function EventsPage() {
  const rights = useRights();
  const [f, setF] = useState<Filter>({ type: '', namespace: '', service: '', since: '' });
  const [events, setEvents] = useState<RegistryEvent[]>([]);
  const [error, setError] = useState<Error>();
  const [live, setLive] = useState(true);
  const liveRef = useRef(live);
  liveRef.current = live;
  const types = EVENT_TYPES.filter((t) => t !== 'audit' || rights.has('admin'));

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let newest = 0;
    const base = {
      type: f.type || undefined,
      namespace: f.namespace.trim() || undefined,
      service: f.service.trim() || undefined,
    };
    const first = async () => {
      try {
        const r = await get<{ events: RegistryEvent[] }>(
          `/v1/events${query({ ...base, since: f.since || undefined, limit: 200 })}`,
        );
        if (stopped) return;
        setEvents(r.events);
        setError(undefined);
        newest = r.events[0]?.id ?? 0;
      } catch (err) {
        if (!stopped) setError(err as Error);
      }
      if (!stopped) timer = setTimeout(() => void next(), 1000);
    };
    const next = async () => {
      if (liveRef.current) {
        try {
          const r = await get<{ events: RegistryEvent[] }>(
            `/v1/events${query({ ...base, after: newest, order: 'asc', limit: 1000 })}`,
          );
          if (stopped) return;
          if (r.events.length > 0) {
            newest = r.events[r.events.length - 1]!.id;
            setEvents((cur) => [...r.events.reverse(), ...cur].slice(0, KEEP));
          }
          setError(undefined);
        } catch (err) {
          if (!stopped) setError(err as Error);
        }
      }
      if (!stopped) timer = setTimeout(() => void next(), 1000);
    };
    void first();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [f]);

  const set = (k: keyof Filter, v: string) => setF((cur) => ({ ...cur, [k]: v }));
  return (
    <section className="panel events-page" aria-labelledby="events-title">
      <header className="panel-head">
        <h1 id="events-title">Events</h1>
        <label className="toggle">
          <input type="checkbox" checked={live} onChange={(e) => setLive(e.target.checked)} /> live
        </label>
      </header>
      <div className="filters" role="search">
        <label>
          Type
          <select value={f.type} onChange={(e) => set('type', e.target.value)}>
            <option value="">all changes</option>
            {types.map((t) => (
              <option key={t} value={t}>
                {t === 'audit' ? 'audit trail' : t}
              </option>
            ))}
          </select>
        </label>
        <label>
          Namespace <input type="text" value={f.namespace} onChange={(e) => set('namespace', e.target.value)} />
        </label>
        <label>
          Service <input type="text" value={f.service} onChange={(e) => set('service', e.target.value)} />
        </label>
        <label>
          Since
          <select value={f.since} onChange={(e) => set('since', e.target.value)}>
            {SINCE.map(([v, label]) => (
              <option key={v} value={v}>
                {label}
              </option>
            ))}
          </select>
        </label>
      </div>
      <ErrorNote error={error} />
      <table className="grid events">
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Time</th>
            <th scope="col">Type</th>
            <th scope="col">Namespace / service</th>
            <th scope="col">Instance</th>
            <th scope="col">Detail</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.id} data-type={e.type}>
              <td className="num">{e.id}</td>
              <td>{time(e.at)}</td>
              <td>
                <span className={`event-type t-${e.type.replace(/[._]/g, '-')}`}>{e.type}</span>
              </td>
              <td>
                {e.namespace}
                {e.service ? ` / ${e.service}` : ''}
              </td>
              <td className="mono">{e.instanceId ?? ''}</td>
              <td className="mono detail">{Object.keys(e.detail).length > 0 ? JSON.stringify(e.detail) : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {events.length === 0 && !error && <p className="muted">No events match.</p>}
    </section>
  );
}
