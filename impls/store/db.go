package store

import (
	"database/sql"
	"sync/atomic"
)

// Dialect names a SQL dialect the project supports.
type Dialect string

// The dialects. MySQL covers MariaDB too (Debian ships MariaDB as its MySQL);
// DB.Flavor tells which server answered.
const (
	Postgres Dialect = "postgres"
	MySQL    Dialect = "mysql"
	SQLite   Dialect = "sqlite"
)

// Dialects lists every dialect in a stable order.
var Dialects = []Dialect{SQLite, Postgres, MySQL}

// DB is an open database handed to a back-end's Open: the pool, its dialect,
// and a counter of the statements the driver executed (so the suites can
// prove there is no N+1 whatever the layer on top). Package sqlconn opens
// one from a DSN URL; every back-end gets the same driver per dialect.
type DB struct {
	SQL     *sql.DB
	Dialect Dialect
	// Flavor is the server product and version as the server reports it,
	// for example "PostgreSQL 17.2", "MariaDB 10.11.6", "SQLite 3.46.1".
	Flavor string
	// Statements counts statements sent to the driver (queries and execs,
	// prepared or not; not BEGIN/COMMIT/ROLLBACK).
	Statements *atomic.Int64
}
