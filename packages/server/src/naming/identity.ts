import crypto from 'node:crypto';

/**
 * The id of an instance the client did not name: derived from where it lives and where it
 * listens, so registering the same endpoint again reaches the same instance.
 */
export function deriveInstanceId(namespace: string, service: string, host: string, port: number): string {
  return crypto.createHash('sha1').update(`${namespace}\u0000${service}\u0000${host.toLowerCase()}\u0000${port}`).digest('hex');
}

/** A fresh heartbeat token: 32 random bytes, URL-safe. Only its hash is kept. */
export function newToken(): string {
  return crypto.randomBytes(32).toString('base64url');
}

export function hashToken(token: string): string {
  return crypto.createHash('sha256').update(token).digest('hex');
}

/** Compares a presented token with a stored hash in constant time. */
export function tokenMatches(presented: string, storedHash: string): boolean {
  const a = Buffer.from(hashToken(presented), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}
