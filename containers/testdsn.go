package containers

import (
	"context"
	"testing"
	"time"

	"github.com/twistbench/twistbench/impls/store"
)

// TestDSN is TestDB without the open: the DSN of a fresh, empty database of
// dialect d (a file for SQLite), dropped when t ends. Tests that must put
// something between the client and the server (a proxy they can cut) dial
// it themselves. It skips or fails like TestDB when d is unavailable.
func TestDSN(t testing.TB, d store.Dialect) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	switch d {
	case store.SQLite:
		return "sqlite://" + t.TempDir() + "/inventory.db"
	case store.Postgres, store.MySQL:
		dsn, cleanup, err := sharedProvider().Get(ctx, d)
		t.Cleanup(cleanup)
		if err != nil {
			if u, ok := Skippable(err); ok {
				t.Skip(u.Error())
			}
			t.Fatal(err)
		}
		return dsn
	}
	t.Fatalf("containers.TestDSN: unknown dialect %q", d)
	return ""
}
