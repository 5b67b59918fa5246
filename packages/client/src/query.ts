import type { DiscoverFilter } from '@muster/api';

/** Escapes one path segment: names may hold `:` and `.`, ids whatever the caller chose. */
export const seg = (s: string): string => encodeURIComponent(s);

/** The discovery filter as query parameters, shared by discovery and watch. */
export function filterParams(f: DiscoverFilter = {}, q = new URLSearchParams()): URLSearchParams {
  if (f.status !== undefined) q.set('status', f.status);
  if (f.isolated !== undefined) q.set('isolated', f.isolated);
  for (const k of ['region', 'zone', 'campus'] as const) if (f[k] !== undefined) q.set(k, f[k]);
  for (const [k, v] of Object.entries(f.metadata ?? {})) q.set(`metadata.${k}`, v);
  return q;
}

/** Sets the defined entries only: an undefined option means "the server's default". */
export function setDefined(
  q: URLSearchParams,
  entries: Record<string, string | number | boolean | undefined>,
): URLSearchParams {
  for (const [k, v] of Object.entries(entries)) if (v !== undefined) q.set(k, String(v));
  return q;
}
