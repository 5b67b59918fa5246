/**
 * The SQL text of the MySQL store and the server error numbers it tells apart. Every value is
 * escaped by the driver; only integers are ever spliced into SQL text.
 */

export const INSTANCE_COLUMNS =
  'id, namespace, service, host, port, protocol, version, weight, priority, region, zone, campus, healthy, isolate, last_heartbeat, health_changed_at, revision, created_at, updated_at, token_hash, verify_state, verify_reason, verify_at';
export const INSTANCE_PLACEHOLDERS = INSTANCE_COLUMNS.split(',')
  .map(() => '?')
  .join(', ');
const INSTANCE_SET =
  'namespace = ?, service = ?, host = ?, port = ?, protocol = ?, version = ?, weight = ?, priority = ?, region = ?, zone = ?, campus = ?, healthy = ?, isolate = ?, last_heartbeat = ?, health_changed_at = ?, revision = ?, updated_at = ?, token_hash = ?, verify_state = ?, verify_reason = ?, verify_at = ?';
/** An instance with its ttl and metadata, one row per metadata pair: one statement, one snapshot. */
export const INSTANCE_SELECT = `SELECT i.*, h.ttl, m.\`key\` AS md_key, m.value AS md_value FROM instance i
  LEFT JOIN health_check h ON h.instance_seq = i.seq LEFT JOIN instance_metadata m ON m.instance_seq = i.seq`;

const INSTANCE_UPDATE_COLUMNS = INSTANCE_SET.split(', ').map((c) => c.replace(/ = \?$/, ''));

export const SQL = {
  namespaces: 'SELECT name, comment, created_at, updated_at FROM namespace',
  getNamespace: 'SELECT name, comment, created_at, updated_at FROM namespace WHERE name = ?',
  insertNamespace: 'INSERT INTO namespace (name, comment, created_at, updated_at) VALUES (?, ?, ?, ?)',
  upsertNamespace: `INSERT INTO namespace (name, comment, created_at, updated_at) VALUES (?, ?, ?, ?)
    ON DUPLICATE KEY UPDATE comment = VALUES(comment), updated_at = VALUES(updated_at)`,
  deleteNamespace: 'DELETE FROM namespace WHERE name = ?',
  countServices: 'SELECT COUNT(*) AS n FROM service WHERE namespace = ?',
  // Read without a lock: a revision bump locks the row at commit, a change of its settings at once (lockService).
  getService: 'SELECT * FROM service WHERE namespace = ? AND name = ?',
  lockService: 'SELECT * FROM service WHERE namespace = ? AND name = ? FOR UPDATE',
  // The settings the write was decided on must still be the row's: else comment = NULL fails the
  // statement (strict sql_mode), and with it the commit, as a conflict (ER.BAD_NULL).
  bumpService:
    'UPDATE service SET comment = IF(comment = ? AND metadata = ? AND verify_secret <=> ? AND verify_path <=> ?, comment, NULL), ' +
    'revision = GREATEST(revision, ?), updated_at = GREATEST(updated_at, ?) WHERE namespace = ? AND name = ?',
  insertService:
    'INSERT INTO service (namespace, name, comment, metadata, revision, created_at, updated_at, verify_secret, verify_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
  // A revision never goes backwards, whatever order two nodes commit in.
  upsertService: `INSERT INTO service (namespace, name, comment, metadata, revision, created_at, updated_at, verify_secret, verify_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON DUPLICATE KEY UPDATE comment = VALUES(comment), metadata = VALUES(metadata), revision = GREATEST(revision, VALUES(revision)), updated_at = VALUES(updated_at),
      verify_secret = VALUES(verify_secret), verify_path = VALUES(verify_path)`,
  updateService:
    'UPDATE service SET comment = ?, metadata = ?, verify_secret = ?, verify_path = ?, revision = GREATEST(revision, ?), updated_at = ? WHERE namespace = ? AND name = ?',
  deleteService: 'DELETE FROM service WHERE namespace = ? AND name = ?',
  getInstance: `${INSTANCE_SELECT} WHERE i.id = ? FOR UPDATE`,
  listInstances: `${INSTANCE_SELECT} WHERE i.namespace = ? AND i.service = ? FOR UPDATE`,
  // LAST_INSERT_ID(seq): the answer's insertId is the row's seq whether it was inserted or updated.
  upsertInstance: `INSERT INTO instance (${INSTANCE_COLUMNS}) VALUES (${INSTANCE_PLACEHOLDERS})
    ON DUPLICATE KEY UPDATE seq = LAST_INSERT_ID(seq), ${INSTANCE_UPDATE_COLUMNS.map((c) => `${c} = VALUES(${c})`).join(', ')}`,
  // Right after an instance upsert, LAST_INSERT_ID() is its seq (the child tables have no AUTO_INCREMENT).
  deleteMetadataLast: 'DELETE FROM instance_metadata WHERE instance_seq = LAST_INSERT_ID()',
  upsertHealthCheckLast:
    "INSERT INTO health_check (instance_seq, type, ttl) VALUES (LAST_INSERT_ID(), 'heartbeat', ?) ON DUPLICATE KEY UPDATE type = VALUES(type), ttl = VALUES(ttl)",
  deleteInstance: 'DELETE FROM instance WHERE id = ?',
  // The held-back writes of a transaction, at commit (see CommitPlan.instanceWrites).
  deleteInstances: 'DELETE FROM instance WHERE seq IN (?)',
  insertInstances: `INSERT INTO instance (${INSTANCE_COLUMNS})`,
  // Only rows this transaction holds locked: the insert part never happens.
  upsertInstances: `INSERT INTO instance (${INSTANCE_COLUMNS})`,
  upsertInstancesTail: ` ON DUPLICATE KEY UPDATE ${INSTANCE_UPDATE_COLUMNS.map((c) => `${c} = VALUES(${c})`).join(', ')}`,
  insertHealthChecks: 'INSERT INTO health_check (instance_seq, type, ttl)',
  upsertHealthChecks: 'INSERT INTO health_check (instance_seq, type, ttl)',
  upsertHealthChecksTail: ' ON DUPLICATE KEY UPDATE type = VALUES(type), ttl = VALUES(ttl)',
  deleteMetadataOf: 'DELETE FROM instance_metadata WHERE instance_seq IN (?)',
  insertMetadata: 'INSERT INTO instance_metadata (instance_seq, `key`, value)',
  // Events take their id (the change number) from AUTO_INCREMENT at commit.
  insertEvents: 'INSERT INTO event (type, namespace, service, instance_id, at, detail)',
  // Ids a rolled-back commit took: written as unused (type '') so followers need not wait for them.
  insertUnusedEvents: 'INSERT INTO event (id, type, namespace, service, instance_id, at, detail)',
  // A row written at once with a provisional revision gets the real one at commit.
  fixInstanceRevision: 'UPDATE instance SET revision = ? WHERE seq = ?',
  fixServiceRevision: 'UPDATE service SET revision = GREATEST(revision, ?) WHERE namespace = ? AND name = ?',
} as const;

