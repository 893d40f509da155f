package sqlconn

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
	"go.uber.org/goleak"

	"github.com/twistbench/twistbench/impls/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParse(t *testing.T) {
	const pw = "s3cr3t!pw"
	tests := []struct {
		name    string
		dsn     string
		dialect store.Dialect
		wantErr string // substring of the error; "" means success
	}{
		{name: "postgres", dsn: "postgres://u:" + pw + "@127.0.0.1:5432/inv?sslmode=disable", dialect: store.Postgres},
		{name: "postgresql scheme", dsn: "postgresql://u:" + pw + "@localhost/inv", dialect: store.Postgres},
		{name: "postgres escaped password", dsn: "postgres://u:p%40ss%2Fw@localhost/inv", dialect: store.Postgres},
		{name: "mysql", dsn: "mysql://u:" + pw + "@127.0.0.1:3306/inv", dialect: store.MySQL},
		{name: "mysql driver param", dsn: "mysql://u:" + pw + "@h/inv?interpolateParams=true", dialect: store.MySQL},
		{name: "sqlite file", dsn: "sqlite:///tmp/x/inv.db", dialect: store.SQLite},
		{name: "sqlite file param", dsn: "sqlite:///tmp/inv.db?_busy_timeout=100", dialect: store.SQLite},
		{name: "sqlite memory", dsn: "sqlite::memory:", dialect: store.SQLite},

		{name: "empty", dsn: "", wantErr: "empty DSN"},
		{name: "no scheme", dsn: "just-a-name", wantErr: "no scheme"},
		{name: "unknown scheme", dsn: "oracle://u:" + pw + "@h/db", wantErr: `unknown scheme "oracle"`},
		{name: "postgres no db", dsn: "postgres://u:" + pw + "@h:5432", wantErr: "missing database name"},
		{name: "postgres slash only", dsn: "postgres://u:" + pw + "@h:5432/", wantErr: "missing database name"},
		{name: "postgres no host", dsn: "postgres:///inv", wantErr: "missing host"},
		{name: "postgres no user", dsn: "postgres://h/inv", wantErr: "missing user name"},
		{name: "postgres bad port", dsn: "postgres://u:" + pw + "@h:99999/inv", wantErr: "port"},
		{name: "mysql no db", dsn: "mysql://u:" + pw + "@h", wantErr: "missing database name"},
		{name: "mysql foundrows off", dsn: "mysql://u:" + pw + "@h/inv?clientFoundRows=false", wantErr: "clientFoundRows=false"},
		{name: "mysql password param", dsn: "mysql://u@h/inv?passwd=" + pw, wantErr: `"passwd" belongs in the URL`},
		{name: "mysql unknown param value", dsn: "mysql://u:" + pw + "@h/inv?parseTime=maybe", wantErr: "bad DSN"},
		{name: "unescaped password", dsn: "mysql://u:p/w%zz@h/inv", wantErr: "not a URL"},
		{name: "sqlite relative", dsn: "sqlite:inv.db", wantErr: "relative"},
		{name: "sqlite two slashes", dsn: "sqlite://inv.db", wantErr: `host "inv.db"`},
		{name: "sqlite no file", dsn: "sqlite:///", wantErr: "missing database file"},
		{name: "sqlite directory", dsn: "sqlite:///tmp/", wantErr: "missing database file"},
		{name: "sqlite fk param", dsn: "sqlite:///tmp/inv.db?_foreign_keys=0", wantErr: "foreign keys are always on"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := DialectOf(tt.dsn)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("DialectOf(%q): %v", Redact(tt.dsn), err)
				}
				if d != tt.dialect {
					t.Fatalf("dialect %q, want %q", d, tt.dialect)
				}
				return
			}
			if err == nil {
				t.Fatalf("DialectOf(%q) = %q, want an error containing %q", Redact(tt.dsn), d, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), pw) {
				t.Errorf("error %q leaks the password", err)
			}
			if strings.Count(err.Error(), "\n") > 0 {
				t.Errorf("error %q is not one line", err)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct {
		name, dsn, want string
	}{
		{name: "postgres", dsn: "postgres://u:secret@h:5432/db?sslmode=disable", want: "postgres://u:xxxxx@h:5432/db?sslmode=disable"},
		{name: "no password", dsn: "postgres://u@h/db", want: "postgres://u@h/db"},
		{name: "escaped password", dsn: "mysql://u:p%40ss@h/db", want: "mysql://u:xxxxx@h/db"},
		{name: "password param", dsn: "postgres://u@h/db?password=secret", want: "postgres://u@h/db?password=xxxxx"},
		{name: "passwd param", dsn: "mysql://u@h/db?passwd=secret&tls=true", want: "mysql://u@h/db?passwd=xxxxx&tls=true"},
		{name: "sqlite", dsn: "sqlite:///tmp/a.db", want: "sqlite:///tmp/a.db"},
		{name: "sqlite memory", dsn: "sqlite::memory:", want: "sqlite::memory:"},
		{name: "keyword dsn", dsn: "host=h user=u password=secret dbname=db", want: "host=h user=u password=xxxxx dbname=db"},
		{name: "keyword quoted", dsn: "host=h password='se cret' dbname=db", want: "host=h password=xxxxx dbname=db"},
		{name: "invalid url", dsn: "mysql://u:se/cr%zzet@h/db", want: "mysql://u:xxxxx@h/db"},
		{name: "invalid url question mark in password", dsn: "mysql://u:se?c@h/db%zz", want: "mysql://xxxxx"},
		{name: "empty", dsn: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Redact(tt.dsn)
			if got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.dsn, got, tt.want)
			}
			if strings.Contains(got, "secret") || strings.Contains(got, "se cret") || strings.Contains(got, "cr%zz") {
				t.Errorf("Redact(%q) = %q leaks the password", tt.dsn, got)
			}
		})
	}
}

