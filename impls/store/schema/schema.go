// Package schema is the one source of truth for the host inventory's tables:
// the DDL per dialect (embedded from sql/<dialect>.sql, readable by psql,
// mysql and sqlite3 as is), and the maintenance the suites and the CLI need
// around it: create, truncate, drop, and a catalog reader that shows what a
// database really holds, so that GORM's AutoMigrate can be compared with it.
//
// The tables, as the store contract states them:
//
//	hosts(id, hostname varchar(64) unique not null, ip_addr varchar(128) unique not null, port integer not null default 22)
//	host_groups(id, name varchar(64) unique not null)
//	host_group_members(host_id -> hosts.id, group_id -> host_groups.id, primary key (host_id, group_id)), both ON DELETE CASCADE
//	users(id, name varchar(50) not null)
//	parent(id, name varchar(64) not null)
//	child(id, parent_id not null -> parent.id ON DELETE CASCADE, name varchar(64) not null)
//
// Ids are 64-bit (BIGINT identity on PostgreSQL, BIGINT AUTO_INCREMENT on
// MySQL, INTEGER PRIMARY KEY AUTOINCREMENT on SQLite) because the models use
// int64.
//
// Per-dialect differences that the schema does not hide:
//   - MySQL/MariaDB use the server's default utf8mb4 collation, which is
//     case-insensitive: "Web1" and "web1" collide on the unique hostname
//     and match each other in WHERE. PostgreSQL and SQLite compare bytes.
//   - SQLite enforces foreign keys (and so the cascades) only on connections
//     opened with PRAGMA foreign_keys=ON; package sqlconn does that for
//     every connection, and a *store.DB built by hand must too
//     ("file:x.db?_foreign_keys=1" with mattn/go-sqlite3).
package schema

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"strings"

	"github.com/twistbench/twistbench/impls/store"
)

//go:embed sql/*.sql
var files embed.FS

// Tables lists the tables children first: the order in which they can be
// emptied or dropped without breaking a foreign key. Create runs them in the
// reverse order.
var Tables = []string{"host_group_members", "hosts", "host_groups", "users", "child", "parent"}

// DDL returns the schema of dialect as the text of its .sql file.
func DDL(d store.Dialect) (string, error) {
	switch d {
	case store.Postgres, store.MySQL, store.SQLite:
	default:
		return "", fmt.Errorf("schema: unknown dialect %q", d)
	}
	b, err := files.ReadFile("sql/" + string(d) + ".sql")
	if err != nil {
		return "", fmt.Errorf("schema: %s: %w", d, err)
	}
	return string(b), nil
}

// Statements returns the DDL of dialect split into statements, in order.
// The drivers differ on multi-statement strings (go-sql-driver/mysql refuses
// them unless multiStatements=true), so each statement runs on its own.
func Statements(d store.Dialect) ([]string, error) {
	text, err := DDL(d)
	if err != nil {
		return nil, err
	}
	return split(text), nil
}

// split cuts text at semicolons that end a line, dropping "--" comment lines
// and blank statements. The DDL files are written to that rule.
func split(text string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			if s := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"); s != "" {
				out = append(out, s)
			}
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// Create creates every table and index that does not exist yet. It is
// idempotent (IF NOT EXISTS throughout) and does not alter a table that
// exists with another shape: Describe shows that.
func Create(ctx context.Context, db *store.DB) error {
	stmts, err := Statements(db.Dialect)
	if err != nil {
		return err
	}
	for _, s := range stmts {
		if _, err := db.SQL.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("schema: create on %s: %w (statement: %s)", db.Dialect, err, firstLine(s))
		}
	}
	return nil
}

// Truncate empties every table and resets the identities, so that a test
// case starts from the state Create left, without recreating anything.
//
//   - PostgreSQL: one TRUNCATE ... RESTART IDENTITY CASCADE.
//   - MySQL: TRUNCATE refuses a table referenced by a foreign key, so
//     FOREIGN_KEY_CHECKS is turned off for the session; a session setting
//     lives on one connection, so all of it runs on one pinned connection
//     (db.SQL.Conn), and the setting is restored before the connection
//     returns to the pool, even on error.
//   - SQLite: DELETE from each table (children first) in one transaction,
//     then the rows of sqlite_sequence that hold the AUTOINCREMENT counters.
func Truncate(ctx context.Context, db *store.DB) error {
	var err error
	switch db.Dialect {
	case store.Postgres:
		_, err = db.SQL.ExecContext(ctx, "TRUNCATE TABLE "+strings.Join(Tables, ", ")+" RESTART IDENTITY CASCADE")
	case store.MySQL:
		err = truncateMySQL(ctx, db.SQL)
	case store.SQLite:
		err = truncateSQLite(ctx, db.SQL)
	default:
		return fmt.Errorf("schema: unknown dialect %q", db.Dialect)
	}
	if err != nil {
		return fmt.Errorf("schema: truncate on %s: %w", db.Dialect, err)
	}
	return nil
}

func truncateMySQL(ctx context.Context, db *sql.DB) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET FOREIGN_KEY_CHECKS = 0"); err != nil {
		return err
	}
	defer func() {
		// Restore on a context that is not the caller's: if ctx was
		// cancelled, a connection with checks off must not go back to the
		// pool; conn.Raw lets us poison it instead.
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "SET FOREIGN_KEY_CHECKS = 1"); rerr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // discarded, not pooled
			err = errors.Join(err, rerr)
		}
	}()
	for _, t := range Tables {
		if _, err := conn.ExecContext(ctx, "TRUNCATE TABLE "+t); err != nil {
			return err
		}
	}
	return nil
}

func truncateSQLite(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	for _, t := range Tables {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+t); err != nil {
			return err
		}
	}
	// sqlite_sequence exists once any AUTOINCREMENT table exists; a schema
	// made by another tool may have none.
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'").Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		if _, err := tx.ExecContext(ctx, "DELETE FROM sqlite_sequence WHERE name IN ('"+strings.Join(Tables, "', '")+"')"); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Drop drops every table of the schema that exists, children first.
func Drop(ctx context.Context, db *store.DB) error {
	var stmts []string
	switch db.Dialect {
	case store.Postgres:
		stmts = []string{"DROP TABLE IF EXISTS " + strings.Join(Tables, ", ") + " CASCADE"}
	case store.MySQL, store.SQLite:
		for _, t := range Tables {
			stmts = append(stmts, "DROP TABLE IF EXISTS "+t)
		}
	default:
		return fmt.Errorf("schema: unknown dialect %q", db.Dialect)
	}
	for _, s := range stmts {
		if _, err := db.SQL.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("schema: drop on %s: %w", db.Dialect, err)
		}
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}
