package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twistbench/twistbench/bench/results"
	"github.com/twistbench/twistbench/containers"
	"github.com/twistbench/twistbench/impls/store"
	"github.com/twistbench/twistbench/impls/store/sqlconn"
	"github.com/twistbench/twistbench/impls/store/sqlstore"
)

// memStore is an in-memory store.Store, enough to drive the store
// workload: it keeps hosts, groups and membership, users and parents, and
// counts the calls per operation. failHostByName makes HostByName fail.
type memStore struct {
	mu             sync.Mutex
	hosts          map[string]store.Host
	groups         map[string][]string // group -> hostnames
	users          []store.User
	parents        []store.Parent
	nextID         int64
	calls          map[string]int
	failHostByName bool
}

var _ store.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{hosts: map[string]store.Host{}, groups: map[string][]string{}, calls: map[string]int{}}
}

func (s *memStore) call(op string) { s.calls[op]++; s.nextID++ }

func (s *memStore) Migrate(context.Context) error { return nil }
func (s *memStore) Close() error                  { return nil }
func (s *memStore) WithTx(ctx context.Context, fn func(store.Ops) error) error {
	s.mu.Lock()
	s.call("tx")
	s.mu.Unlock()
	return fn(s)
}

func (s *memStore) CreateHost(_ context.Context, h *store.Host) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.call("CreateHost")
	if _, ok := s.hosts[h.Hostname]; ok {
		return store.ErrDuplicate
	}
	h.ID = s.nextID
	s.hosts[h.Hostname] = *h
	return nil
}

func (s *memStore) CreateHosts(ctx context.Context, hs []store.Host) error {
	for i := range hs {
		if err := s.CreateHost(ctx, &hs[i]); err != nil {
			return err
		}
	}
	return nil
}

func (s *memStore) HostByName(_ context.Context, name string) (store.Host, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.call("HostByName")
	if s.failHostByName {
		return store.Host{}, errors.New("database on fire")
	}
	h, ok := s.hosts[name]
	if !ok {
		return h, store.ErrNotFound
	}
	return h, nil
}

func (s *memStore) HostsByNames(_ context.Context, names []string) ([]store.Host, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.call("HostsByNames")
	var out []store.Host
	for _, n := range names {
		if h, ok := s.hosts[n]; ok {
			out = append(out, h)
		}
	}
	return out, nil
}

func (s *memStore) sorted() []store.Host {
	out := make([]store.Host, 0, len(s.hosts))
	for _, h := range s.hosts {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (s *memStore) HostsPage(_ context.Context, off, lim int) ([]store.Host, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.call("HostsPage")
	all := s.sorted()
	if off > len(all) {
		return nil, nil
	}
	return all[off:min(off+lim, len(all))], nil
}

func (s *memStore) HostLabels(context.Context) ([]store.HostLabel, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.call("HostLabels")
	var out []store.HostLabel
	for _, h := range s.sorted() {
		out = append(out, store.HostLabel{Name: h.Hostname, Addr: h.IPAddr})
	}
	return out, nil
}

func (s *memStore) UpdateHostPort(_ context.Context, f store.HostFilter, port int) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.call("UpdateHostPort")
	var n int64
	for _, name := range f.Hostnames {
		if h, ok := s.hosts[name]; ok {
			h.Port = port
			s.hosts[name] = h
			n++
		}
	}
	return n, nil
}

func (s *memStore) DeleteHosts(_ context.Context, f store.HostFilter) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.call("DeleteHosts")
	var n int64
	for _, name := range f.Hostnames {
		if _, ok := s.hosts[name]; ok {
			delete(s.hosts, name)
			n++
			for g, hs := range s.groups {
				s.groups[g] = slices.DeleteFunc(hs, func(h string) bool { return h == name })
			}
		}
	}
	return n, nil
}

func (s *memStore) CreateGroup(_ context.Context, g *store.HostGroup) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.call("CreateGroup")
	s.groups[g.Name] = nil
	return nil
}

