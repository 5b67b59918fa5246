import { get } from '../../api/http';
import type { Stats } from '../../api/types';
import { ErrorNote } from '../../shared/ErrorNote';
import { rate } from '../../shared/format';
import { usePoll } from '../../shared/use-poll';

const SERIES = [
  { key: 'registrations', label: 'registrations', className: 's1' },
  { key: 'heartbeats', label: 'heartbeats', className: 's2' },
  { key: 'discoveries', label: 'discoveries', className: 's3' },
] as const;

const W = 360;
const H = 120;

/** Requests per second on the node the console talks to, over the server's kept history. */
export function RateChart() {
  const { data, error } = usePoll(() => get<Stats>('/v1/stats'), 5000, 'stats');
  const samples = data?.samples ?? [];
  const last = samples[samples.length - 1];
  const max = Math.max(1, ...samples.flatMap((s) => SERIES.map((x) => s[x.key])));
  const x = (i: number) => (samples.length <= 1 ? W : (i / (samples.length - 1)) * W);
  const y = (v: number) => H - (v / max) * (H - 4);
  const line = (k: (typeof SERIES)[number]['key']) =>
    samples.map((s, i) => `${x(i).toFixed(1)},${y(s[k]).toFixed(1)}`).join(' ');
  const minutes = data ? Math.round((samples.length * data.intervalMs) / 60000) : 0;
  return (
    <section className="panel" aria-labelledby="rates-title">
      <header className="panel-head">
        <h2 id="rates-title">Requests per second</h2>
        <span className="muted">this node{minutes > 0 ? `, last ${minutes} min` : ''}</span>
      </header>
      <ErrorNote error={error} />
      {data && samples.length < 2 && <p className="muted">Collecting: a point every {data.intervalMs / 1000} s.</p>}
      {samples.length >= 2 && (
        <svg
          className="chart"
          viewBox={`0 0 ${W} ${H}`}
          preserveAspectRatio="none"
          role="img"
          aria-label={SERIES.map((s) => `${s.label} ${rate(last?.[s.key] ?? 0)} per second`).join(', ')}
        >
          <line x1="0" x2={W} y1={H - 0.5} y2={H - 0.5} className="axis" />
          {SERIES.map((s) => (
            <polyline
              key={s.key}
              points={line(s.key)}
              className={s.className}
              fill="none"
              vectorEffect="non-scaling-stroke"
            />
          ))}
        </svg>
      )}
      <ul className="legend">
        {SERIES.map((s) => (
          <li key={s.key}>
            <span className={`swatch ${s.className}`} />
            {s.label} <strong data-rate={s.key}>{last ? rate(last[s.key]) : '–'}</strong>/s
          </li>
        ))}
        <li className="muted">peak {rate(max)}/s</li>
      </ul>
    </section>
  );
}
