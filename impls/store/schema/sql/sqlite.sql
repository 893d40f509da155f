-- twistbench host inventory, SQLite 3.35 or later (RETURNING). The schema is
-- part of the store contract: every back-end reads and writes exactly these
-- tables.
--
-- Ids are INTEGER PRIMARY KEY (the 64-bit rowid) with AUTOINCREMENT so that
-- an id is never reused after a delete, as on the other dialects; Truncate
-- resets sqlite_sequence. Foreign keys (and so ON DELETE CASCADE) are only
-- enforced on a connection with PRAGMA foreign_keys=ON: package sqlconn
-- opens every SQLite connection with it. Text compares case-sensitively
-- (BINARY collation), as on PostgreSQL. Statements are separated by ";" at
-- the end of a line; package schema runs them one by one.

CREATE TABLE IF NOT EXISTS hosts (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    hostname VARCHAR(64)  NOT NULL,
    ip_addr  VARCHAR(128) NOT NULL,
    port     INTEGER      NOT NULL DEFAULT 22,
    CONSTRAINT uq_hosts_hostname UNIQUE (hostname),
    CONSTRAINT uq_hosts_ip_addr UNIQUE (ip_addr)
);

CREATE TABLE IF NOT EXISTS host_groups (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    name VARCHAR(64) NOT NULL,
    CONSTRAINT uq_host_groups_name UNIQUE (name)
);

CREATE TABLE IF NOT EXISTS host_group_members (
    host_id  INTEGER NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL REFERENCES host_groups (id) ON DELETE CASCADE,
    PRIMARY KEY (host_id, group_id)
);

CREATE INDEX IF NOT EXISTS ix_host_group_members_group_id ON host_group_members (group_id);

CREATE TABLE IF NOT EXISTS users (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    name VARCHAR(50) NOT NULL
);

CREATE INDEX IF NOT EXISTS ix_users_name ON users (name);

CREATE TABLE IF NOT EXISTS parent (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    name VARCHAR(64) NOT NULL
);

CREATE TABLE IF NOT EXISTS child (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    parent_id INTEGER     NOT NULL REFERENCES parent (id) ON DELETE CASCADE,
    name      VARCHAR(64) NOT NULL
);

CREATE INDEX IF NOT EXISTS ix_child_parent_id ON child (parent_id);
