package schema_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/twistbench/twistbench/containers"
	"github.com/twistbench/twistbench/impls/store"
	"github.com/twistbench/twistbench/impls/store/schema"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(containers.Wrap(m)) }

// eachDialect runs fn in a subtest per dialect with an empty database of
// it: SQLite always, PostgreSQL and MySQL when package containers can
// provide them (skipped with the reason otherwise).
func eachDialect(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	for _, d := range store.Dialects {
		t.Run(string(d), func(t *testing.T) { fn(t, containers.TestDB(t, d)) })
	}
}

// exec runs statements on db, failing t on the first error.
func exec(t *testing.T, db *store.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.SQL.ExecContext(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestStatements(t *testing.T) {
	tests := []struct {
		dialect store.Dialect
		want    int // statements in the file
	}{
		{store.Postgres, 9},
		{store.MySQL, 6}, // indexes live inside CREATE TABLE
		{store.SQLite, 9},
	}
	for _, tt := range tests {
		t.Run(string(tt.dialect), func(t *testing.T) {
			stmts, err := schema.Statements(tt.dialect)
			if err != nil {
				t.Fatal(err)
			}
			if len(stmts) != tt.want {
				t.Fatalf("%d statements, want %d:\n%s", len(stmts), tt.want, strings.Join(stmts, "\n---\n"))
			}
			for i, s := range stmts {
				if strings.HasSuffix(s, ";") || strings.Contains(s, "--") {
					t.Errorf("statement %d keeps a terminator or comment: %q", i, s)
				}
				if !strings.HasPrefix(s, "CREATE ") || !strings.Contains(s, "IF NOT EXISTS") {
					t.Errorf("statement %d is not an idempotent CREATE: %q", i, s)
				}
			}
			for _, table := range schema.Tables {
				ddl, _ := schema.DDL(tt.dialect)
				if !strings.Contains(ddl, "CREATE TABLE IF NOT EXISTS "+table+" (") {
					t.Errorf("no CREATE TABLE for %s", table)
				}
			}
		})
	}
	if _, err := schema.Statements("oracle"); err == nil || !strings.Contains(err.Error(), `"oracle"`) {
		t.Errorf("unknown dialect: err = %v, want one naming it", err)
	}
}

// want is the catalog Create leaves on dialect d: the contract's tables as
// the database reports them, normalised. Ids are 64-bit everywhere; SQLite
// calls every integer type "integer".
func want(d store.Dialect) schema.Catalog {
	id := "bigint"
	if d == store.SQLite {
		id = "integer"
	}
	return schema.Catalog{Tables: []schema.Table{
		{
			Name: "host_group_members",
			Columns: []schema.Column{
				{Name: "host_id", Type: id},
				{Name: "group_id", Type: id},
			},
			PrimaryKey: []string{"host_id", "group_id"},
			ForeignKeys: []schema.ForeignKey{
				{Columns: []string{"group_id"}, RefTable: "host_groups", RefColumns: []string{"id"}, OnDelete: "CASCADE"},
				{Columns: []string{"host_id"}, RefTable: "hosts", RefColumns: []string{"id"}, OnDelete: "CASCADE"},
			},
		},
		{
			Name: "hosts",
			Columns: []schema.Column{
				{Name: "id", Type: id, Auto: true},
				{Name: "hostname", Type: "varchar(64)"},
				{Name: "ip_addr", Type: "varchar(128)"},
				{Name: "port", Type: "integer", Default: "22"},
			},
			PrimaryKey: []string{"id"},
			Unique:     [][]string{{"hostname"}, {"ip_addr"}},
		},
		{
			Name:       "host_groups",
			Columns:    []schema.Column{{Name: "id", Type: id, Auto: true}, {Name: "name", Type: "varchar(64)"}},
			PrimaryKey: []string{"id"},
			Unique:     [][]string{{"name"}},
		},
		{
			Name:       "users",
			Columns:    []schema.Column{{Name: "id", Type: id, Auto: true}, {Name: "name", Type: "varchar(50)"}},
			PrimaryKey: []string{"id"},
		},
		{
			Name: "child",
			Columns: []schema.Column{
				{Name: "id", Type: id, Auto: true},
				{Name: "parent_id", Type: id},
				{Name: "name", Type: "varchar(64)"},
			},
			PrimaryKey:  []string{"id"},
			ForeignKeys: []schema.ForeignKey{{Columns: []string{"parent_id"}, RefTable: "parent", RefColumns: []string{"id"}, OnDelete: "CASCADE"}},
		},
		{
			Name:       "parent",
			Columns:    []schema.Column{{Name: "id", Type: id, Auto: true}, {Name: "name", Type: "varchar(64)"}},
			PrimaryKey: []string{"id"},
		},
	}}
}

func TestCreateDescribe(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		empty, err := schema.Describe(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if len(empty.Tables) != 0 {
			t.Fatalf("empty database describes %d tables", len(empty.Tables))
		}
		for i := range 2 { // the second run proves Create idempotent
			if err := schema.Create(ctx, db); err != nil {
				t.Fatalf("Create #%d: %v", i+1, err)
			}
		}
		got, err := schema.Describe(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		w := want(db.Dialect)
		if diff := got.Diff(w); len(diff) != 0 {
			t.Fatalf("catalog differs:\n%s", strings.Join(diff, "\n"))
		}
		if !reflect.DeepEqual(normalizeNil(got), normalizeNil(w)) {
			t.Fatalf("Diff found nothing but the catalogs differ:\n got %+v\nwant %+v", got, w)
		}
	})
}

// normalizeNil makes nil and empty slices compare equal for DeepEqual.
func normalizeNil(c schema.Catalog) schema.Catalog {
	for i := range c.Tables {
		t := &c.Tables[i]
		if len(t.Unique) == 0 {
			t.Unique = nil
		}
		if len(t.ForeignKeys) == 0 {
			t.ForeignKeys = nil
		}
	}
	return c
}

func TestDiffReportsDifferences(t *testing.T) {
	w := want(store.SQLite)
	got := schema.Catalog{Tables: append([]schema.Table(nil), w.Tables...)}
	hosts := got.Tables[1]
	hosts.Columns = append([]schema.Column(nil), hosts.Columns...)
	hosts.Columns[3].Default = ""           // port lost its default
	hosts.Unique = [][]string{{"hostname"}} // ip_addr lost its unique
	got.Tables[1] = hosts
	got.Tables = got.Tables[:5] // parent missing
	diff := got.Diff(w)
	wantLines := []string{"hosts.port", "hosts: unique", "table parent: missing"}
	if len(diff) != len(wantLines) {
		t.Fatalf("diff has %d lines, want %d:\n%s", len(diff), len(wantLines), strings.Join(diff, "\n"))
	}
	for i, l := range wantLines {
		if !strings.Contains(diff[i], l) {
			t.Errorf("diff line %d = %q, want it to mention %q", i, diff[i], l)
		}
	}
}

func TestTruncateResetsIdentities(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := schema.Create(ctx, db); err != nil {
			t.Fatal(err)
		}
		exec(t, db,
			"INSERT INTO hosts (hostname, ip_addr) VALUES ('a', '10.0.0.1'), ('b', '10.0.0.2')",
			"INSERT INTO host_groups (name) VALUES ('g')",
			"INSERT INTO host_group_members (host_id, group_id) VALUES (1, 1)",
			"INSERT INTO users (name) VALUES ('u')",
			"INSERT INTO parent (name) VALUES ('p')",
			"INSERT INTO child (parent_id, name) VALUES (1, 'c')",
		)
		// One connection: the one Truncate pins on MySQL is the one the
		// checks below get back from the pool.
		db.SQL.SetMaxOpenConns(1)
		for i := range 2 { // twice: truncating empty tables works too
			if err := schema.Truncate(ctx, db); err != nil {
				t.Fatalf("Truncate #%d: %v", i+1, err)
			}
		}
		for _, table := range schema.Tables {
			var n int
			if err := db.SQL.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("%s has %d rows after Truncate", table, n)
			}
		}
		exec(t, db, "INSERT INTO hosts (hostname, ip_addr) VALUES ('c', '10.0.0.3')")
		var id int64
		if err := db.SQL.QueryRowContext(ctx, "SELECT id FROM hosts WHERE hostname = 'c'").Scan(&id); err != nil {
			t.Fatal(err)
		}
		if id != 1 {
			t.Errorf("first id after Truncate = %d, want 1", id)
		}
		if db.Dialect == store.MySQL {
			// The session setting went back on before the connection
			// returned to the pool.
			var checks int
			if err := db.SQL.QueryRowContext(ctx, "SELECT @@FOREIGN_KEY_CHECKS").Scan(&checks); err != nil {
				t.Fatal(err)
			}
			if checks != 1 {
				t.Errorf("FOREIGN_KEY_CHECKS = %d on a pooled connection after Truncate", checks)
			}
		}
	})
}

