import { useState } from 'react';
import { api, get, seg } from '../../api/http';
import type { AccessToken, CreateTokenResponse } from '../../api/types';
import { ConfirmDialog } from '../../shared/ConfirmDialog';
import { ErrorNote } from '../../shared/ErrorNote';
import { time } from '../../shared/format';
import { usePoll } from '../../shared/use-poll';

/** Access tokens, for admins: list, create with rules (the secret shown once), revoke. */
export function TokensPage() {
  const [showRevoked, setShowRevoked] = useState(false);
  const list = usePoll(
    () => get<{ tokens: AccessToken[] }>(`/v1/tokens?revoked=${showRevoked}`).then((r) => r.tokens),
    10_000,
    `tokens-${showRevoked}`,
  );
  const [name, setName] = useState('');
  const [rules, setRules] = useState('read:*/*');
  const [created, setCreated] = useState<CreateTokenResponse>();
  const [error, setError] = useState<Error>();
  const [revoking, setRevoking] = useState<AccessToken>();
  const [busy, setBusy] = useState(false);

  const create = async () => {
    setError(undefined);
    try {
      const r = await api<CreateTokenResponse>('POST', '/v1/tokens', {
        name: name.trim(),
        rules: rules
          .split(/\s*\n\s*/)
          .map((x) => x.trim())
          .filter(Boolean),
      });
      setCreated(r);
      setName('');
      list.refresh();
    } catch (err) {
      setError(err as Error);
    }
  };
  const revoke = async (t: AccessToken) => {
    setBusy(true);
    try {
      await api('DELETE', `/v1/tokens/${seg(t.id)}`);
      setRevoking(undefined);
      list.refresh();
    } catch (err) {
      setError(err as Error);
      setRevoking(undefined);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="tokens-page">
      <section className="panel" aria-labelledby="tokens-title">
        <header className="panel-head">
          <h1 id="tokens-title">Access tokens</h1>
          <label className="toggle">
            <input type="checkbox" checked={showRevoked} onChange={(e) => setShowRevoked(e.target.checked)} /> show
            revoked
          </label>
        </header>
        <ErrorNote error={list.error} />
        <table className="grid tokens">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Id</th>
              <th scope="col">Rules</th>
              <th scope="col">Created</th>
              <th scope="col">By</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.data?.map((t) => (
              <tr key={t.id} data-token={t.name} className={t.revokedAt ? 'revoked' : undefined}>
                <th scope="row">{t.name}</th>
                <td className="mono">{t.id}</td>
                <td className="mono">{t.rules.join(' ')}</td>
                <td>{time(t.createdAt)}</td>
                <td>{t.createdBy}</td>
                <td>
                  {t.revokedAt ? (
                    `revoked ${time(t.revokedAt)}`
                  ) : (
                    <button type="button" className="danger" onClick={() => setRevoking(t)}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <section className="panel" aria-labelledby="create-title">
        <h2 id="create-title">Create a token</h2>
        <form
          className="form"
          onSubmit={(e) => {
            e.preventDefault();
            void create();
          }}
        >
          <label>
            Name <input type="text" value={name} onChange={(e) => setName(e.target.value)} required />
          </label>
          <label>
            Rules, one per line
            <textarea rows={3} value={rules} onChange={(e) => setRules(e.target.value)} className="mono" />
          </label>
          <p className="muted">
            A rule reads <span className="mono">right:namespace/service</span> with right read, write or admin and{' '}
            <span className="mono">*</span> as a wildcard, e.g. <span className="mono">write:prod/orders-*</span>.
          </p>
          <button type="submit" className="primary">
            Create
          </button>
        </form>
        <ErrorNote error={error} />
        {created && (
          <div className="secret-box" role="status">
            <p>
              Token <strong>{created.token.name}</strong> created. Its secret is shown only this once: copy it now.
            </p>
            <input
              className="mono"
              readOnly
              value={created.secret}
              aria-label="New token secret"
              onFocus={(e) => e.target.select()}
            />
            <button type="button" onClick={() => setCreated(undefined)}>
              Done
            </button>
          </div>
        )}
      </section>
      {revoking && (
        <ConfirmDialog
          title={`Revoke ${revoking.name}?`}
          confirmLabel="Revoke"
          danger
          busy={busy}
          onConfirm={() => void revoke(revoking)}
          onCancel={() => setRevoking(undefined)}
        >
          <p>Every node refuses it from now on. This cannot be undone.</p>
        </ConfirmDialog>
      )}
    </div>
  );
}
