-- twistbench host inventory, MySQL 8 and MariaDB 10.x. The schema is part of
-- the store contract: every back-end reads and writes exactly these tables.
--
-- InnoDB (foreign keys, transactions) and utf8mb4 with the server's default
-- collation, which is case-insensitive (utf8mb4_0900_ai_ci on MySQL 8,
-- utf8mb4_general_ci on MariaDB): 'Web1' and 'web1' are the same hostname
-- here, a duplicate, and HostByName('WEB1') finds 'web1'. That is a
-- documented per-dialect difference of the project, not hidden.
-- MySQL 8 has no CREATE INDEX IF NOT EXISTS, so secondary indexes are
-- declared inside CREATE TABLE. Statements are separated by ";" at the end
-- of a line; package schema runs them one by one.

CREATE TABLE IF NOT EXISTS hosts (
    id       BIGINT       NOT NULL AUTO_INCREMENT,
    hostname VARCHAR(64)  NOT NULL,
    ip_addr  VARCHAR(128) NOT NULL,
    port     INT          NOT NULL DEFAULT 22,
    PRIMARY KEY (id),
    CONSTRAINT uq_hosts_hostname UNIQUE (hostname),
    CONSTRAINT uq_hosts_ip_addr UNIQUE (ip_addr)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS host_groups (
    id   BIGINT      NOT NULL AUTO_INCREMENT,
    name VARCHAR(64) NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT uq_host_groups_name UNIQUE (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS host_group_members (
    host_id  BIGINT NOT NULL,
    group_id BIGINT NOT NULL,
    PRIMARY KEY (host_id, group_id),
    INDEX ix_host_group_members_group_id (group_id),
    CONSTRAINT fk_host_group_members_host FOREIGN KEY (host_id) REFERENCES hosts (id) ON DELETE CASCADE,
    CONSTRAINT fk_host_group_members_group FOREIGN KEY (group_id) REFERENCES host_groups (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS users (
    id   BIGINT      NOT NULL AUTO_INCREMENT,
    name VARCHAR(50) NOT NULL,
    PRIMARY KEY (id),
    INDEX ix_users_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS parent (
    id   BIGINT      NOT NULL AUTO_INCREMENT,
    name VARCHAR(64) NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS child (
    id        BIGINT      NOT NULL AUTO_INCREMENT,
    parent_id BIGINT      NOT NULL,
    name      VARCHAR(64) NOT NULL,
    PRIMARY KEY (id),
    INDEX ix_child_parent_id (parent_id),
    CONSTRAINT fk_child_parent FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