/** The name of the savepoint each operation of a batch runs in (one level: the name is reused). */
export const SAVEPOINT = 'muster_op';

/** MySQL error numbers the store answers as "retry" rather than as a bug. */
export const ER = {
  BAD_NULL: 1048,
  DUP_ENTRY: 1062,
  LOCK_WAIT_TIMEOUT: 1205,
  LOCK_DEADLOCK: 1213,
  SP_DOES_NOT_EXIST: 1305,
  ROW_IS_REFERENCED: 1451,
  NO_REFERENCED_ROW: 1452,
  ROW_IS_REFERENCED_2: 1217,
  NO_REFERENCED_ROW_2: 1216,
} as const;
/** The connection (or the server) is gone: the connection is thrown away. */
export const CONNECTION_ERRNOS = new Set([
  1040 /* too many connections */, 1053 /* server shutdown */, 1152, 1153, 1927 /* killed */, 2006, 2013, 4031,
]);
/** The statement ran out of time on the server; the transaction is given up. */
export const STATEMENT_TIMEOUT_ERRNOS = new Set([
  1969 /* MariaDB max_statement_time */, 3024 /* MySQL max_execution_time */,
]);

/** What another node's concurrent write causes: the same writes in smaller transactions may succeed. */
export const COLLISION_ERRNOS = new Set<number>([
  ER.BAD_NULL,
  ER.DUP_ENTRY,
  ER.LOCK_DEADLOCK,
  ER.NO_REFERENCED_ROW,
  ER.NO_REFERENCED_ROW_2,
  ER.ROW_IS_REFERENCED,
  ER.ROW_IS_REFERENCED_2,
]);
