import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from 'react';
import { ApiError, get } from '../api/http';
import type { SelfInfo } from '../api/types';
import { currentToken, onTokenRefused, saveToken } from './token-store';

export interface Session {
  self: SelfInfo;
  /** Auth is on and this tab has a token: it can sign out. */
  signedIn: boolean;
  signOut(): void;
}

const SessionContext = createContext<Session | undefined>(undefined);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside SessionGate');
  return s;
}

type State =
  | { kind: 'loading' }
  | { kind: 'login'; reason?: string }
  | { kind: 'ready'; self: SelfInfo }
  | { kind: 'error'; message: string };

/**
 * Asks the server who this tab is (GET /v1/tokens/self) before any page: with auth on and no
 * token accepted, the login form is all there is.
 */
export function SessionGate({
  login,
  children,
}: {
  login: (props: { reason?: string; onToken(token: string): Promise<void> }) => ReactNode;
  children: ReactNode;
}) {
  const [state, setState] = useState<State>({ kind: 'loading' });

  const check = useCallback(async (reason?: string) => {
    try {
      const self = await get<SelfInfo>('/v1/tokens/self');
      if (self.auth.enabled && !self.token) setState({ kind: 'login', ...(reason ? { reason } : {}) });
      else setState({ kind: 'ready', self });
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) setState({ kind: 'login', reason: err.message });
      else setState({ kind: 'error', message: (err as Error).message });
    }
  }, []);

  useEffect(() => {
    onTokenRefused((why) => setState({ kind: 'login', reason: `The server refused the token: ${why}` }));
    void check();
  }, [check]);

  const onToken = useCallback(
    async (token: string) => {
      saveToken(token);
      await check();
    },
    [check],
  );

  if (state.kind === 'loading') return <p className="page-note">Connecting…</p>;
  if (state.kind === 'error')
    return (
      <p className="page-note error" role="alert">
        The registry did not answer: {state.message}
      </p>
    );
  if (state.kind === 'login') return <>{login({ ...(state.reason ? { reason: state.reason } : {}), onToken })}</>;
  const session: Session = {
    self: state.self,
    signedIn: state.self.auth.enabled && currentToken() !== null,
    signOut: () => {
      saveToken(null);
      setState({ kind: 'login' });
    },
  };
  return <SessionContext.Provider value={session}>{children}</SessionContext.Provider>;
}