func (s *memStore) DeleteGroup(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.call("DeleteGroup")
	if _, ok := s.groups[name]; !ok {
		return store.ErrNotFound
	}
	delete(s.groups, name)
	return nil
}

func (s *memStore) AddHostToGroup(_ context.Context, host, group string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.call("AddHostToGroup")
	if _, ok := s.hosts[host]; !ok {
		return store.ErrNotFound
	}
	s.groups[group] = append(s.groups[group], host)
	return nil
}

func (s *memStore) HostsInGroup(_ context.Context, group string) ([]store.Host, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.call("HostsInGroup")
	names, ok := s.groups[group]
	if !ok {
		return nil, store.ErrNotFound
	}
	var out []store.Host
	for _, n := range names {
		out = append(out, s.hosts[n])
	}
	return out, nil
}

func (s *memStore) GroupHostCounts(context.Context) ([]store.GroupCount, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.call("GroupHostCounts")
	var out []store.GroupCount
	for g, hs := range s.groups {
		out = append(out, store.GroupCount{Group: g, Hosts: int64(len(hs))})
	}
	return out, nil
}

func (s *memStore) CreateUsers(_ context.Context, us []store.User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users = append(s.users, us...)
	return nil
}

func (s *memStore) UsersNamed(_ context.Context, name string) ([]store.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.call("UsersNamed")
	var out []store.User
	for _, u := range s.users {
		if u.Name == name {
			out = append(out, u)
		}
	}
	return out, nil
}

func (s *memStore) CreateParent(_ context.Context, p *store.Parent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.parents = append(s.parents, *p)
	return nil
}

func (s *memStore) ParentsWithChildren(context.Context) ([]store.Parent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.call("ParentsWithChildren")
	return slices.Clone(s.parents), nil
}

var smallData = DataSet{Hosts: 50, Groups: 3, Users: 20, Parents: 5, Children: 2}