func TestFlavor(t *testing.T) {
	tests := []struct {
		dialect          store.Dialect
		version, flavour string
	}{
		{store.Postgres, "PostgreSQL 15.13 (Debian 15.13-0+deb12u1) on x86_64-pc-linux-gnu, compiled by gcc", "PostgreSQL 15.13"},
		{store.Postgres, "PostgreSQL 17.2 on x86_64-pc-linux-musl", "PostgreSQL 17.2"},
		{store.MySQL, "10.11.11-MariaDB-0+deb12u1", "MariaDB 10.11.11"},
		{store.MySQL, "8.4.3", "MySQL 8.4.3"},
		{store.SQLite, "3.46.1", "SQLite 3.46.1"},
	}
	for _, tt := range tests {
		if got := flavor(tt.dialect, tt.version); got != tt.flavour {
			t.Errorf("flavor(%s, %q) = %q, want %q", tt.dialect, tt.version, got, tt.flavour)
		}
	}
}

func openSQLite(t *testing.T) *store.DB {
	t.Helper()
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "inv.db")
	db, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.SQL.Close() })
	return db
}

// TestCountsStatements checks that every Exec and Query counts once,
// prepared or not, and that transaction control and pings do not.
func TestCountsStatements(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	if db.Dialect != store.SQLite || !strings.HasPrefix(db.Flavor, "SQLite 3.") {
		t.Fatalf("dialect %q flavor %q", db.Dialect, db.Flavor)
	}
	if got := db.Statements.Load(); got != 0 {
		t.Fatalf("counter starts at %d, want 0", got)
	}
	step := func(name string, want int64, f func() error) {
		t.Helper()
		before := db.Statements.Load()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := db.Statements.Load() - before; got != want {
			t.Errorf("%s counted %d statements, want %d", name, got, want)
		}
	}
	step("exec", 1, func() error {
		_, err := db.SQL.ExecContext(ctx, `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)`)
		return err
	})
	step("exec with args", 1, func() error {
		_, err := db.SQL.ExecContext(ctx, `INSERT INTO t (v) VALUES (?)`, "a")
		return err
	})
	step("prepare then 3 execs", 3, func() error {
		st, err := db.SQL.PrepareContext(ctx, `INSERT INTO t (v) VALUES (?)`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, v := range []string{"b", "c", "d"} {
			if _, err := st.ExecContext(ctx, v); err != nil {
				return err
			}
		}
		return nil
	})
	step("query", 1, func() error {
		var n int
		return db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n)
	})
	step("ping", 0, func() error { return db.SQL.PingContext(ctx) })
	step("begin exec commit", 1, func() error {
		tx, err := db.SQL.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO t (v) VALUES (?)`, "e"); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	})
	step("begin rollback", 0, func() error {
		tx, err := db.SQL.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		return tx.Rollback()
	})
	step("failed statement", 1, func() error {
		_, err := db.SQL.ExecContext(ctx, `INSERT INTO t (v) VALUES (?)`, "a")
		if err == nil {
			return errors.New("duplicate insert succeeded")
		}
		return nil
	})
}

// TestDriverErrorsUnwrapped checks that the wrapper hands back the driver's
// own error values.
func TestDriverErrorsUnwrapped(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	if _, err := db.SQL.ExecContext(ctx, `CREATE TABLE t (v TEXT UNIQUE)`); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		_, err := db.SQL.ExecContext(ctx, `INSERT INTO t (v) VALUES (?)`, "dup")
		if i == 0 {
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		var se sqlite3.Error
		if !errors.As(err, &se) {
			t.Fatalf("error %T %v is not a sqlite3.Error", err, err)
		}
		if se.ExtendedCode != sqlite3.ErrConstraintUnique {
			t.Fatalf("extended code %v, want %v", se.ExtendedCode, sqlite3.ErrConstraintUnique)
		}
	}
}

// TestSQLitePerConnectionSettings checks that every connection of the pool,
// not only the first, has foreign keys on, and that a file database is in
// WAL mode.
func TestSQLitePerConnectionSettings(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	var conns []*sql.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 3; i++ { // three conns held at once: three driver connections
		c, err := db.SQL.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var fk int
		var mode string
		if err := c.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if fk != 1 || mode != "wal" {
			t.Errorf("connection %d: foreign_keys=%d journal_mode=%q, want 1 and wal", i, fk, mode)
		}
	}
	if st := db.SQL.Stats(); st.OpenConnections != 3 {
		t.Errorf("%d open connections, want 3", st.OpenConnections)
	}
}

// TestSQLiteMemory checks that an in-memory database keeps its content
// across calls (the pool has one connection that it never drops) and
// enforces foreign keys.
func TestSQLiteMemory(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.SQL.Close()
	for _, q := range []string{
		`CREATE TABLE p (id INTEGER PRIMARY KEY)`,
		`CREATE TABLE c (id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id))`,
		`INSERT INTO p (id) VALUES (1)`,
	} {
		if _, err := db.SQL.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var n int
	if err := db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM p`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("count = %d, %v; want 1", n, err)
	}
	if _, err := db.SQL.ExecContext(ctx, `INSERT INTO c (id, p) VALUES (1, 42)`); err == nil {
		t.Fatal("insert violating a foreign key succeeded")
	}
}

