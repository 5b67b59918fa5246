/**
 * Versioned schema migrations for the SQLite store. Append only: a released migration is never
 * edited; a change is a new entry with the next version.
 */
export const SQLITE_MIGRATIONS: ReadonlyArray<{ version: number; name: string; sql: string }> = [
  {
    version: 1,
    name: 'registry core',
    sql: `
      CREATE TABLE namespace (
        name        TEXT PRIMARY KEY,
        comment     TEXT NOT NULL DEFAULT '',
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE service (
        namespace   TEXT NOT NULL REFERENCES namespace(name),
        name        TEXT NOT NULL,
        comment     TEXT NOT NULL DEFAULT '',
        metadata    TEXT NOT NULL DEFAULT '{}',
        revision    INTEGER NOT NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (namespace, name)
      ) STRICT;

      -- Child rows hang off the sequential seq, not the hashed id: new instances then append at
      -- the right edge of every child B-tree instead of dirtying a random page in each, which
      -- is most of the cost of a commit.
      CREATE TABLE instance (
        seq               INTEGER PRIMARY KEY,
        id                TEXT NOT NULL UNIQUE,
        namespace         TEXT NOT NULL,
        service           TEXT NOT NULL,
        host              TEXT NOT NULL,
        port              INTEGER NOT NULL,
        protocol          TEXT NOT NULL,
        version           TEXT NOT NULL,
        weight            INTEGER NOT NULL,
        priority          INTEGER NOT NULL,
        region            TEXT,
        zone              TEXT,
        campus            TEXT,
        healthy           INTEGER NOT NULL,
        isolate           INTEGER NOT NULL,
        last_heartbeat    INTEGER NOT NULL,
        health_changed_at INTEGER NOT NULL,
        revision          INTEGER NOT NULL,
        created_at        INTEGER NOT NULL,
        updated_at        INTEGER NOT NULL,
        token_hash        TEXT NOT NULL,
        FOREIGN KEY (namespace, service) REFERENCES service(namespace, name)
      ) STRICT;
      CREATE INDEX instance_by_service ON instance(namespace, service);

      CREATE TABLE instance_metadata (
        instance_seq INTEGER NOT NULL REFERENCES instance(seq) ON DELETE CASCADE,
        key          TEXT NOT NULL,
        value        TEXT NOT NULL,
        PRIMARY KEY (instance_seq, key)
      ) STRICT, WITHOUT ROWID;

      CREATE TABLE health_check (
        instance_seq INTEGER PRIMARY KEY REFERENCES instance(seq) ON DELETE CASCADE,
        type         TEXT NOT NULL,
        ttl          INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE event (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        type        TEXT NOT NULL,
        namespace   TEXT NOT NULL,
        service     TEXT,
        instance_id TEXT,
        at          INTEGER NOT NULL,
        detail      TEXT NOT NULL
      );
      CREATE INDEX event_by_service ON event(namespace, service, id);
      CREATE INDEX event_by_time ON event(at);
    `,
  },
  {
    version: 2,
    name: 'access tokens',
    sql: `
      CREATE TABLE access_token (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL,
        hash       TEXT NOT NULL,
        rules      TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        revoked_at INTEGER
      ) STRICT;
    `,
  },
  {
    version: 3,
    name: 'verified registration',
    sql: `
      -- The secret is kept as given: the check computes an HMAC under it. NULL: verification off.
      ALTER TABLE service ADD COLUMN verify_secret TEXT;
      ALTER TABLE service ADD COLUMN verify_path TEXT;
      -- Existing instances are in services without verification: verified, never checked.
      ALTER TABLE instance ADD COLUMN verify_state TEXT NOT NULL DEFAULT 'verified' CHECK (verify_state IN ('verified', 'pending', 'failed'));
      ALTER TABLE instance ADD COLUMN verify_reason TEXT NOT NULL DEFAULT '';
      ALTER TABLE instance ADD COLUMN verify_at INTEGER NOT NULL DEFAULT 0;
    `,
  },
];
