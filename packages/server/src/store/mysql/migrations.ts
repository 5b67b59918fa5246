/**
 * Versioned schema migrations for the MySQL (MariaDB) store: the SQLite store's relational schema
 * in MySQL types. Append only: a released migration is never edited; a change is a new entry with
 * the next version.
 *
 * DDL is not transactional in MySQL, so every statement is idempotent (IF NOT EXISTS): a node
 * that died halfway through a migration leaves a database the next start completes. Several
 * nodes starting at once take turns under a named lock (see schema.ts).
 *
 * `{{COLLATE}}` is the server's binary NO PAD collation (utf8mb4_nopad_bin on MariaDB,
 * utf8mb4_0900_bin on MySQL 8): names, ids and metadata keys compare byte for byte as they do in
 * SQLite, so `Orders` and `orders` are two services and `a` and `a ` two metadata keys.
 * Timestamps are epoch milliseconds in BIGINT, never DATETIME: the store never converts time.
 */
export interface MysqlMigration {
  version: number;
  name: string;
  statements: readonly MigrationStatement[];
}

/**
 * A column added when missing. MariaDB has ADD COLUMN IF NOT EXISTS but MySQL 8 does not, so the
 * runner looks the column up in information_schema first: a migration that died halfway through
 * completes at the next start on both.
 */
export interface AddColumn {
  table: string;
  column: string;
  definition: string;
}

export type MigrationStatement = string | AddColumn;

const TABLE = 'ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE={{COLLATE}}';

export const MYSQL_MIGRATIONS: readonly MysqlMigration[] = [
  {
    version: 1,
    name: 'registry core',
    statements: [
      `CREATE TABLE IF NOT EXISTS namespace (
        name        VARCHAR(128) NOT NULL,
        comment     TEXT NOT NULL,
        created_at  BIGINT NOT NULL,
        updated_at  BIGINT NOT NULL,
        PRIMARY KEY (name)
      ) ${TABLE}`,

      `CREATE TABLE IF NOT EXISTS service (
        namespace   VARCHAR(128) NOT NULL,
        name        VARCHAR(128) NOT NULL,
        comment     TEXT NOT NULL,
        metadata    MEDIUMTEXT NOT NULL,
        revision    BIGINT NOT NULL,
        created_at  BIGINT NOT NULL,
        updated_at  BIGINT NOT NULL,
        PRIMARY KEY (namespace, name),
        CONSTRAINT service_namespace FOREIGN KEY (namespace) REFERENCES namespace (name)
      ) ${TABLE}`,

      // Child rows hang off the sequential seq, not the hashed id: new instances append at the
      // right edge of the clustered index and of every child index (as in SQLite).
      `CREATE TABLE IF NOT EXISTS instance (
        seq               BIGINT NOT NULL AUTO_INCREMENT,
        id                VARCHAR(128) NOT NULL,
        namespace         VARCHAR(128) NOT NULL,
        service           VARCHAR(128) NOT NULL,
        host              VARCHAR(255) NOT NULL,
        port              INT NOT NULL,
        protocol          VARCHAR(255) NOT NULL,
        version           VARCHAR(255) NOT NULL,
        weight            INT NOT NULL,
        priority          INT NOT NULL,
        region            VARCHAR(255) NULL,
        zone              VARCHAR(255) NULL,
        campus            VARCHAR(255) NULL,
        healthy           TINYINT NOT NULL,
        isolate           TINYINT NOT NULL,
        last_heartbeat    BIGINT NOT NULL,
        health_changed_at BIGINT NOT NULL,
        revision          BIGINT NOT NULL,
        created_at        BIGINT NOT NULL,
        updated_at        BIGINT NOT NULL,
        token_hash        VARCHAR(128) NOT NULL,
        PRIMARY KEY (seq),
        UNIQUE KEY instance_id (id),
        KEY instance_by_service (namespace, service),
        CONSTRAINT instance_service FOREIGN KEY (namespace, service) REFERENCES service (namespace, name)
      ) ${TABLE}`,

      `CREATE TABLE IF NOT EXISTS instance_metadata (
        instance_seq BIGINT NOT NULL,
        \`key\`      VARCHAR(128) NOT NULL,
        value        TEXT NOT NULL,
        PRIMARY KEY (instance_seq, \`key\`),
        CONSTRAINT instance_metadata_instance FOREIGN KEY (instance_seq) REFERENCES instance (seq) ON DELETE CASCADE
      ) ${TABLE}`,

      `CREATE TABLE IF NOT EXISTS health_check (
        instance_seq BIGINT NOT NULL,
        type         VARCHAR(32) NOT NULL,
        ttl          INT NOT NULL,
        PRIMARY KEY (instance_seq),
        CONSTRAINT health_check_instance FOREIGN KEY (instance_seq) REFERENCES instance (seq) ON DELETE CASCADE
      ) ${TABLE}`,

      // The change log: id is the change sequence every node follows (and every revision).
      `CREATE TABLE IF NOT EXISTS event (
        id          BIGINT NOT NULL AUTO_INCREMENT,
        type        VARCHAR(64) NOT NULL,
        namespace   VARCHAR(128) NOT NULL,
        service     VARCHAR(128) NULL,
        instance_id VARCHAR(128) NULL,
        at          BIGINT NOT NULL,
        detail      MEDIUMTEXT NOT NULL,
        PRIMARY KEY (id),
        KEY event_by_service (namespace, service, id),
        KEY event_by_instance (instance_id, id),
        KEY event_by_time (at)
      ) ${TABLE}`,
    ],
  },
  {
    version: 2,
    name: 'access tokens',
    statements: [
      `CREATE TABLE IF NOT EXISTS access_token (
        id         VARCHAR(32) NOT NULL,
        name       VARCHAR(128) NOT NULL,
        hash       CHAR(64) NOT NULL,
        rules      TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        created_by VARCHAR(256) NOT NULL,
        revoked_at BIGINT NULL,
        PRIMARY KEY (id)
      ) ${TABLE}`,
    ],
  },
  {
    version: 3,
    name: 'verified registration',
    statements: [
      // The secret is kept as given: the check computes an HMAC under it. NULL: verification off.
      { table: 'service', column: 'verify_secret', definition: 'VARCHAR(256) NULL' },
      { table: 'service', column: 'verify_path', definition: 'VARCHAR(256) NULL' },
      // Existing instances are in services without verification: verified, never checked.
      { table: 'instance', column: 'verify_state', definition: "VARCHAR(16) NOT NULL DEFAULT 'verified'" },
      { table: 'instance', column: 'verify_reason', definition: "VARCHAR(512) NOT NULL DEFAULT ''" },
      { table: 'instance', column: 'verify_at', definition: 'BIGINT NOT NULL DEFAULT 0' },
    ],
  },
];

/** The statement with the server's collation filled in. */
export function migrationSql(statement: string, collation: string): string {
  return statement.replaceAll('{{COLLATE}}', collation);
}
