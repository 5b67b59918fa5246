import { ConsulErrors } from './consul-errors.js';

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const WHOLE = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/;
const PART = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;

/**
 * A Go duration (`10s`, `1m30s`, `500ms`, `1.5h`) in milliseconds, as Consul's clients write
 * them; `0` alone is zero as in Go. Anything else is a 400 naming `param`.
 */
export function parseGoDuration(param: string, value: unknown): number {
  if (typeof value !== 'string') throw ConsulErrors.badDuration(param, String(value));
  if (value === '0') return 0;
  if (value.length > 64 || !WHOLE.test(value)) throw ConsulErrors.badDuration(param, value);
  let ms = 0;
  for (const m of value.matchAll(PART)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  return Math.round(ms);
}