func seeded(t *testing.T) *memStore {
	t.Helper()
	st := newMemStore()
	if err := Seed(t.Context(), st, smallData); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestSeed(t *testing.T) {
	st := seeded(t)
	if len(st.hosts) != 50 || len(st.groups) != 4 || len(st.users) != 20 || len(st.parents) != 5 {
		t.Errorf("seeded %d hosts, %d groups, %d users, %d parents; want 50, 4 (one empty), 20, 5",
			len(st.hosts), len(st.groups), len(st.users), len(st.parents))
	}
	if n := len(st.groups[groupName(3)]); n != 0 {
		t.Errorf("the extra group has %d hosts, want none", n)
	}
}

func TestStoreOpsRunAndCleanUp(t *testing.T) {
	wantCall := map[string]string{
		"host_by_name": "HostByName", "hosts_by_names": "HostsByNames", "hosts_page": "HostsPage",
		"host_labels": "HostLabels", "hosts_in_group": "HostsInGroup", "group_host_counts": "GroupHostCounts",
		"users_named": "UsersNamed", "parents_with_children": "ParentsWithChildren", "create_host": "CreateHost",
		"create_hosts": "CreateHost", "update_host_port": "UpdateHostPort", "transaction": "tx", "mixed": "HostByName",
		"delete_host": "DeleteHosts", "add_host_to_group": "AddHostToGroup", "delete_group": "DeleteGroup",
	}
	for _, op := range StoreOps {
		t.Run(op, func(t *testing.T) {
			st := seeded(t)
			m, err := Store(t.Context(), StoreConfig{
				Window: Window{Warmup: 10 * time.Millisecond, Duration: 100 * time.Millisecond},
				Store:  st, Op: op, Workers: 2, ReadRatio: 0.5, Data: smallData,
			})
			if err != nil {
				t.Fatal(err)
			}
			if m.Errors != 0 || m.Ops == 0 {
				t.Fatalf("ops %d errors %d", m.Ops, m.Errors)
			}
			// Every call of an operation calls its store method (at
			// least once); "mixed" at 0.5 reads calls it about half
			// the time.
			atLeast := int(m.Ops)
			if op == "mixed" {
				atLeast = int(m.Ops) / 4
			}
			if st.calls[wantCall[op]] < atLeast {
				t.Errorf("%s called %d times for %d ops", wantCall[op], st.calls[wantCall[op]], m.Ops)
			}
			if len(st.hosts) != smallData.Hosts || len(st.groups) != smallData.Groups+1 {
				t.Errorf("%d hosts and %d groups after the run, want the data set's %d and %d: writes were not cleaned up",
					len(st.hosts), len(st.groups), smallData.Hosts, smallData.Groups+1)
			}
			members := 0
			for _, hs := range st.groups {
				members += len(hs)
			}
			if members != smallData.Hosts {
				t.Errorf("%d memberships after the run, want %d", members, smallData.Hosts)
			}
			if m.Extra["rows_per_sec"] <= 0 {
				t.Errorf("rows/s = %v", m.Extra["rows_per_sec"])
			}
		})
	}
}

func TestStoreMixedRatio(t *testing.T) {
	st := seeded(t)
	_, err := Store(t.Context(), StoreConfig{
		Window: Window{Duration: 200 * time.Millisecond}, Store: st, Op: "mixed", Workers: 1, ReadRatio: 0.8, Data: smallData,
	})
	if err != nil {
		t.Fatal(err)
	}
	r, w := st.calls["HostByName"], st.calls["UpdateHostPort"]
	if share := float64(r) / float64(r+w); r+w < 200 || share < 0.75 || share > 0.85 {
		t.Errorf("%d reads and %d writes (%.2f reads), want about 0.8", r, w, float64(r)/float64(r+w))
	}
}

func TestStoreErrorsCounted(t *testing.T) {
	st := seeded(t)
	st.failHostByName = true
	m, err := Store(t.Context(), StoreConfig{
		Window: Window{Duration: 50 * time.Millisecond}, Store: st, Op: "host_by_name", Workers: 2, Data: smallData,
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Ops != 0 || m.Errors == 0 {
		t.Errorf("ops %d errors %d, want every call an error", m.Ops, m.Errors)
	}
}

func TestStoreConfigErrors(t *testing.T) {
	st := newMemStore()
	for _, tc := range []struct {
		cfg  StoreConfig
		want string
	}{
		{StoreConfig{Window: Window{Duration: time.Second}, Op: "host_by_name", Workers: 1, Data: smallData}, "no store"},
		{StoreConfig{Window: Window{Duration: time.Second}, Store: st, Op: "drop_table", Workers: 1, Data: smallData}, `unknown operation "drop_table"`},
		{StoreConfig{Window: Window{Duration: time.Second}, Store: st, Op: "mixed", Workers: 1, ReadRatio: 2, Data: smallData}, "read ratio 2"},
		{StoreConfig{Window: Window{Duration: time.Second}, Store: st, Op: "mixed", Workers: 0, Data: smallData}, "0 workers"},
	} {
		if _, err := Store(t.Context(), tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
}

func TestStoreGroupsShareOneSeededFixture(t *testing.T) {
	opens := 0
	fx := &StoreFixtures{Data: smallData, Open: func(ctx context.Context, backend string, d store.Dialect) (store.Store, func() error, error) {
		opens++
		if backend == "broken" {
			return nil, nil, errors.New("cannot open")
		}
		return newMemStore(), func() error { return nil }, nil
	}}
	defer fx.Close()
	p := Profiles["quick"]
	p.StoreOps = []string{"host_by_name", "hosts_page"}
	p.StoreWarmup, p.StoreDuration = 0, 20*time.Millisecond
	groups := StoreGroups(p, []string{"mem", "broken"}, []store.Dialect{store.SQLite}, fx)
	benches, skipped, err := (&Runner{Repeats: 2}).Run(t.Context(), groups)
	if err != nil {
		t.Fatal(err)
	}
	if opens != 2 {
		t.Errorf("opened %d stores, want one per back-end", opens)
	}
	// The broken back-end is reported once, by its first case; the
	// second case on the same fixture adds no line.
	if len(benches) != 2 || len(skipped) != 1 || !strings.Contains(skipped[0], "backend=broken") || !strings.Contains(skipped[0], "cannot open") {
		t.Fatalf("%d benchmarks and skipped %q; want 2 and the broken back-end once", len(benches), skipped)
	}
	if got := benches[0].Key(); got != "StoreHostByName/backend=mem/dialect=sqlite/workers=4" {
		t.Errorf("key = %q", got)
	}
}

// openSQLStore opens the sql back-end on dsn and returns what closes it.
func openSQLStore(ctx context.Context, dsn string) (store.Store, func() error, error) {
	db, err := sqlconn.Open(ctx, dsn)
	if err != nil {
		return nil, nil, err
	}
	st, err := sqlstore.Open(ctx, db)
	if err != nil {
		db.SQL.Close()
		return nil, nil, err
	}
	return st, func() error { return errors.Join(st.Close(), db.SQL.Close()) }, nil
}

// serverCPUProfile is a small store sweep: two operations, short windows.
func serverCPUProfile() Profile {
	p := Profiles["quick"]
	p.StoreOps = []string{"host_by_name", "create_host"}
	p.StoreWarmup, p.StoreDuration, p.StoreWorkers = 20*time.Millisecond, 150*time.Millisecond, 2
	return p
}

// checkServerCPU checks that every repeat of benches has a positive server
// CPU figure and that its per-operation summary exists.
func checkServerCPU(t *testing.T, benches []results.Benchmark, want int) {
	t.Helper()
	if len(benches) != want {
		t.Fatalf("%d benchmarks, want %d", len(benches), want)
	}
	for _, b := range benches {
		for i, r := range b.Repeats {
			if r.Ops == 0 || r.Errors != 0 {
				t.Errorf("%s repeat %d: %d ops, %d errors", b.Key(), i+1, r.Ops, r.Errors)
			}
			if r.ServerCPU == nil || *r.ServerCPU <= 0 {
				t.Errorf("%s repeat %d: server CPU %v, want a positive figure", b.Key(), i+1, r.ServerCPU)
			}
		}
		s, ok := b.Summaries["server_cpu_per_op"]
		if !ok || s.Median <= 0 {
			t.Errorf("%s: server_cpu_per_op summary %+v (present %v), want a positive median", b.Key(), s, ok)
		}
		t.Logf("%s: %.0f ops/s, server CPU %v/op", b.Key(), b.Summaries["throughput"].Median, time.Duration(s.Median))
	}
}

// TestStoreSQLiteServerCPU runs a small store sweep on SQLite, the real
// back-end over a real file: the database runs in this process, so the
// server CPU of every repeat is the process's, positive, and equal to the
// generator's (the same clock read at the same instants).
func TestStoreSQLiteServerCPU(t *testing.T) {
	dir := t.TempDir()
	n := 0
	fx := &StoreFixtures{Data: smallData, Open: func(ctx context.Context, backend string, d store.Dialect) (store.Store, func() error, error) {
		n++
		return openSQLStore(ctx, fmt.Sprintf("sqlite://%s/db%d.db", dir, n))
	}}
	groups := StoreGroups(serverCPUProfile(), []string{"sql"}, []store.Dialect{store.SQLite}, fx)
	benches, skipped, err := (&Runner{Repeats: 3}).Run(t.Context(), groups)
	if cerr := fx.Close(); cerr != nil {
		t.Error(cerr)
	}
	if err != nil || len(skipped) > 0 {
		t.Fatalf("err %v, skipped %q", err, skipped)
	}
	checkServerCPU(t, benches, 2)
	for _, b := range benches {
		for i, r := range b.Repeats {
			if r.ServerCPU != nil && *r.ServerCPU != r.ClientCPU {
				t.Errorf("%s repeat %d: server CPU %vs, generator %vs; embedded, they are one process", b.Key(), i+1, *r.ServerCPU, r.ClientCPU)
			}
		}
	}
	if notes := fx.Notes(); len(notes) != 0 {
		t.Errorf("notes %q, want none for SQLite", notes)
	}
}

// TestStoreServerCPUNotes checks that a server dialect whose container is
// unknown is measured without a server figure, and said so once.
func TestStoreServerCPUNotes(t *testing.T) {
	fx := &StoreFixtures{Data: smallData,
		Open: func(context.Context, string, store.Dialect) (store.Store, func() error, error) {
			return newMemStore(), func() error { return nil }, nil
		},
		ContainerID: func(store.Dialect) string { return "" }, // an existing server named by DSN
	}
	defer fx.Close()
	groups := StoreGroups(serverCPUProfile(), []string{"mem"}, []store.Dialect{store.Postgres}, fx)
	benches, _, err := (&Runner{Repeats: 2}).Run(t.Context(), groups)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range benches {
		for i, r := range b.Repeats {
			if r.ServerCPU != nil {
				t.Errorf("%s repeat %d: server CPU %v with no container, want none", b.Key(), i+1, *r.ServerCPU)
			}
		}
	}
	notes := fx.Notes()
	if len(notes) != 1 || !strings.Contains(notes[0], "postgres: server CPU not measured: no container ID") {
		t.Errorf("notes %q, want one line saying postgres has no container ID", notes)
	}
}

// TestStorePostgresServerCPU measures the sql back-end on a PostgreSQL
// container and reads the server's CPU from the container's cgroup. It
// skips when Docker or the image is unavailable, unless
// TWISTBENCH_REQUIRE_DOCKER=1.
func TestStorePostgresServerCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL container")
	}
	prov := containers.NewProvider()
	prov.Keep = true
	t.Cleanup(func() {
		if err := prov.Close(); err != nil {
			t.Error(err)
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	if c := prov.Choose(ctx, store.Postgres, true); c.Err != nil {
		if u, ok := containers.Skippable(c.Err); ok {
			t.Skip(u.Error())
		}
		t.Fatal(c.Err)
	}
	if h := os.Getenv("DOCKER_HOST"); h != "" && !strings.HasPrefix(h, "unix://") {
		t.Skipf("DOCKER_HOST=%s: a remote engine's containers are not on this machine", h)
	}
	var cleanups []func()
	t.Cleanup(func() {
		for _, c := range cleanups {
			c()
		}
	})
	fx := &StoreFixtures{Data: smallData, ContainerID: prov.ContainerID,
		Open: func(ctx context.Context, backend string, d store.Dialect) (store.Store, func() error, error) {
			dsn, cleanup, err := prov.Get(ctx, d)
			cleanups = append(cleanups, cleanup)
			if err != nil {
				return nil, nil, err
			}
			return openSQLStore(ctx, dsn)
		}}
	groups := StoreGroups(serverCPUProfile(), []string{"sql"}, []store.Dialect{store.Postgres}, fx)
	benches, skipped, err := (&Runner{Repeats: 2}).Run(ctx, groups)
	if cerr := fx.Close(); cerr != nil {
		t.Error(cerr)
	}
	if err != nil || len(skipped) > 0 {
		t.Fatalf("err %v, skipped %q", err, skipped)
	}
	if notes := fx.Notes(); len(notes) != 0 {
		t.Fatalf("the container's CPU was not read: %q", notes)
	}
	id := prov.ContainerID(store.Postgres)
	if c, err := ContainerCgroupCPU(CgroupRoot, id); err != nil {
		t.Errorf("container %q: %v", id, err)
	} else {
		t.Logf("server CPU read from %s", c.Path)
	}
	checkServerCPU(t, benches, 2)
}
