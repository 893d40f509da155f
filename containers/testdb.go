package containers

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twistbench/twistbench/impls/store"
	"github.com/twistbench/twistbench/impls/store/sqlconn"
)

// shared is the test binary's provider: one server per dialect, kept until
// RunMain ends, and a fresh database per TestDB call.
var shared struct {
	once     sync.Once
	provider *Provider
}

func sharedProvider() *Provider {
	shared.once.Do(func() {
		p := NewProvider()
		p.Keep = true
		if testing.Verbose() {
			p.Logf = func(format string, args ...any) {
				fmt.Fprintf(os.Stderr, "containers: "+format+"\n", args...)
			}
		}
		shared.provider = p
	})
	return shared.provider
}

// TestDB returns an open, empty database of dialect d for t, closed and
// dropped when t ends, so that tests and parallel subtests cannot see each
// other's rows. PostgreSQL and MySQL databases live on the test binary's
// one server per dialect, started on first use (creating a database costs
// milliseconds on either server; a suite that wants fresh data per case on
// one database truncates its tables instead); call RunMain from TestMain to
// terminate the servers. SQLite is a file in t.TempDir(). When the dialect
// is unavailable TestDB skips t with the reason, or fails it under
// TWISTBENCH_REQUIRE_DOCKER=1.
func TestDB(t testing.TB, d store.Dialect) *store.DB {
	t.Helper()
	dsn := TestDSN(t, d) // its cleanup runs after the pool below is closed
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := sqlconn.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.SQL.Close() })
	return db
}

// RunMain runs the tests of m and then terminates the servers TestDB
// started, returning the exit code:
//
//	func TestMain(m *testing.M) { os.Exit(containers.RunMain(m)) }
//
// With goleak, wrap instead: goleak.VerifyTestMain(containers.Wrap(m)).
func RunMain(m interface{ Run() int }) int {
	defer func() {
		if shared.provider != nil {
			shared.provider.Close()
		}
	}()
	return m.Run()
}

// Wrap returns m whose Run also terminates the shared servers, for test
// mains that hand m to something else (goleak.VerifyTestMain).
func Wrap(m interface{ Run() int }) interface{ Run() int } { return wrapped{m} }

type wrapped struct{ m interface{ Run() int } }

func (w wrapped) Run() int { return RunMain(w.m) }
