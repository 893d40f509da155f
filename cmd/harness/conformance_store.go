package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/twistbench/twistbench/conformance"
	"github.com/twistbench/twistbench/conformance/apitest"
	"github.com/twistbench/twistbench/conformance/storetest"
	"github.com/twistbench/twistbench/containers"
	"github.com/twistbench/twistbench/impls/httpapi"
	"github.com/twistbench/twistbench/impls/store"
	"github.com/twistbench/twistbench/impls/store/sqlconn"
)

// databases provides one database per dialect for a whole conformance (or
// bench) run: a container per server dialect, a temporary file for SQLite,
// opened on first use and closed by close. Every store back-end of the run
// shares it; storetest.Fresh empties the tables before each case.
type databases struct {
	provider *containers.Provider
	dialects []store.Dialect // selected, in order
	log      io.Writer

	// viaProxy puts a cuttable proxy between the clients and each server
	// dialect's database, for the HTTP suite's unreachable-database case.
	viaProxy bool

	mu       sync.Mutex
	dbs      map[store.Dialect]*store.DB
	proxies  map[store.Dialect]*containers.Proxy
	errs     map[store.Dialect]error
	cleanups []func()
}

func newDatabases(p *containers.Provider, dialects []store.Dialect, log io.Writer) *databases {
	return &databases{provider: p, dialects: dialects, log: log,
		dbs: map[store.Dialect]*store.DB{}, proxies: map[store.Dialect]*containers.Proxy{}, errs: map[store.Dialect]error{}}
}

// get returns the dialect's database, or why it cannot be had (an
// unavailable dialect is remembered, so it is reported once).
func (d *databases) get(ctx context.Context, dialect store.Dialect) (*store.DB, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if db, ok := d.dbs[dialect]; ok {
		return db, nil
	}
	if err, ok := d.errs[dialect]; ok {
		return nil, err
	}
	start := time.Now()
	fmt.Fprintf(d.log, "databases: providing %s...\n", dialect)
	dsn, cleanup, err := d.provider.Get(ctx, dialect)
	if err != nil {
		d.errs[dialect] = err
		return nil, err
	}
	d.cleanups = append(d.cleanups, cleanup)
	if d.viaProxy && dialect != store.SQLite {
		u, err := url.Parse(dsn)
		if err != nil {
			d.errs[dialect] = err
			return nil, err
		}
		p, err := containers.StartProxy(u.Host)
		if err != nil {
			d.errs[dialect] = err
			return nil, err
		}
		d.cleanups = append(d.cleanups, p.Close)
		d.proxies[dialect] = p
		u.Host = p.Addr()
		dsn = u.String()
	}
	db, err := sqlconn.Open(ctx, dsn)
	if err != nil {
		d.errs[dialect] = err
		return nil, err
	}
	d.cleanups = append(d.cleanups, func() { db.SQL.Close() })
	d.dbs[dialect] = db
	fmt.Fprintf(d.log, "databases: %s is %s (%v)\n", dialect, db.Flavor, time.Since(start).Round(time.Millisecond))
	return db, nil
}

// available returns the selected dialects that can be had, and one line per
// dialect that cannot, saying why.
func (d *databases) available(ctx context.Context) (ok []store.Dialect, skipped []string, required []string) {
	for _, dialect := range d.dialects {
		if _, err := d.get(ctx, dialect); err != nil {
			line := fmt.Sprintf("%s: %v", dialect, err)
			if _, skippable := containers.Skippable(err); skippable {
				skipped = append(skipped, line)
			} else {
				required = append(required, line)
			}
			continue
		}
		ok = append(ok, dialect)
	}
	return ok, skipped, required
}

// proxy returns the dialect's cuttable proxy, or nil.
func (d *databases) proxy(dialect store.Dialect) *containers.Proxy {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.proxies[dialect]
}

// flavors lists the database servers used, for results files.
func (d *databases) flavors() map[store.Dialect]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[store.Dialect]string{}
	for k, db := range d.dbs {
		out[k] = db.Flavor
	}
	return out
}

