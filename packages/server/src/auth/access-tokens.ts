import crypto from 'node:crypto';
import { hashToken } from '../naming/identity.js';

/**
 * Access tokens read `mst_<id>_<secret>`: the id (12 hex) names the token in lists and
 * revocations, the secret (32 random bytes, base64url) is what proves it. The shape cannot be
 * confused with an instance's heartbeatToken (43 characters, no prefix), which also travels as
 * `Authorization: Bearer`.
 */
const SHAPE = /^mst_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$/;

export function newAccessToken(id = crypto.randomBytes(6).toString('hex')): {
  id: string;
  secret: string;
  hash: string;
} {
  const secret = `mst_${id}_${crypto.randomBytes(32).toString('base64url')}`;
  return { id, secret, hash: hashToken(secret) };
}

/** The token's id when the text has the shape of an access token; undefined otherwise. */
export function accessTokenId(text: string): string | undefined {
  return text.length === 60 ? SHAPE.exec(text)?.[1] : undefined;
}
