import { get } from '../../api/http';
import type { ClusterStatus } from '../../api/types';
import { ErrorNote } from '../../shared/ErrorNote';
import { age } from '../../shared/format';
import { usePoll } from '../../shared/use-poll';

/** The nodes serving this registry, who holds the sweep lease, and which ones went quiet. */
export function ClusterPanel() {
  const { data, error } = usePoll(() => get<ClusterStatus>('/v1/cluster'), 3000, 'cluster');
  return (
    <section className="panel" aria-labelledby="cluster-title">
      <header className="panel-head">
        <h2 id="cluster-title">{data?.mode === 'cluster' ? 'Cluster' : 'Server'}</h2>
        {data && (
          <span className="muted">{data.mode === 'cluster' ? `${data.nodes.length} nodes` : 'single node'}</span>
        )}
      </header>
      <ErrorNote error={error} />
      {data?.mode === 'cluster' && data.leaseHolder === null && (
        <p className="note error" role="alert">
          No node holds the sweep lease: nobody expires silent instances until one does.
        </p>
      )}
      {data && (
        <table className="grid nodes">
          <thead>
            <tr>
              <th scope="col">Node</th>
              <th scope="col">Version</th>
              <th scope="col">Last seen</th>
              <th scope="col">Role</th>
            </tr>
          </thead>
          <tbody>
            {data.nodes.map((n) => (
              <tr key={n.id} className={n.stale ? 'stale' : undefined}>
                <th scope="row" title={`${n.httpAddress} · gRPC ${n.grpcAddress}`}>
                  {n.id}
                  {n.self && <span className="muted"> (this)</span>}
                </th>
                <td>{n.version}</td>
                <td>
                  {age(n.lastSeenAgoMs)} ago{n.stale && <span className="tag bad">stale</span>}
                </td>
                <td>{n.leaseHolder ? <span className="tag">lease holder</span> : ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
