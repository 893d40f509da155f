// Package gormstore is the GORM (gorm.io/gorm) back-end of the store
// contract.
//
// It runs GORM over the *sql.DB it is given (the dialectors' Conn fields),
// so that per dialect it uses the same driver, and the same statement
// counter, as the sqlx and hand-written back-ends: the comparison measures
// the layer, not the driver.
//
// # Tuned and untuned
//
// Out of the box GORM wraps every single write in a transaction (BEGIN,
// INSERT, COMMIT: three round trips for one row) and prepares every
// statement anew: go-sql-driver/mysql then spends a prepare round trip,
// an execute round trip and a close on each query with arguments, and
// SQLite compiles the statement again (pgx caches statements per
// connection by itself). A careful user turns on SkipDefaultTransaction and
// PrepareStmt; Open does (Options{Tuned: true}), and OpenWith with
// Options{} gives GORM's defaults, so that benchmarks can show the cost.
//
// Skipping the default transaction is only safe because this package opens
// a transaction itself wherever one call runs several statements that must
// be atomic: a bulk insert in several batches (GORM's CreateInBatches is
// not atomic under SkipDefaultTransaction) and a parent with its children.
// Inside WithTx those become savepoints, so a failed bulk insert leaves
// nothing behind even in a transaction the caller goes on to commit.
//
// # Errors
//
// GORM's TranslateError is left off: its SQLite and MySQL translators return
// a bare gorm.ErrDuplicatedKey that drops the database's message (which
// constraint), and they recognise driver errors by type assertion or a JSON
// round trip of the error value, missing any that arrive wrapped.
// mapErr matches the drivers' own errors with errors.As (PostgreSQL 23505,
// MySQL 1062, SQLite SQLITE_CONSTRAINT_UNIQUE/PRIMARYKEY; and foreign-key
// violations as ErrNotFound) and keeps the original in the chain.
//
// # Not used, and why
//
// clause.OnConflict (upsert) would turn a duplicate into a silent no-op or an
// update, while the contract wants ErrDuplicate, so no method uses it.
// Associations (Association("Hosts").Append) would hide the membership
// table's duplicate and missing-row errors behind GORM's upsert of join
// rows; AddHostToGroup inserts the membership row itself.
package gormstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/twistbench/twistbench/impls/store"
)

var _ store.Store = (*Store)(nil)

// Options choose how GORM is configured.
type Options struct {
	// Tuned turns on SkipDefaultTransaction and PrepareStmt (see the
	// package documentation). Open uses Tuned: true.
	Tuned bool
	// Logger receives GORM's log; nil means silent.
	Logger logger.Interface
}

// batchSize is the number of rows per INSERT of a bulk insert: 500 hosts
// are 1500 bind parameters, well under every dialect's limit (SQLite
// 32766, PostgreSQL and MySQL 65535).
const batchSize = 500

// preparedStatements bounds GORM's cache of prepared statements in tuned
// mode. IN lists of every length are distinct statements; unbounded, the
// cache would grow with the data and, on MySQL, run into the server's
// max_prepared_stmt_count.
const preparedStatements = 256

// preparedStatementTTL is GORM's "no eviction" TTL (gorm/internal/lru's
// noEvictionTTL, ten years). With any other TTL, GORM v1.31 starts a
// goroutine per gorm.DB to expire statements and never stops it (its done
// channel is never closed): every Open would leak one. The LRU bound above
// still evicts, so nothing grows without limit. TestMain's goleak check
// fails if a GORM upgrade changes this.
const preparedStatementTTL = 10 * 365 * 24 * time.Hour

// Open opens the tuned back-end on db: Options{Tuned: true}.
func Open(ctx context.Context, db *store.DB) (store.Store, error) {
	return OpenWith(ctx, db, Options{Tuned: true})
}

// OpenWith opens the back-end on db with opts. The Store does not own
// db.SQL: Close leaves it open.
func OpenWith(ctx context.Context, db *store.DB, opts Options) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if db == nil || db.SQL == nil {
		return nil, errors.New("gormstore: nil DB")
	}
	dialector, err := dialectorFor(db)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = logger.Discard
	}
	cfg := &gorm.Config{
		Logger:         log,
		NamingStrategy: namer{},
	}
	if opts.Tuned {
		cfg.SkipDefaultTransaction = true
		cfg.PrepareStmt = true
		cfg.PrepareStmtMaxSize = preparedStatements
		cfg.PrepareStmtTTL = preparedStatementTTL
	}
	g, err := gorm.Open(dialector, cfg)
	if err != nil {
		return nil, fmt.Errorf("gormstore: open on %s: %w", db.Dialect, err)
	}
	return &Store{ops: ops{g: g, dialect: db.Dialect}, opts: opts}, nil
}

// dialectorFor returns GORM's dialector for db's dialect over db.SQL itself
// (the Conn fields), so that GORM runs on the pool, driver and statement
// counter it was given instead of opening its own.
func dialectorFor(db *store.DB) (gorm.Dialector, error) {
	switch db.Dialect {
	case store.Postgres:
		return postgres.New(postgres.Config{Conn: db.SQL}), nil
	case store.MySQL:
		return mysql.New(mysql.Config{Conn: db.SQL}), nil
	case store.SQLite:
		return sqlite.Dialector{Conn: db.SQL}, nil
	}
	return nil, fmt.Errorf("gormstore: unknown dialect %q", db.Dialect)
}

// Store is the GORM back-end. It is safe for concurrent use.
type Store struct {
	ops
	opts Options
}

// Migrate creates the tables with AutoMigrate if they are absent.
//
// AutoMigrate on tables that exist compares their columns with the models
// and alters what it sees differ; GORM reads some types back in a form
// other than the one it writes (an identity column, a VARCHAR's case), so
// that on an already migrated database it would issue needless ALTERs or
// fail. Migrate therefore only creates tables that are missing, which is
// what the contract asks: create the schema if absent, idempotently.
func (s *Store) Migrate(ctx context.Context) error {
	g := s.g.WithContext(ctx)
	m := g.Migrator()
	var missing []any
	for _, model := range models {
		if !m.HasTable(model) {
			missing = append(missing, model)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if s.dialect == store.MySQL {
		// The schema's tables are InnoDB in utf8mb4 (4-byte UTF-8; the
		// server's default collation, case-insensitive). Set returns a
		// statement of its own: it must not be kept on the shared root.
		g = g.Set("gorm:table_options", " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
	}
	if err := g.AutoMigrate(missing...); err != nil {
		return fmt.Errorf("gormstore: migrate on %s: %w", s.dialect, err)
	}
	return nil
}

// WithTx runs fn in one GORM transaction (gorm.DB.Transaction): committed
// if fn returns nil, rolled back if it returns an error (returned as is) or
// panics (re-raised after the rollback).
func (s *Store) WithTx(ctx context.Context, fn func(tx store.Ops) error) error {
	return s.g.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return fn(ops{g: tx, dialect: s.dialect, inTx: true})
	})
}

// Close releases the prepared statements of tuned mode. It does not close
// the *sql.DB the Store was opened on.
func (s *Store) Close() error {
	if p, ok := s.g.ConnPool.(*gorm.PreparedStmtDB); ok {
		p.Close()
	}
	return nil
}
