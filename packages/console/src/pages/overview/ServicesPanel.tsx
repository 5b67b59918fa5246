import { useState } from 'react';
import { Link } from 'wouter';
import { get, query, seg } from '../../api/http';
import type { Namespace, Service } from '../../api/types';
import { ErrorNote } from '../../shared/ErrorNote';
import { HealthBar } from '../../shared/HealthBar';
import { usePoll } from '../../shared/use-poll';

interface Listing {
  namespaces: Namespace[];
  services: Record<string, Service[]>;
}

async function loadListing(): Promise<Listing> {
  const { namespaces } = await get<{ namespaces: Namespace[] }>('/v1/namespaces');
  const lists = await Promise.all(
    namespaces.map((n) =>
      get<{ services: Service[] }>(`/v1/namespaces/${seg(n.name)}/services${query({ limit: 1000 })}`).then(
        (r) => r.services,
      ),
    ),
  );
  return { namespaces, services: Object.fromEntries(namespaces.map((n, i) => [n.name, lists[i] ?? []])) };
}

/** Every namespace the token sees, with its services' counts; polled, so new services show up by themselves. */
export function ServicesPanel() {
  const { data, error } = usePoll(loadListing, 2000, 'services');
  const [filter, setFilter] = useState('');
  const match = (s: Service) => filter === '' || s.name.toLowerCase().includes(filter.toLowerCase());
  return (
    <section className="panel services-panel" aria-labelledby="services-title">
      <header className="panel-head">
        <h1 id="services-title">Services</h1>
        <input
          type="search"
          placeholder="Filter services"
          aria-label="Filter services"
          value={filter}
          onChange={(e) => setFilter(e.target.value)}
        />
      </header>
      <ErrorNote error={error} />
      {!data && !error && <p className="muted">Loading…</p>}
      {data?.namespaces.map((ns) => {
        const services = (data.services[ns.name] ?? []).filter(match);
        return (
          <div key={ns.name} className="namespace">
            <h2>
              {ns.name}
              {ns.comment && <span className="muted"> · {ns.comment}</span>}
            </h2>
            {services.length === 0 ? (
              <p className="muted">{filter ? 'No service matches.' : 'No services yet.'}</p>
            ) : (
              <table className="grid services" data-namespace={ns.name}>
                <thead>
                  <tr>
                    <th scope="col">Service</th>
                    <th scope="col" className="num">
                      Instances
                    </th>
                    <th scope="col" className="num">
                      Healthy
                    </th>
                    <th scope="col" className="num">
                      Unhealthy
                    </th>
                    <th scope="col" className="num">
                      Isolated
                    </th>
                    <th scope="col">Health</th>
                  </tr>
                </thead>
                <tbody>
                  {services.map((s) => {
                    const unhealthy = s.instanceCount - s.healthyInstanceCount;
                    return (
                      <tr key={s.name} data-service={s.name}>
                        <th scope="row">
                          <Link href={`/services/${seg(ns.name)}/${seg(s.name)}`}>{s.name}</Link>
                          {s.verification.enabled && (
                            <span className="tag" title="new instances must prove the service's secret">
                              verified
                            </span>
                          )}
                        </th>
                        <td className="num" data-col="instances">
                          {s.instanceCount}
                        </td>
                        <td className="num" data-col="healthy">
                          {s.healthyInstanceCount}
                        </td>
                        <td className={`num${unhealthy > 0 ? ' bad-text' : ''}`} data-col="unhealthy">
                          {unhealthy}
                        </td>
                        <td className="num" data-col="isolated">
                          {s.isolatedInstanceCount}
                        </td>
                        <td>
                          <HealthBar
                            healthy={s.healthyInstanceCount}
                            unhealthy={unhealthy}
                            isolated={s.isolatedInstanceCount}
                          />
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            )}
          </div>
        );
      })}
    </section>
  );
}
