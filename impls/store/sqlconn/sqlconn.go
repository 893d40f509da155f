// Package sqlconn opens a store.DB from a DSN URL, with one driver per
// dialect so that every back-end (GORM, sqlx, hand SQL) measures its layer
// and not its driver:
//
//	postgres://user:pass@host:5432/db?sslmode=disable   pgx v5 (stdlib)
//	postgresql://...                                    the same
//	mysql://user:pass@host:3306/db?param=value          go-sql-driver/mysql
//	sqlite:///absolute/path/inventory.db                mattn/go-sqlite3
//	sqlite::memory:                                     the same, in memory
//
// Every connection goes through a wrapper that counts the statements the
// driver executes into store.DB.Statements (see counting.go) and is
// otherwise invisible: driver errors come through unwrapped, so
// errors.As(err, &pgErr) with *pgconn.PgError, *mysql.MySQLError or
// sqlite3.Error works on what the layers above return.
//
// # Settings a careful user would pick
//
// PostgreSQL: the DSN goes to pgx as is (any pgx parameter works); a
// connect_timeout of 10s applies unless the DSN sets one.
//
// MySQL/MariaDB: the URL becomes a mysql.Config with parseTime=true (DATETIME
// scans into time.Time), clientFoundRows=true (UPDATE reports the rows it
// matched, not only those it changed, as PostgreSQL and SQLite do: the store
// contract relies on it, so clientFoundRows=false is refused), collation
// utf8mb4_general_ci (full UTF-8 on MySQL 8 and MariaDB alike) and a 10s
// dial timeout, each overridable in the query string with go-sql-driver's
// parameter names (interpolateParams=true, tls=..., readTimeout=...).
//
// SQLite: foreign keys are switched on for every connection (SQLite's
// default is off, and the schema relies on ON DELETE CASCADE). A file
// database uses WAL (readers do not block the writer), busy_timeout 5s
// (a writer waits for the lock instead of failing at once) and
// BEGIN IMMEDIATE (a transaction takes the write lock when it starts: in WAL
// a deferred transaction that reads and then writes fails with SQLITE_BUSY
// without waiting when another writer committed meanwhile).
//
// sqlite::memory: is a private database per connection, so the pool is
// limited to one connection that is never closed for age or idleness: the
// database lives exactly as long as the store.DB. The price is that a caller
// holding a transaction must not use the pool outside it (it would wait for
// the one connection forever). A shared-cache name (file:x?mode=memory&
// cache=shared) would allow several connections but brings table-level
// locking and SQLITE_LOCKED errors that no other dialect has.
//
// # Passwords
//
// No error of this package contains the password of the DSN: messages name
// the DSN through Redact, and driver errors that would repeat the password
// are scrubbed (the driver error stays reachable through errors.As).
package sqlconn

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/mattn/go-sqlite3"

	"github.com/twistbench/twistbench/impls/store"
)

// Defaults applied when the DSN does not say otherwise.
const (
	// ConnectTimeout bounds dialling one connection (PostgreSQL, MySQL).
	ConnectTimeout = 10 * time.Second
	// SQLiteBusyTimeout is how long a SQLite writer waits for the lock.
	SQLiteBusyTimeout = 5 * time.Second
	// MaxIdleConns keeps enough warm connections for a concurrent
	// benchmark; database/sql's default of 2 makes a pool with more
	// goroutines than that reconnect all the time.
	MaxIdleConns = 16
	// ConnMaxLifetime recycles server connections well before any server
	// or proxy timeout.
	ConnMaxLifetime = 30 * time.Minute
)

// Open opens and pings the database named by dsn and returns it with its
// dialect, the server's product and version in Flavor, and a statement
// counter that starts at 0. The caller closes DB.SQL. Errors name the DSN
// with its password redacted.
func Open(ctx context.Context, dsn string) (*store.DB, error) {
	t, err := parse(dsn)
	if err != nil {
		return nil, err
	}
	n := new(atomic.Int64)
	db := sql.OpenDB(&countingConnector{inner: t.connector, n: n})
	t.pool(db)
	fail := func(what string, err error) (*store.DB, error) {
		db.Close()
		return nil, &dsnError{msg: fmt.Sprintf("sqlconn: %s %s: %v", what, Redact(dsn), err), secret: t.password, err: err}
	}
	if err := db.PingContext(ctx); err != nil {
		return fail("cannot reach", err)
	}
	var version string
	if err := db.QueryRowContext(ctx, t.versionQuery).Scan(&version); err != nil {
		return fail("cannot read the server version of", err)
	}
	n.Store(0) // the version query is ours, not the caller's
	return &store.DB{SQL: db, Dialect: t.dialect, Flavor: flavor(t.dialect, version), Statements: n}, nil
}

