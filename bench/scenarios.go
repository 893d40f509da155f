package bench

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twistbench/twistbench/bench/results"
	"github.com/twistbench/twistbench/impls/store"
)

// Profile is a named size of the benchmark sweep.
type Profile struct {
	Name string
	// Repeats is R unless the command line says otherwise.
	Repeats int
	// Warmup and Duration bound each reactor trial.
	Warmup, Duration time.Duration
	// Conns and Sizes are the closed-loop echo sweep (C x P).
	Conns, Sizes []int
	// Depth is the closed loop's pipelining depth.
	Depth int
	// OpenConns and OpenRate are the open-loop echo point.
	OpenConns int
	OpenRate  float64
	// PoetryClients (N), PoetryServers (K) and PoemSizes (S) are the
	// poetry points.
	PoetryClients, PoetryServers int
	PoemSizes                    []int
	// StoreWarmup and StoreDuration bound each store trial; StoreOps are
	// the operations measured, StoreWorkers the concurrent callers.
	StoreWarmup, StoreDuration time.Duration
	StoreOps                   []string
	StoreWorkers               int
	// ReadRatio is the share of reads of the mixed store workload.
	ReadRatio float64
	// HTTPConns is the HTTP suite's concurrency sweep (bench/http.go).
	// HTTPStores and HTTPDialects, when set, narrow the selected store
	// back-ends and dialects of its read and write scenarios to these
	// (quick: sql on SQLite); a selection with none of them stands.
	HTTPConns    []int
	HTTPStores   []string
	HTTPDialects []store.Dialect
}

// Profiles are the sweeps `harness bench --profile` knows. quick is sized
// so that the whole `harness run` ends within 3 minutes on 2 cores; full is
// the sweep and takes hours.
var Profiles = map[string]Profile{
	"quick": {
		Name: "quick", Repeats: 3,
		Warmup: 200 * time.Millisecond, Duration: 500 * time.Millisecond,
		Conns: []int{1, 64}, Sizes: []int{64}, Depth: 1,
		OpenConns: 16, OpenRate: 5000,
		PoetryClients: 4, PoetryServers: 2, PoemSizes: []int{1 << 10},
		StoreWarmup: 50 * time.Millisecond, StoreDuration: 250 * time.Millisecond,
		StoreOps:     []string{"host_by_name", "hosts_page", "group_host_counts", "parents_with_children", "create_host", "transaction", "mixed"},
		StoreWorkers: 4, ReadRatio: 0.9,
		HTTPConns: []int{16}, HTTPStores: []string{"sql"}, HTTPDialects: []store.Dialect{store.SQLite},
	},
	"ci": {
		Name: "ci", Repeats: 5,
		Warmup: 500 * time.Millisecond, Duration: 2 * time.Second,
		Conns: []int{1, 64, 1024}, Sizes: []int{64, 4096}, Depth: 1,
		OpenConns: 64, OpenRate: 20000,
		PoetryClients: 16, PoetryServers: 3, PoemSizes: []int{1 << 10, 1 << 20},
		StoreWarmup: 300 * time.Millisecond, StoreDuration: time.Second,
		StoreOps: StoreOps, StoreWorkers: 8, ReadRatio: 0.9,
		HTTPConns: []int{1, 16, 64},
	},
	"full": {
		Name: "full", Repeats: 5,
		Warmup: time.Second, Duration: 5 * time.Second,
		Conns: []int{1, 64, 1024, 10000}, Sizes: []int{64, 4096}, Depth: 1,
		OpenConns: 256, OpenRate: 50000,
		PoetryClients: 64, PoetryServers: 3, PoemSizes: []int{1 << 10, 1 << 20},
		StoreWarmup: time.Second, StoreDuration: 3 * time.Second,
		StoreOps: StoreOps, StoreWorkers: 16, ReadRatio: 0.9,
		HTTPConns: []int{1, 16, 64, 256},
	},
}

// ProfileNames lists the profiles in order of size.
var ProfileNames = []string{"quick", "ci", "full"}

// LookupProfile returns the named profile or an error naming the known ones.
func LookupProfile(name string) (Profile, error) {
	p, ok := Profiles[name]
	if !ok {
		return Profile{}, fmt.Errorf("unknown profile %q (known: %s)", name, strings.Join(ProfileNames, ", "))
	}
	return p, nil
}

// WithDuration returns p with every measured window set to d (and the
// warm-ups scaled alike), for --duration.
func (p Profile) WithDuration(d time.Duration) Profile {
	p.Warmup = d / 4
	p.Duration = d
	p.StoreWarmup = d / 4
	p.StoreDuration = d
	return p
}

func param(k string, v any) results.Param { return results.Param{Key: k, Value: fmt.Sprint(v)} }

