import crypto from 'node:crypto';

/**
 * The id of an instance the client did not name: derived from where it lives and where it
 * listens, so registering the same endpoint again reaches the same instance.
 */
export function deriveInstanceId(namespace: string, service: string, host: string, port: number): string {
  // crypto.hash (one shot) costs less than half of createHash().update().digest() per call.
  return crypto.hash('sha1', `${namespace}\u0000${service}\u0000${host.toLowerCase()}\u0000${port}`, 'hex');
}

/** What deriveInstanceId and scopedInstanceId make: 40 lowercase hex digits. */
const DERIVED = /^[0-9a-f]{40}$/;

export function looksDerived(id: string): boolean {
  return DERIVED.test(id);
}

/**
 * The id of an instance whose key (a caller-chosen id, or a derived one) is held elsewhere: the
 * key scoped to its namespace and service. The empty third field keeps it apart from every
 * derived id (a host is never empty), so it is no other endpoint's or service's id.
 */
export function scopedInstanceId(namespace: string, service: string, key: string): string {
  return crypto.hash('sha1', `${namespace}\u0000${service}\u0000\u0000${key}`, 'hex');
}

const TOKEN_BYTES = 32;
// One call to the CSPRNG per 128 tokens: a call per registration was a measurable share of CPU.
let pool = Buffer.alloc(0);
let poolOffset = 0;

/** A fresh heartbeat token: 32 random bytes, URL-safe. Only its hash is kept. */
export function newToken(): string {
  if (poolOffset + TOKEN_BYTES > pool.length) {
    pool = crypto.randomBytes(TOKEN_BYTES * 128);
    poolOffset = 0;
  }
  const token = pool.subarray(poolOffset, poolOffset + TOKEN_BYTES).toString('base64url');
  pool.fill(0, poolOffset, poolOffset + TOKEN_BYTES);
  poolOffset += TOKEN_BYTES;
  return token;
}

export function hashToken(token: string): string {
  return crypto.hash('sha256', token, 'hex');
}

/** Compares a presented token with a stored hash in constant time. */
export function tokenMatches(presented: string, storedHash: string): boolean {
  const a = crypto.hash('sha256', presented, 'buffer');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}
