package gormstore_test

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/twistbench/twistbench/conformance/storetest"
	"github.com/twistbench/twistbench/containers"
	"github.com/twistbench/twistbench/impls/store"
	"github.com/twistbench/twistbench/impls/store/gormstore"
	"github.com/twistbench/twistbench/impls/store/schema"
	"github.com/twistbench/twistbench/impls/store/sqlconn"
)

func TestMain(m *testing.M) {
	// goleak: every *sql.DB is closed and every gorm.DB's goroutines gone;
	// containers.Wrap terminates the test binary's database servers.
	goleak.VerifyTestMain(containers.Wrap(m))
}

// variants are the two configurations the package offers.
var variants = []struct {
	name string
	open store.Open
}{
	{"tuned", gormstore.Open},
	{"untuned", func(ctx context.Context, db *store.DB) (store.Store, error) {
		return gormstore.OpenWith(ctx, db, gormstore.Options{})
	}},
}

// eachDialect runs f in a subtest per dialect, on a fresh empty database
// from package containers: SQLite always; PostgreSQL and MySQL from the
// test binary's containers, or the servers TWISTBENCH_POSTGRES_DSN and
// TWISTBENCH_MYSQL_DSN name. An unavailable dialect skips its subtest with
// the reason (and fails it under TWISTBENCH_REQUIRE_DOCKER=1).
func eachDialect(t *testing.T, f func(t *testing.T, db *store.DB)) {
	for _, d := range store.Dialects {
		t.Run(string(d), func(t *testing.T) {
			db := containers.TestDB(t, d)
			t.Logf("%s: %s", d, db.Flavor)
			f(t, db)
		})
	}
}

func TestConformance(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			eachDialect(t, func(t *testing.T, db *store.DB) {
				storetest.Run(t, storetest.Fresh(v.open, db))
			})
			// sqlite::memory: is a pool of one connection (see sqlconn):
			// the suite there proves that no method holds a connection
			// while it asks for another, which would deadlock.
			t.Run("sqlite-memory", func(t *testing.T) {
				db, err := sqlconn.Open(t.Context(), "sqlite::memory:")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.SQL.Close() })
				storetest.Run(t, storetest.Fresh(v.open, db))
			})
		})
	}
}

// TestCatalogMatchesSchema is the "a test compares the catalogs":
// the tables GORM's AutoMigrate builds from the models must be those
// schema.Create builds from the DDL file, as schema.Describe reads them
// back from the database (names, types, nullability, defaults, keys,
// uniques, foreign keys and their ON DELETE).
func TestCatalogMatchesSchema(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		// One database serves both migrations in turn, so that an
		// account that may not create databases needs no second one.
		if err := schema.Drop(ctx, db); err != nil {
			t.Fatal(err)
		}
		if err := schema.Create(ctx, db); err != nil {
			t.Fatal(err)
		}
		want, err := schema.Describe(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if len(want.Tables) != len(schema.Tables) {
			t.Fatalf("schema.Create made %d tables, want %d", len(want.Tables), len(schema.Tables))
		}
		if err := schema.Drop(ctx, db); err != nil {
			t.Fatal(err)
		}
		s, err := gormstore.Open(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := schema.Describe(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range got.Diff(want) {
			t.Error(line)
		}
	})
}
