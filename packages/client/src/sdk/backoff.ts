/**
 * Exponential backoff with full jitter (attempt 1 waits up to `baseMs`, each further attempt
 * up to twice as long, never more than `maxMs`): many clients that failed together must not
 * retry together.
 */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** `ms` shifted by up to ±`ratio` of itself, so periodic work of many instances spreads out. */
export function jitter(ms: number, ratio = 0.1, random: () => number = Math.random): number {
  return Math.max(1, Math.round(ms * (1 + (random() * 2 - 1) * ratio)));
}