// DialectOf returns the dialect a DSN names, checking the whole DSN as Open
// would, without connecting.
func DialectOf(dsn string) (store.Dialect, error) {
	t, err := parse(dsn)
	if err != nil {
		return "", err
	}
	return t.dialect, nil
}

// target is a parsed DSN: what to connect with and how to size the pool.
type target struct {
	dialect      store.Dialect
	connector    driver.Connector
	pool         func(*sql.DB)
	versionQuery string
	password     string
}

// dsnError is an error of Open: its message names the redacted DSN, and the
// password is scrubbed from the text of the driver error it wraps.
type dsnError struct {
	msg    string
	secret string
	err    error
}

func (e *dsnError) Error() string { return scrub(e.msg, e.secret) }
func (e *dsnError) Unwrap() error { return e.err }

func scrub(s, secret string) string {
	if secret == "" {
		return s
	}
	s = strings.ReplaceAll(s, secret, redacted)
	if esc := url.QueryEscape(secret); esc != secret {
		s = strings.ReplaceAll(s, esc, redacted)
	}
	if esc := url.PathEscape(secret); esc != secret {
		s = strings.ReplaceAll(s, esc, redacted)
	}
	return s
}

// badDSN is the one error for a DSN that cannot be used: it says what is
// wrong and shows the DSN redacted.
func badDSN(dsn, format string, args ...any) error {
	return fmt.Errorf("sqlconn: bad DSN %s: %s", Redact(dsn), fmt.Sprintf(format, args...))
}

func parse(dsn string) (*target, error) {
	if strings.TrimSpace(dsn) == "" {
		return nil, errors.New("sqlconn: empty DSN (want postgres://, mysql:// or sqlite:// URL)")
	}
	scheme, _, ok := strings.Cut(dsn, ":")
	if !ok || scheme == "" {
		return nil, badDSN(dsn, "no scheme (want postgres://, mysql://, sqlite:///path or sqlite::memory:)")
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		return parsePostgres(dsn)
	case "mysql", "mariadb":
		return parseMySQL(dsn)
	case "sqlite", "sqlite3":
		return parseSQLite(dsn)
	}
	return nil, badDSN(dsn, "unknown scheme %q (want postgres, mysql or sqlite)", scheme)
}

// parseURL parses a server DSN and checks what every server DSN needs.
func parseURL(dsn, defaultPort string) (*url.URL, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		// url's error repeats the input: say what is wrong without it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, badDSN(dsn, "not a URL: %v (escape special characters of the password with %%XX)", err)
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, badDSN(dsn, "missing host (want %s://user:password@host:%s/database)", u.Scheme, defaultPort)
	}
	if port := u.Port(); port != "" {
		var p int
		if _, err := fmt.Sscanf(port, "%d", &p); err != nil || p < 1 || p > 65535 {
			return nil, badDSN(dsn, "port %q is not a number in 1-65535", port)
		}
	}
	if db := strings.TrimPrefix(u.Path, "/"); db == "" {
		return nil, badDSN(dsn, "missing database name (the path after the host, /database)")
	} else if strings.Contains(db, "/") {
		return nil, badDSN(dsn, "database name %q contains '/'", db)
	}
	if u.User == nil || u.User.Username() == "" {
		return nil, badDSN(dsn, "missing user name (user:password@ before the host)")
	}
	return u, nil
}