func TestCascadeAndForeignKeys(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := schema.Create(ctx, db); err != nil {
			t.Fatal(err)
		}
		exec(t, db,
			"INSERT INTO hosts (hostname, ip_addr) VALUES ('a', '10.0.0.1')",
			"INSERT INTO host_groups (name) VALUES ('g')",
			"INSERT INTO host_group_members (host_id, group_id) VALUES (1, 1)",
			"DELETE FROM hosts",
		)
		var n int
		if err := db.SQL.QueryRowContext(ctx, "SELECT count(*) FROM host_group_members").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("membership survived its host: %d rows (on SQLite: is PRAGMA foreign_keys on?)", n)
		}
		if _, err := db.SQL.ExecContext(ctx, "INSERT INTO host_group_members (host_id, group_id) VALUES (42, 1)"); err == nil {
			t.Fatal("a membership of a missing host was accepted")
		}
	})
}

func TestDrop(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := schema.Create(ctx, db); err != nil {
			t.Fatal(err)
		}
		for i := range 2 { // Drop of nothing is fine too
			if err := schema.Drop(ctx, db); err != nil {
				t.Fatalf("Drop #%d: %v", i+1, err)
			}
		}
		c, err := schema.Describe(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Tables) != 0 {
			t.Fatalf("%d tables left after Drop", len(c.Tables))
		}
	})
}
