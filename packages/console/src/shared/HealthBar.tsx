/** Healthy, unhealthy and isolated shares of a service's instances as one bar. */
export function HealthBar({ healthy, unhealthy, isolated }: { healthy: number; unhealthy: number; isolated: number }) {
  const total = healthy + unhealthy;
  const label = `${healthy} healthy, ${unhealthy} unhealthy, ${isolated} isolated`;
  if (total === 0)
    return <div className="health-bar empty" role="img" aria-label="no instances" title="no instances" />;
  // An isolated instance is drawn as isolated whatever its health: it gets no traffic either way.
  const iso = Math.min(isolated, total);
  const bad = Math.min(unhealthy, total - iso);
  const pct = (n: number) => `${(n / total) * 100}%`;
  return (
    <div className="health-bar" role="img" aria-label={label} title={label}>
      <span className="ok" style={{ width: pct(total - iso - bad) }} />
      <span className="isolated" style={{ width: pct(iso) }} />
      <span className="bad" style={{ width: pct(bad) }} />
    </div>
  );
}
