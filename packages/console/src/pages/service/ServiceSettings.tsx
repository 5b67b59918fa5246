import { useState } from 'react';
import { api, seg } from '../../api/http';
import type { Service } from '../../api/types';
import { ConfirmDialog } from '../../shared/ConfirmDialog';
import { ErrorNote } from '../../shared/ErrorNote';

type Editing = 'enable' | 'disable' | undefined;

/**
 * The service's settings; verified registration can be turned on (with the providers' shared
 * secret, never shown again) or off where the token holds admin on the service.
 */
export function ServiceSettings({
  service,
  canChange,
  onChanged,
}: {
  service: Service;
  canChange: boolean;
  onChanged(s: Service): void;
}) {
  const [editing, setEditing] = useState<Editing>();
  const [secret, setSecret] = useState('');
  const [path, setPath] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error>();
  const v = service.verification;

  const save = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const verification = editing === 'disable' ? null : { secret, ...(path ? { path } : {}) };
      onChanged(
        await api<Service>('PATCH', `/v1/namespaces/${seg(service.namespace)}/services/${seg(service.name)}`, {
          verification,
        }),
      );
      setEditing(undefined);
      setSecret('');
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="panel settings" aria-labelledby="settings-title">
      <h2 id="settings-title">Settings</h2>
      <dl>
        <dt>Comment</dt>
        <dd>{service.comment || <span className="muted">none</span>}</dd>
        <dt>Metadata</dt>
        <dd className="mono">
          {Object.entries(service.metadata)
            .map(([k, val]) => `${k}=${val}`)
            .join(' ') || <span className="muted">none</span>}
        </dd>
        <dt>Verified registration</dt>
        <dd>
          {v.enabled ? (
            <>
              on, challenged at <span className="mono">{v.path}</span>; {v.pendingInstanceCount} pending,{' '}
              {v.failedInstanceCount} failed
            </>
          ) : (
            'off'
          )}
          {canChange && (
            <span className="inline-actions">
              {v.enabled && (
                <button type="button" onClick={() => setEditing('disable')}>
                  Turn off
                </button>
              )}
              <button type="button" onClick={() => setEditing('enable')}>
                {v.enabled ? 'Change secret' : 'Turn on'}
              </button>
            </span>
          )}
        </dd>
      </dl>
      {editing && (
        <ConfirmDialog
          title={
            editing === 'disable'
              ? `Turn off verification of ${service.name}?`
              : `Verified registration of ${service.name}`
          }
          confirmLabel={editing === 'disable' ? 'Turn off' : 'Save'}
          danger={editing === 'disable'}
          busy={busy}
          onConfirm={() => void save()}
          onCancel={() => {
            setEditing(undefined);
            setError(undefined);
          }}
        >
          {editing === 'disable' ? (
            <p>New instances become visible without proving the secret; instances that failed become visible too.</p>
          ) : (
            <>
              <p>New instances stay invisible until they answer the challenge with the HMAC of this secret.</p>
              <label>
                Secret{' '}
                <input
                  type="password"
                  autoComplete="new-password"
                  value={secret}
                  onChange={(e) => setSecret(e.target.value)}
                  required
                />
              </label>
              <label>
                Path{' '}
                <input
                  type="text"
                  value={path}
                  placeholder="/.well-known/muster/verify"
                  onChange={(e) => setPath(e.target.value)}
                />
              </label>
            </>
          )}
          <ErrorNote error={error} />
        </ConfirmDialog>
      )}
    </section>
  );
}
