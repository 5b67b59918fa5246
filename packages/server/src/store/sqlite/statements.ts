import type Database from 'better-sqlite3';
import { TOKEN_SELECT, TOKEN_UPSERT_VALUES } from '../token-row.js';

/** The SQL of the SQLite store's statements, prepared once on its write connection. */
const SQL = {
  getNamespace: 'SELECT name, comment, created_at, updated_at FROM namespace WHERE name = ?',
  putNamespace: `INSERT INTO namespace (name, comment, created_at, updated_at) VALUES (@name, @comment, @createdAt, @updatedAt)
    ON CONFLICT(name) DO UPDATE SET comment = excluded.comment, updated_at = excluded.updated_at`,
  deleteNamespace: 'DELETE FROM namespace WHERE name = ?',
  countServices: 'SELECT COUNT(*) AS n FROM service WHERE namespace = ?',
  getService: 'SELECT * FROM service WHERE namespace = ? AND name = ?',
  putService: `INSERT INTO service (namespace, name, comment, metadata, revision, created_at, updated_at, verify_secret, verify_path)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT(namespace, name) DO UPDATE SET comment = excluded.comment, metadata = excluded.metadata,
      revision = excluded.revision, updated_at = excluded.updated_at, verify_secret = excluded.verify_secret, verify_path = excluded.verify_path`,
  deleteService: 'DELETE FROM service WHERE namespace = ? AND name = ?',
  getInstance: 'SELECT i.*, h.ttl FROM instance i LEFT JOIN health_check h ON h.instance_seq = i.seq WHERE i.id = ?',
  getMetadata: 'SELECT key, value FROM instance_metadata WHERE instance_seq = ?',
  // Positional parameters: binding 20 named ones from an object costs more than the insert.
  putInstance: `INSERT INTO instance (id, namespace, service, host, port, protocol, version, weight, priority, region, zone, campus,
      healthy, isolate, last_heartbeat, health_changed_at, revision, created_at, updated_at, token_hash, verify_state, verify_reason, verify_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT(id) DO UPDATE SET namespace = excluded.namespace, service = excluded.service, host = excluded.host, port = excluded.port,
      protocol = excluded.protocol, version = excluded.version, weight = excluded.weight, priority = excluded.priority,
      region = excluded.region, zone = excluded.zone, campus = excluded.campus, healthy = excluded.healthy, isolate = excluded.isolate,
      last_heartbeat = excluded.last_heartbeat, health_changed_at = excluded.health_changed_at, revision = excluded.revision,
      updated_at = excluded.updated_at, token_hash = excluded.token_hash,
      verify_state = excluded.verify_state, verify_reason = excluded.verify_reason, verify_at = excluded.verify_at
    RETURNING seq`,
  deleteMetadata: 'DELETE FROM instance_metadata WHERE instance_seq = ?',
  putMetadata: 'INSERT INTO instance_metadata (instance_seq, key, value) VALUES (?, ?, ?)',
  putHealthCheck: `INSERT INTO health_check (instance_seq, type, ttl) VALUES (?, 'heartbeat', ?)
    ON CONFLICT(instance_seq) DO UPDATE SET type = excluded.type, ttl = excluded.ttl`,
  deleteInstance: 'DELETE FROM instance WHERE id = ?',
  listInstanceIds: 'SELECT id FROM instance WHERE namespace = ? AND service = ?',
  updateHeartbeat: 'UPDATE instance SET last_heartbeat = ? WHERE id = ?',
  appendEvent: 'INSERT INTO event (type, namespace, service, instance_id, at, detail) VALUES (?, ?, ?, ?, ?, ?)',
  pruneByCount: 'DELETE FROM event WHERE id <= (SELECT id FROM event ORDER BY id DESC LIMIT 1 OFFSET ?)',
  pruneByAge: 'DELETE FROM event WHERE at < ?',
  listTokens: TOKEN_SELECT,
  putToken: `INSERT OR REPLACE INTO access_token ${TOKEN_UPSERT_VALUES}`,
  begin: 'BEGIN IMMEDIATE',
  commit: 'COMMIT',
  rollback: 'ROLLBACK',
  savepoint: 'SAVEPOINT op',
  release: 'RELEASE op',
  rollbackTo: 'ROLLBACK TO op',
} as const;

export type SqliteStatements = { readonly [K in keyof typeof SQL]: Database.Statement };

export function prepareStatements(db: Database.Database): SqliteStatements {
  return Object.fromEntries(Object.entries(SQL).map(([name, sql]) => [name, db.prepare(sql)])) as SqliteStatements;
}
