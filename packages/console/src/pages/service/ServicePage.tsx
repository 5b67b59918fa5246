import { useEffect, useMemo, useState } from 'react';
import { Link } from 'wouter';
import { get, seg } from '../../api/http';
import type { DiscoveredInstance, Service } from '../../api/types';
import { ErrorNote } from '../../shared/ErrorNote';
import { useRights } from '../../shared/use-rights';
import { useSession } from '../../session/session';
import { InstanceActionDialog } from './InstanceActionDialog';
import { InstanceFilters } from './InstanceFilters';
import { InstanceTable, type InstanceAction } from './InstanceTable';
import { DEFAULT_QUERY, viewInstances, zonesOf, type InstanceQuery, type SortKey } from './instance-view';
import { ServiceSettings } from './ServiceSettings';
import { useServiceWatch } from './use-service-watch';

/** One service: its instances live, the actions the token allows, its settings. */
export function ServicePage({ namespace, service }: { namespace: string; service: string }) {
  const { self } = useSession();
  const rights = useRights(namespace, service);
  const watch = useServiceWatch(namespace, service);
  const [record, setRecord] = useState<Service>();
  const [recordError, setRecordError] = useState<Error>();
  const [q, setQ] = useState<InstanceQuery>(DEFAULT_QUERY);
  const [pending, setPending] = useState<{ action: InstanceAction; instance: DiscoveredInstance }>();

  // The service record (counts, verification) follows the watched revision.
  const revision = watch?.revision;
  useEffect(() => {
    get<Service>(`/v1/namespaces/${seg(namespace)}/services/${seg(service)}`).then(setRecord, setRecordError);
  }, [namespace, service, revision]);

  const all = watch?.instances;
  const rows = useMemo(() => viewInstances(all ?? [], q), [all, q]);
  const zones = useMemo(() => zonesOf(all ?? []), [all]);
  const onSort = (key: SortKey) =>
    setQ((cur) => ({ ...cur, sort: key, descending: cur.sort === key ? !cur.descending : false }));

  // With auth off, only an instance's own heartbeatToken changes it: nothing to offer here.
  const canChangeInstances = self.auth.enabled && rights.has('write');
  const v = record?.verification;
  const verificationText = v?.enabled ? 'verified' : '–';
  const unhealthy = all ? all.filter((i) => !i.healthy).length : 0;
  const isolated = all ? all.filter((i) => i.isolate).length : 0;

  return (
    <div className="service-page">
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link href="/">Overview</Link> / <span>{namespace}</span> / <strong>{service}</strong>
      </nav>
      <header className="page-head">
        <h1>{service}</h1>
        {all && (
          <p className="counts" aria-live="polite">
            <span data-count="instances">{all.length} instances</span> ·{' '}
            <span data-count="unhealthy" className={unhealthy ? 'bad-text' : ''}>
              {unhealthy} unhealthy
            </span>{' '}
            · <span data-count="isolated">{isolated} isolated</span>
            {' · '}revision {watch?.revision}
            <span
              className={`live ${watch?.connected ? 'on' : 'off'}`}
              title={watch?.error ?? 'updates arrive as they happen'}
            >
              {watch?.connected ? 'live' : 'reconnecting'}
            </span>
          </p>
        )}
      </header>
      <ErrorNote error={recordError} />
      {watch?.error && !watch.connected && (
        <p className="note error" role="alert">
          Watch: {watch.error}
        </p>
      )}
      {!self.auth.enabled && (
        <p className="note">
          Auth is off: an instance can be changed only with its own heartbeatToken, so the console offers no instance
          actions.
        </p>
      )}
      {self.auth.enabled && !rights.has('write') && (
        <p className="note">This token can read this service but not change it.</p>
      )}
      {v?.enabled && v.pendingInstanceCount + v.failedInstanceCount > 0 && (
        <p className="note">
          {v.pendingInstanceCount} instance(s) awaiting verification and {v.failedInstanceCount} that failed it are not
          listed: discovery does not show them until they pass.
        </p>
      )}
      <InstanceFilters q={q} zones={zones} onChange={setQ} />
      {watch ? (
        <InstanceTable
          rows={rows}
          receivedAt={watch.receivedAt}
          verification={verificationText}
          q={q}
          onSort={onSort}
          {...(canChangeInstances
            ? { onAction: (action: InstanceAction, instance: DiscoveredInstance) => setPending({ action, instance }) }
            : {})}
        />
      ) : (
        <p className="muted">Connecting to the watch…</p>
      )}
      {pending && <InstanceActionDialog {...pending} onDone={() => setPending(undefined)} />}
      {record && <ServiceSettings service={record} canChange={rights.has('admin')} onChanged={setRecord} />}
    </div>
  );
}
