package httpapi_test

import (
	"context"
	"net"
	"net/url"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/twistbench/twistbench/conformance"
	"github.com/twistbench/twistbench/conformance/apitest"
	"github.com/twistbench/twistbench/conformance/storetest"
	"github.com/twistbench/twistbench/containers"
	"github.com/twistbench/twistbench/impls/httpapi"
	"github.com/twistbench/twistbench/impls/store"
	"github.com/twistbench/twistbench/impls/store/gormstore"
	"github.com/twistbench/twistbench/impls/store/sqlconn"
	"github.com/twistbench/twistbench/impls/store/sqlstore"
	"github.com/twistbench/twistbench/impls/store/sqlxstore"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(containers.Wrap(m),
		// database/sql's connection opener lives as long as a *sql.DB;
		// pools are closed in cleanups, but the opener exits
		// asynchronously.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
		// fasthttp's worker-pool cleaner notices Stop only when its sleep
		// of MaxIdleWorkerDuration (10 s) ends, and its Date updater runs
		// for the life of the process: engine design, not a leak of ours.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
	)
}

var stores = []struct {
	name string
	open store.Open
}{
	{"gorm", gormstore.Open},
	{"sqlx", sqlxstore.Open},
	{"sql", sqlstore.Open},
}

const testPoem = "Lo, the poem that the front-ends serve:\nevery byte the same on both engines.\n"

// TestConformance runs the HTTP suite on both engines over every store
// back-end on every dialect this machine has (PostgreSQL and MySQL through
// containers; a missing engine skips them, or fails under
// TWISTBENCH_REQUIRE_DOCKER=1).
func TestConformance(t *testing.T) {
	for _, d := range store.Dialects {
		t.Run(string(d), func(t *testing.T) {
			db, cut := openBehindProxy(t, d)
			for _, st := range stores {
				for _, engine := range httpapi.Engines {
					t.Run(st.name+"/"+string(engine), func(t *testing.T) {
						fresh := storetest.Fresh(st.open, db)
						apitest.Run(t, func(t conformance.T) apitest.Fixture {
							s, db := fresh(t)
							t.Cleanup(func() { s.Close() })
							f := serve(t, engine, s, db)
							if cut != nil {
								f.CutDatabase = func() {
									cut.Cut()
									t.Cleanup(func() {
										if err := cut.Restore(); err != nil {
											t.Errorf("restoring the database proxy: %v", err)
										}
									})
								}
							}
							return f
						})
					})
				}
			}
		})
	}
}

func serve(t conformance.T, engine httpapi.Engine, s store.Store, db *store.DB) apitest.Fixture {
	t.Helper()
	const maxBody = 64 << 10
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv, err := httpapi.Start(engine, ln, httpapi.Config{Store: s, Poem: []byte(testPoem), MaxBody: maxBody, Timeout: 3 * time.Second})
	if err != nil {
		t.Fatalf("start %s: %v", engine, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown %s: %v", engine, err)
		}
	})
	return apitest.Fixture{URL: srv.URL(), Store: s, DB: db, Poem: []byte(testPoem), MaxBody: maxBody}
}

// openBehindProxy opens a fresh database of dialect d. For a network
// server the connection goes through a loopback proxy the suite can cut, so
// that "the database is unreachable" is real (connections reset, new ones
// refused) rather than simulated; SQLite has no network and no proxy.
func openBehindProxy(t *testing.T, d store.Dialect) (*store.DB, *containers.Proxy) {
	t.Helper()
	dsn := containers.TestDSN(t, d)
	var p *containers.Proxy
	if d != store.SQLite {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("parsing test DSN: %v", err)
		}
		p, err = containers.StartProxy(u.Host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		u.Host = p.Addr()
		dsn = u.String()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := sqlconn.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("opening %s: %v", sqlconn.Redact(dsn), err)
	}
	t.Cleanup(func() { db.SQL.Close() })
	return db, p
}