// TestOpenUnreachable checks that a server that does not answer gives one
// error naming the redacted DSN, with the driver error reachable.
func TestOpenUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	const pw = "hunter2-secret"
	for _, scheme := range []string{"postgres", "mysql"} {
		t.Run(scheme, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			dsn := scheme + "://u:" + pw + "@" + addr + "/inv"
			db, err := Open(ctx, dsn)
			if err == nil {
				db.SQL.Close()
				t.Fatal("Open succeeded with nothing listening")
			}
			msg := err.Error()
			if strings.Contains(msg, pw) {
				t.Errorf("error leaks the password: %s", msg)
			}
			if !strings.Contains(msg, "cannot reach") || !strings.Contains(msg, "u:xxxxx@"+addr) {
				t.Errorf("error %q does not name the redacted DSN", msg)
			}
			var ne *net.OpError
			if !errors.As(err, &ne) && !strings.Contains(msg, "refused") {
				t.Errorf("error %q: driver cause lost", msg)
			}
		})
	}
}

// TestLegacyDriverCounting runs the wrapper over a driver with none of the
// optional interfaces: database/sql must fall back exactly as without the
// wrapper (Exec with arguments goes through Prepare), and each statement
// counts once.
func TestLegacyDriverCounting(t *testing.T) {
	var execs, prepares atomic.Int64
	n := new(atomic.Int64)
	db := sql.OpenDB(&countingConnector{inner: legacyConnector{execs: &execs, prepares: &prepares}, n: n})
	defer db.Close()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "X", 1); err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, "Q")
	if err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if err := db.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	if got := n.Load(); got != 2 {
		t.Errorf("counted %d statements, want 2", got)
	}
	if execs.Load() != 1 || prepares.Load() != 2 {
		t.Errorf("driver saw %d execs and %d prepares, want 1 and 2", execs.Load(), prepares.Load())
	}
}

// legacyConnector makes connections that implement only driver.Conn.
type legacyConnector struct{ execs, prepares *atomic.Int64 }

func (c legacyConnector) Connect(context.Context) (driver.Conn, error) { return legacyConn(c), nil }
func (c legacyConnector) Driver() driver.Driver                        { return nil }

type legacyConn legacyConnector

func (c legacyConn) Prepare(string) (driver.Stmt, error) {
	c.prepares.Add(1)
	return legacyStmt(c), nil
}
func (legacyConn) Close() error              { return nil }
func (legacyConn) Begin() (driver.Tx, error) { return nil, errors.New("no tx") }

type legacyStmt legacyConn

func (legacyStmt) Close() error  { return nil }
func (legacyStmt) NumInput() int { return -1 }
func (s legacyStmt) Exec([]driver.Value) (driver.Result, error) {
	s.execs.Add(1)
	return driver.RowsAffected(1), nil
}
func (legacyStmt) Query([]driver.Value) (driver.Rows, error) { return emptyRows{}, nil }

type emptyRows struct{}

func (emptyRows) Columns() []string              { return []string{"x"} }
func (emptyRows) Close() error                   { return nil }
func (emptyRows) Next(dest []driver.Value) error { return io.EOF }