func parsePostgres(dsn string) (*target, error) {
	u, err := parseURL(dsn, "5432")
	if err != nil {
		return nil, err
	}
	q := u.Query()
	if !q.Has("connect_timeout") {
		q.Set("connect_timeout", fmt.Sprint(int(ConnectTimeout.Seconds())))
		u.RawQuery = q.Encode()
	}
	pw, _ := u.User.Password()
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		// pgx redacts the password in its own message; scrub anyway.
		return nil, badDSN(dsn, "%s", scrub(err.Error(), pw))
	}
	return &target{
		dialect:      store.Postgres,
		connector:    stdlib.GetConnector(*cfg),
		pool:         serverPool,
		versionQuery: "SELECT version()",
		password:     pw,
	}, nil
}

func parseMySQL(dsn string) (*target, error) {
	u, err := parseURL(dsn, "3306")
	if err != nil {
		return nil, err
	}
	q := u.Query()
	if v := q.Get("clientFoundRows"); q.Has("clientFoundRows") && v != "true" && v != "1" {
		return nil, badDSN(dsn, "clientFoundRows=%s: the store contract needs UPDATE to report the rows it matched", v)
	}
	for _, k := range []string{"user", "password", "passwd", "dbname", "net", "addr"} {
		if q.Has(k) {
			return nil, badDSN(dsn, "parameter %q belongs in the URL itself, not the query", k)
		}
	}
	// go-sql-driver parses its own parameters; give it only the query.
	cfg, err := mysql.ParseDSN("/?" + u.RawQuery)
	if err != nil {
		return nil, badDSN(dsn, "%v", err)
	}
	pw, _ := u.User.Password()
	cfg.User = u.User.Username()
	cfg.Passwd = pw
	cfg.Net = "tcp"
	port := u.Port()
	if port == "" {
		port = "3306"
	}
	cfg.Addr = net.JoinHostPort(u.Hostname(), port)
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	cfg.ClientFoundRows = true
	if !q.Has("parseTime") {
		cfg.ParseTime = true
	}
	if !q.Has("collation") && !q.Has("charset") {
		cfg.Collation = "utf8mb4_general_ci"
	}
	if !q.Has("timeout") {
		cfg.Timeout = ConnectTimeout
	}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, badDSN(dsn, "%s", scrub(err.Error(), pw))
	}
	return &target{
		dialect:      store.MySQL,
		connector:    c,
		pool:         serverPool,
		versionQuery: "SELECT VERSION()",
		password:     pw,
	}, nil
}

func serverPool(db *sql.DB) {
	db.SetMaxIdleConns(MaxIdleConns)
	db.SetConnMaxLifetime(ConnMaxLifetime)
}

// sqliteOwnParams are set by this package; a DSN may not override them
// because the schema and the concurrency story depend on them.
var sqliteOwnParams = []string{"_foreign_keys", "_fk"}

func parseSQLite(dsn string) (*target, error) {
	rest := dsn[strings.Index(dsn, ":")+1:]
	params := url.Values{}
	params.Set("_foreign_keys", "1")
	if rest == ":memory:" {
		return &target{
			dialect:   store.SQLite,
			connector: &sqliteConnector{dsn: "file::memory:?" + params.Encode()},
			pool: func(db *sql.DB) {
				// One connection, kept forever: it is the database.
				db.SetMaxOpenConns(1)
				db.SetMaxIdleConns(1)
				db.SetConnMaxLifetime(0)
				db.SetConnMaxIdleTime(0)
			},
			versionQuery: "SELECT sqlite_version()",
		}, nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, badDSN(dsn, "not a URL: %v", err)
	}
	switch {
	case u.Opaque != "" || !strings.HasPrefix(rest, "//"):
		return nil, badDSN(dsn, "relative or malformed SQLite path (want sqlite:///absolute/path.db or sqlite::memory:)")
	case u.Host != "":
		return nil, badDSN(dsn, "host %q in a SQLite DSN (want three slashes: sqlite:///absolute/path.db)", u.Host)
	case u.Path == "" || u.Path == "/" || strings.HasSuffix(u.Path, "/"):
		return nil, badDSN(dsn, "missing database file (want sqlite:///absolute/path.db)")
	case !filepath.IsAbs(u.Path):
		return nil, badDSN(dsn, "SQLite path %q is not absolute", u.Path)
	case u.User != nil:
		return nil, badDSN(dsn, "a SQLite DSN has no user or password")
	}
	q := u.Query()
	for _, k := range sqliteOwnParams {
		if q.Has(k) {
			return nil, badDSN(dsn, "parameter %s is fixed by sqlconn (foreign keys are always on)", k)
		}
	}
	for k, vs := range q {
		params[k] = vs
	}
	setDefault := func(k, v string) {
		if !params.Has(k) {
			params.Set(k, v)
		}
	}
	setDefault("_journal_mode", "WAL")
	setDefault("_busy_timeout", fmt.Sprint(SQLiteBusyTimeout.Milliseconds()))
	setDefault("_txlock", "immediate")
	setDefault("_synchronous", "NORMAL") // safe with WAL: a crash loses at most the last commits, never integrity
	return &target{
		dialect:      store.SQLite,
		connector:    &sqliteConnector{dsn: "file:" + filepath.Clean(u.Path) + "?" + params.Encode()},
		pool:         func(db *sql.DB) { db.SetMaxIdleConns(MaxIdleConns) },
		versionQuery: "SELECT sqlite_version()",
	}, nil
}

