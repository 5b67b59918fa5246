import type { TokenRecord } from '../model/records.js';

/** The access_token table's row, the same in SQLite and MySQL. */
export interface TokenRow {
  id: string;
  name: string;
  hash: string;
  rules: string;
  created_at: number;
  created_by: string;
  revoked_at: number | null;
}

export const TOKEN_SELECT =
  'SELECT id, name, hash, rules, created_at, created_by, revoked_at FROM access_token ORDER BY created_at, id';
export const TOKEN_UPSERT_VALUES =
  '(id, name, hash, rules, created_at, created_by, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)';

export function tokenFromRow(r: TokenRow): TokenRecord {
  const rec: TokenRecord = {
    id: r.id,
    name: r.name,
    hash: r.hash,
    rules: JSON.parse(r.rules) as string[],
    createdAt: Number(r.created_at),
    createdBy: r.created_by,
  };
  if (r.revoked_at != null) rec.revokedAt = Number(r.revoked_at);
  return rec;
}

export function tokenArgs(t: TokenRecord): Array<string | number | null> {
  return [t.id, t.name, t.hash, JSON.stringify(t.rules), t.createdAt, t.createdBy, t.revokedAt ?? null];
}