// ReactorGroups builds the reactor suite's cases for backends: the closed
// loop at every (conns, size), the open loop, and poetry at every poem size,
// each served by a fresh server from l per trial.
func ReactorGroups(p Profile, backends []string, l Launcher) []Group {
	_, shared := l.(InProcess)
	var groups []Group
	est := p.Warmup + p.Duration + 200*time.Millisecond // + server start
	build := func(scenario string, params []results.Param, spec ServerSpec, run func(ctx context.Context, w Window, addrs []string) (Measurement, error)) {
		var g Group
		for _, b := range backends {
			spec := spec
			spec.Backend = b
			g = append(g, &Case{
				Suite: "reactor", Scenario: scenario, Backend: b, Params: params, Estimate: est, SharedCPU: shared,
				Setup: func(context.Context) (Trial, func() error, error) {
					return reactorTrial(l, spec, p, run), nil, nil
				},
			})
		}
		groups = append(groups, g)
	}
	for _, c := range p.Conns {
		for _, s := range p.Sizes {
			params := []results.Param{param("conns", c), param("size", s)}
			if p.Depth > 1 {
				params = append(params, param("depth", p.Depth))
			}
			build("echo-closed", params, ServerSpec{Proto: "echo"}, func(ctx context.Context, w Window, addrs []string) (Measurement, error) {
				return Echo(ctx, EchoConfig{Window: w, Addr: addrs[0], Conns: c, Size: s, Depth: p.Depth})
			})
		}
	}
	if p.OpenRate > 0 && len(p.Sizes) > 0 {
		s := p.Sizes[0]
		build("echo-open", []results.Param{param("conns", p.OpenConns), param("size", s), param("rate", p.OpenRate)},
			ServerSpec{Proto: "echo"}, func(ctx context.Context, w Window, addrs []string) (Measurement, error) {
				return Echo(ctx, EchoConfig{Window: w, Addr: addrs[0], Conns: p.OpenConns, Size: s, Rate: p.OpenRate})
			})
	}
	for _, size := range p.PoemSizes {
		poem := Poem(size)
		build("poetry", []results.Param{param("clients", p.PoetryClients), param("servers", p.PoetryServers), param("size", size)},
			ServerSpec{Proto: "poetry", Listeners: p.PoetryServers, PoemSize: size},
			func(ctx context.Context, w Window, addrs []string) (Measurement, error) {
				return Poetry(ctx, PoetryConfig{Window: w, Addrs: addrs, Clients: p.PoetryClients, Poem: poem})
			})
	}
	return groups
}

func reactorTrial(l Launcher, spec ServerSpec, p Profile, run func(context.Context, Window, []string) (Measurement, error)) Trial {
	return func(ctx context.Context, obs Observer) (m Measurement, err error) {
		srv, err := l.Launch(ctx, spec)
		if err != nil {
			return Measurement{}, err
		}
		defer func() {
			if cerr := srv.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}()
		if len(srv.Addrs()) == 0 {
			return Measurement{}, errNoServer
		}
		w := Window{Warmup: p.Warmup, Duration: p.Duration, Observer: obs, CPU: ServerCPU{srv}}
		return run(ctx, w, srv.Addrs())
	}
}

// OpenStore opens a fresh, empty store of backend on dialect and returns it
// with what closes it (the store and its database).
type OpenStore func(ctx context.Context, backend string, dialect store.Dialect) (store.Store, func() error, error)

// StoreFixtures opens and seeds one store per (backend, dialect) the first
// time a case needs it, and shares it between that pair's cases, so that
// the data set is seeded once. Close releases them all.
type StoreFixtures struct {
	Open OpenStore
	Data DataSet
	// ContainerID, if set, returns the full ID of the container serving
	// a server dialect (containers.Provider.ContainerID), whose cgroup
	// gives the database's CPU (StoreCPU); SQLite needs none.
	ContainerID func(d store.Dialect) string

	mu       sync.Mutex
	open     map[string]*fixture
	cpuNotes map[store.Dialect]string // see Notes
}

type fixture struct {
	st    store.Store
	close func() error
	err   error
}

func (f *StoreFixtures) get(ctx context.Context, backend string, d store.Dialect) (store.Store, error) {
	key := backend + "/" + string(d)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open == nil {
		f.open = map[string]*fixture{}
	}
	if fx, ok := f.open[key]; ok {
		if fx.err != nil {
			return nil, ErrReported // the first case on this fixture reported why
		}
		return fx.st, nil
	}
	fx := &fixture{}
	f.open[key] = fx
	fx.st, fx.close, fx.err = f.Open(ctx, backend, d)
	if fx.err == nil {
		if err := Seed(ctx, fx.st, f.Data); err != nil {
			fx.err = err
		}
	}
	return fx.st, fx.err
}

// Close closes every store opened.
func (f *StoreFixtures) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	keys := make([]string, 0, len(f.open))
	for k := range f.open {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		if fx := f.open[k]; fx.close != nil {
			if err := fx.close(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
			}
		}
	}
	f.open = nil
	return errors.Join(errs...)
}

// StoreGroups builds the store suite's cases: per dialect, per operation, a
// group of every back-end.
func StoreGroups(p Profile, backends []string, dialects []store.Dialect, fx *StoreFixtures) []Group {
	var groups []Group
	est := p.StoreWarmup + p.StoreDuration
	for _, d := range dialects {
		for _, op := range p.StoreOps {
			params := []results.Param{param("workers", p.StoreWorkers)}
			if op == "mixed" {
				params = append(params, param("reads", strconv.FormatFloat(p.ReadRatio, 'f', -1, 64)))
			}
			var g Group
			for _, b := range backends {
				g = append(g, &Case{
					Suite: "store", Scenario: op, Backend: b, Dialect: string(d), Params: params, Estimate: est,
					// The store back-end and, for SQLite, the database
					// run in this process; the server CPU is StoreCPU's.
					SharedCPU: true,
					Setup: func(ctx context.Context) (Trial, func() error, error) {
						st, err := fx.get(ctx, b, d)
						if err != nil {
							return nil, nil, err
						}
						cpu := fx.sampler(d)
						return func(ctx context.Context, obs Observer) (Measurement, error) {
							return Store(ctx, StoreConfig{
								Window: Window{Warmup: p.StoreWarmup, Duration: p.StoreDuration, Observer: obs, CPU: cpu},
								Store:  st, Op: op, Workers: p.StoreWorkers, ReadRatio: p.ReadRatio, Data: fx.Data,
							})
						}, nil, nil
					},
				})
			}
			groups = append(groups, g)
		}
	}
	return groups
}
