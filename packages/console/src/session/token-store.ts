/**
 * The access token of this tab: in session storage only, so it is gone when the tab closes and
 * never shared with other tabs or written to disk by the console.
 */
const KEY = 'muster.token';

let refusedListener: ((why: string) => void) | undefined;

export function currentToken(): string | null {
  return sessionStorage.getItem(KEY);
}

export function saveToken(token: string | null): void {
  if (token) sessionStorage.setItem(KEY, token);
  else sessionStorage.removeItem(KEY);
}

/** The server refused the token (revoked, unknown): the session ends. */
export function tokenRefused(why: string): void {
  saveToken(null);
  refusedListener?.(why);
}

export function onTokenRefused(listener: (why: string) => void): void {
  refusedListener = listener;
}