// sqliteConnector is the driver.Connector mattn/go-sqlite3 does not have.
type sqliteConnector struct {
	dsn string
}

var sqliteDriver = &sqlite3.SQLiteDriver{}

func (c *sqliteConnector) Connect(ctx context.Context) (driver.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return sqliteDriver.Open(c.dsn)
}

func (c *sqliteConnector) Driver() driver.Driver { return sqliteDriver }

// flavor turns the server's version string into "Product version".
func flavor(d store.Dialect, version string) string {
	version = strings.TrimSpace(version)
	switch d {
	case store.Postgres:
		// "PostgreSQL 15.13 (Debian 15.13-0+deb12u1) on x86_64-pc-linux-gnu, ..."
		if f := strings.Fields(version); len(f) >= 2 {
			return f[0] + " " + f[1]
		}
	case store.MySQL:
		// "10.11.11-MariaDB-0+deb12u1" or "8.4.3"
		num, _, _ := strings.Cut(version, "-")
		if strings.Contains(version, "MariaDB") {
			return "MariaDB " + num
		}
		return "MySQL " + num
	case store.SQLite:
		return "SQLite " + version
	}
	return version
}

const redacted = "xxxxx"

// secretParams are query parameters that carry a password in some driver.
var secretParams = map[string]bool{"password": true, "passwd": true, "pass": true, "sslpassword": true}

// keywordSecret matches password=value in keyword/value DSNs
// ("host=db password=secret").
var keywordSecret = regexp.MustCompile(`(?i)\b(password|passwd|pass|sslpassword)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// Redact returns dsn with every password replaced by "xxxxx": the one in
// the user information of a URL, password-like query parameters, and
// password=value in keyword DSNs. It is safe on anything, even text that is
// not a URL; when it cannot tell where a password ends it hides the whole
// user information. Use it whenever a DSN is printed or put in an error.
func Redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" && u.Opaque == "" {
		if u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), redacted)
			}
		}
		if u.RawQuery != "" {
			q := u.Query()
			changed := false
			for k := range q {
				if secretParams[strings.ToLower(k)] {
					q.Set(k, redacted)
					changed = true
				}
			}
			if changed {
				u.RawQuery = q.Encode()
			}
		}
		return u.String()
	}
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return keywordSecret.ReplaceAllString(dsn, "${1}="+redacted)
	}
	// Not a valid URL: find the user information by hand. The authority
	// ends at the last '@' before the query; a password containing '?' or
	// '#' defeats that, so any '@' after it hides everything.
	head := rest
	if i := strings.IndexAny(head, "?#"); i >= 0 {
		head = head[:i]
	}
	if at := strings.LastIndex(head, "@"); at >= 0 {
		user, _, hasPW := strings.Cut(head[:at], ":")
		if hasPW {
			return scheme + "://" + user + ":" + redacted + keywordSecret.ReplaceAllString(rest[at:], "${1}="+redacted)
		}
		return scheme + "://" + keywordSecret.ReplaceAllString(rest, "${1}="+redacted)
	}
	if strings.Contains(rest, "@") {
		return scheme + "://" + redacted
	}
	return scheme + "://" + keywordSecret.ReplaceAllString(rest, "${1}="+redacted)
}
