import { useState } from 'react';

/** Auth is on: the console needs an access token, kept in this tab's session storage only. */
export function LoginPage({ reason, onToken }: { reason?: string; onToken(token: string): Promise<void> }) {
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  return (
    <main className="login">
      <form
        className="panel form"
        onSubmit={(e) => {
          e.preventDefault();
          setBusy(true);
          void onToken(token.trim()).finally(() => setBusy(false));
        }}
      >
        <h1>Muster</h1>
        <p>
          This registry requires an access token. It is kept in this browser tab only, until the tab closes or you sign
          out.
        </p>
        {reason && (
          <p className="note refused" role="alert">
            {reason}
          </p>
        )}
        <label>
          Access token{' '}
          <input
            type="password"
            autoComplete="off"
            value={token}
            onChange={(e) => setToken(e.target.value)}
            placeholder="mst_…"
            required
            autoFocus
          />
        </label>
        <button type="submit" className="primary" disabled={busy || token.trim() === ''}>
          Sign in
        </button>
        <p className="muted">
          The server printed the admin token at its first start and keeps it in{' '}
          <span className="mono">data/admin.token</span>; <span className="mono">muster tokens create</span> makes
          narrower ones.
        </p>
      </form>
    </main>
  );
}