func (d *databases) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := len(d.cleanups) - 1; i >= 0; i-- {
		d.cleanups[i]()
	}
	d.cleanups = nil
	if d.provider != nil {
		d.provider.Close()
	}
}

// parseDialects resolves --dialects ("all" or a comma-separated list).
func parseDialects(sel string) ([]store.Dialect, error) {
	if sel == "" || sel == "all" {
		return store.Dialects, nil
	}
	var out []store.Dialect
	for _, n := range strings.Split(sel, ",") {
		d := store.Dialect(strings.TrimSpace(n))
		known := false
		for _, k := range store.Dialects {
			known = known || k == d
		}
		if !known {
			return nil, fmt.Errorf("unknown dialect %q (known: sqlite, postgres, mysql)", d)
		}
		out = append(out, d)
	}
	return out, nil
}

// storeSuite is the store suite over the stores registry: each back-end is
// run on every dialect the run could provide.
func storeSuite(env *suiteEnv) conformanceSuite {
	return conformanceSuite{
		name:  storetest.Suite,
		order: storeOrder,
		cases: storetest.Cases,
		record: func(backend string, timeout time.Duration, run *regexp.Regexp) []conformance.Result {
			var out []conformance.Result
			for _, d := range env.available {
				db, err := env.dbs.get(env.ctx, d)
				if err != nil {
					continue // reported once by the caller
				}
				out = append(out, storetest.RecordMatching(storetest.Fresh(stores[backend], db), backend, string(d), timeout, run)...)
			}
			return out
		},
		start: func(string) error { return nil },
	}
}

// httpOrder is the HTTP suite's columns: engine/store pairs.
func httpOrder() []string {
	var out []string
	for _, e := range httpapi.Engines {
		for _, s := range storeOrder {
			out = append(out, string(e)+"/"+s)
		}
	}
	return out
}

// httpSuite is the HTTP suite: every engine over every store back-end on
// every dialect provided. Server databases sit behind a proxy that the
// unreachable-database case cuts (and restores after it); SQLite has no
// network, and that case skips there.
func httpSuite(env *suiteEnv) conformanceSuite {
	const poem = "A poem for the conformance run.\n"
	const maxBody = 64 << 10
	return conformanceSuite{
		name:  apitest.Suite,
		order: httpOrder(),
		cases: apitest.Cases,
		record: func(backend string, timeout time.Duration, run *regexp.Regexp) []conformance.Result {
			engine, storeName, _ := strings.Cut(backend, "/")
			var out []conformance.Result
			for _, d := range env.available {
				db, err := env.dbs.get(env.ctx, d)
				if err != nil {
					continue
				}
				fresh := storetest.Fresh(stores[storeName], db)
				proxy := env.dbs.proxy(d)
				open := func(t conformance.T) apitest.Fixture {
					s, db := fresh(t)
					t.Cleanup(func() { s.Close() })
					ln, err := net.Listen("tcp", "127.0.0.1:0")
					if err != nil {
						t.Fatalf("listen: %v", err)
					}
					srv, err := httpapi.Start(httpapi.Engine(engine), ln, httpapi.Config{Store: s, Poem: []byte(poem), MaxBody: maxBody})
					if err != nil {
						t.Fatalf("start %s: %v", engine, err)
					}
					t.Cleanup(func() {
						sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						defer cancel()
						if err := srv.Shutdown(sctx); err != nil {
							t.Errorf("shutdown %s: %v", engine, err)
						}
					})
					f := apitest.Fixture{URL: srv.URL(), Store: s, DB: db, Poem: []byte(poem), MaxBody: maxBody}
					if proxy != nil {
						f.CutDatabase = func() {
							proxy.Cut()
							t.Cleanup(func() {
								if err := proxy.Restore(); err != nil {
									t.Errorf("restoring the database proxy: %v", err)
								}
							})
						}
					}
					return f
				}
				out = append(out, apitest.RecordMatching(open, backend, string(d), run)...)
			}
			return out
		},
		start: func(string) error { return nil },
	}
}
