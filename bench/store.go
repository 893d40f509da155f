package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twistbench/twistbench/impls/store"
)

// DataSet is the fixed data a store benchmark runs over, so that every
// back-end and dialect answers the same queries over the same rows.
type DataSet struct {
	Hosts    int // host-00000 ... with 10.x.y.z addresses, port 22
	Groups   int // group-000 ...; host i is in group i % Groups; one more group stays empty
	Users    int // users named user-0 ... user-49, so names repeat
	Parents  int // parent-000 ... each with ChildrenPer children
	Children int // children per parent
}

// DefaultDataSet is the data set of every profile: big enough that the
// queries use their indexes, small enough to seed in well under a second
// on SQLite.
var DefaultDataSet = DataSet{Hosts: 1000, Groups: 10, Users: 500, Parents: 50, Children: 4}

func hostName(i int) string  { return fmt.Sprintf("host-%05d", i) }
func groupName(i int) string { return fmt.Sprintf("group-%03d", i) }
func userName(i int) string  { return "user-" + strconv.Itoa(i%50) }

// Seed migrates st and writes ds into it. It expects an empty database.
func Seed(ctx context.Context, st store.Store, ds DataSet) error {
	if err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("seed: migrate: %w", err)
	}
	hosts := make([]store.Host, ds.Hosts)
	for i := range hosts {
		hosts[i] = store.Host{Hostname: hostName(i), IPAddr: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), Port: 22}
	}
	for lo := 0; lo < len(hosts); lo += 200 {
		if err := st.CreateHosts(ctx, hosts[lo:min(lo+200, len(hosts))]); err != nil {
			return fmt.Errorf("seed: hosts: %w", err)
		}
	}
	for g := 0; g <= ds.Groups; g++ { // the last one stays empty
		if err := st.CreateGroup(ctx, &store.HostGroup{Name: groupName(g)}); err != nil {
			return fmt.Errorf("seed: groups: %w", err)
		}
	}
	if ds.Groups > 0 {
		for i := range ds.Hosts {
			if err := st.AddHostToGroup(ctx, hostName(i), groupName(i%ds.Groups)); err != nil {
				return fmt.Errorf("seed: membership: %w", err)
			}
		}
	}
	users := make([]store.User, ds.Users)
	for i := range users {
		users[i] = store.User{Name: userName(i)}
	}
	if len(users) > 0 {
		if err := st.CreateUsers(ctx, users); err != nil {
			return fmt.Errorf("seed: users: %w", err)
		}
	}
	for p := range ds.Parents {
		par := store.Parent{Name: fmt.Sprintf("parent-%03d", p)}
		for c := range ds.Children {
			par.Children = append(par.Children, store.Child{Name: fmt.Sprintf("child-%03d-%d", p, c)})
		}
		if err := st.CreateParent(ctx, &par); err != nil {
			return fmt.Errorf("seed: parents: %w", err)
		}
	}
	return nil
}

// storeOp is one operation of the store workload. It is called with a
// worker's own random source and a string unique in the process, for names
// that must not collide; it returns the rows it read or wrote (summed into
// the rows_per_sec figure) and the hostnames it created, to delete after
// the window.
type storeOp struct {
	write bool
	// prep, if set, runs before the timed call and is not measured: it
	// creates what the call then deletes or links, and returns the
	// hostnames to delete after the window.
	prep func(ctx context.Context, s store.Store, uniq string) (created []string, err error)
	run  func(ctx context.Context, s store.Store, ds DataSet, rng *rand.Rand, uniq string) (rows int, created []string, err error)
}

// StoreOps lists the store operations by name, in report order: each
// contract operation that can run repeatedly over the fixed data set, and
// "mixed" (see StoreConfig.ReadRatio).
var StoreOps = []string{
	"host_by_name", "hosts_by_names", "hosts_page", "host_labels",
	"hosts_in_group", "group_host_counts", "users_named", "parents_with_children",
	"create_host", "create_hosts", "update_host_port", "delete_host", "add_host_to_group",
	"delete_group", "transaction", "mixed",
}

// prepHost creates the host an operation works on, untimed.
func prepHost(ctx context.Context, s store.Store, uniq string) ([]string, error) {
	h := store.Host{Hostname: "bench-" + uniq, IPAddr: "192.0.2." + uniq}
	return []string{h.Hostname}, s.CreateHost(ctx, &h)
}

var storeOps = map[string]storeOp{
	"host_by_name": {run: func(ctx context.Context, s store.Store, ds DataSet, rng *rand.Rand, _ string) (int, []string, error) {
		_, err := s.HostByName(ctx, hostName(rng.IntN(ds.Hosts)))
		return 1, nil, err
	}},
	"hosts_by_names": {run: func(ctx context.Context, s store.Store, ds DataSet, rng *rand.Rand, _ string) (int, []string, error) {
		names := make([]string, 10)
		for i := range names {
			names[i] = hostName(rng.IntN(ds.Hosts))
		}
		hs, err := s.HostsByNames(ctx, names)
		return len(hs), nil, err
	}},
	"hosts_page": {run: func(ctx context.Context, s store.Store, ds DataSet, rng *rand.Rand, _ string) (int, []string, error) {
		hs, err := s.HostsPage(ctx, rng.IntN(max(ds.Hosts-20, 1)), 20)
		return len(hs), nil, err
	}},
	"host_labels": {run: func(ctx context.Context, s store.Store, _ DataSet, _ *rand.Rand, _ string) (int, []string, error) {
		ls, err := s.HostLabels(ctx)
		return len(ls), nil, err
	}},
	"hosts_in_group": {run: func(ctx context.Context, s store.Store, ds DataSet, rng *rand.Rand, _ string) (int, []string, error) {
		hs, err := s.HostsInGroup(ctx, groupName(rng.IntN(max(ds.Groups, 1))))
		return len(hs), nil, err
	}},
	"group_host_counts": {run: func(ctx context.Context, s store.Store, _ DataSet, _ *rand.Rand, _ string) (int, []string, error) {
		gs, err := s.GroupHostCounts(ctx)
		return len(gs), nil, err
	}},
	"users_named": {run: func(ctx context.Context, s store.Store, ds DataSet, rng *rand.Rand, _ string) (int, []string, error) {
		us, err := s.UsersNamed(ctx, userName(rng.IntN(max(ds.Users, 1))))
		return len(us), nil, err
	}},
	"parents_with_children": {run: func(ctx context.Context, s store.Store, _ DataSet, _ *rand.Rand, _ string) (int, []string, error) {
		ps, err := s.ParentsWithChildren(ctx)
		n := len(ps)
		for _, p := range ps {
			n += len(p.Children)
		}
		return n, nil, err
	}},
	"create_host": {write: true, run: func(ctx context.Context, s store.Store, _ DataSet, _ *rand.Rand, uniq string) (int, []string, error) {
		h := store.Host{Hostname: "bench-" + uniq, IPAddr: "192.0.2." + uniq}
		return 1, []string{h.Hostname}, s.CreateHost(ctx, &h)
	}},
	"create_hosts": {write: true, run: func(ctx context.Context, s store.Store, _ DataSet, _ *rand.Rand, uniq string) (int, []string, error) {
		hs := make([]store.Host, 10)
		names := make([]string, len(hs))
		for i := range hs {
			names[i] = "bench-" + uniq + "-" + strconv.Itoa(i)
			hs[i] = store.Host{Hostname: names[i], IPAddr: "198.51.100." + uniq + "." + strconv.Itoa(i)}
		}
		return len(hs), names, s.CreateHosts(ctx, hs)
	}},
	"update_host_port": {write: true, run: func(ctx context.Context, s store.Store, ds DataSet, rng *rand.Rand, _ string) (int, []string, error) {
		n, err := s.UpdateHostPort(ctx, store.HostFilter{Hostnames: []string{hostName(rng.IntN(ds.Hosts))}}, 22)
		if err == nil && n != 1 {
			err = fmt.Errorf("update matched %d rows, want 1", n)
		}
		return int(n), nil, err
	}},
	"delete_host": {write: true, prep: prepHost, run: func(ctx context.Context, s store.Store, _ DataSet, _ *rand.Rand, uniq string) (int, []string, error) {
		n, err := s.DeleteHosts(ctx, store.HostFilter{Hostnames: []string{"bench-" + uniq}})
		if err == nil && n != 1 {
			err = fmt.Errorf("delete removed %d hosts, want 1", n)
		}
		return int(n), nil, err
	}},
	"add_host_to_group": {write: true, prep: prepHost, run: func(ctx context.Context, s store.Store, ds DataSet, rng *rand.Rand, uniq string) (int, []string, error) {
		return 1, nil, s.AddHostToGroup(ctx, "bench-"+uniq, groupName(rng.IntN(max(ds.Groups, 1))))
	}},
	"delete_group": {write: true, prep: func(ctx context.Context, s store.Store, uniq string) ([]string, error) {
		return nil, s.CreateGroup(ctx, &store.HostGroup{Name: "bench-" + uniq})
	}, run: func(ctx context.Context, s store.Store, _ DataSet, _ *rand.Rand, uniq string) (int, []string, error) {
		return 1, nil, s.DeleteGroup(ctx, "bench-"+uniq)
	}},
	"transaction": {write: true, run: func(ctx context.Context, s store.Store, ds DataSet, rng *rand.Rand, uniq string) (int, []string, error) {
		name := "bench-" + uniq
		err := s.WithTx(ctx, func(tx store.Ops) error {
			h := store.Host{Hostname: name, IPAddr: "203.0.113." + uniq}
			if err := tx.CreateHost(ctx, &h); err != nil {
				return err
			}
			_, err := tx.HostByName(ctx, hostName(rng.IntN(ds.Hosts)))
			return err
		})
		return 2, []string{name}, err
	}},
}

// StoreConfig describes a store load: Workers goroutines calling Op on
// Store back to back.
type StoreConfig struct {
	Window
	Store store.Store
	// Op is one of StoreOps.
	Op string
	// Workers is the number of concurrent callers.
	Workers int
	// ReadRatio is the share of reads in the "mixed" operation: each call
	// is host_by_name with this probability, else update_host_port.
	ReadRatio float64
	// Data is the data set Store was seeded with.
	Data DataSet
}

// runSeq numbers the store loads of this process, so that the names the
// write operations create never repeat across runs on one database.
var runSeq atomic.Int64

// Store runs the store load. A failed call is counted as an error. What
// write operations created is deleted after the window, so the data set is
// the same for the next repeat.
func Store(ctx context.Context, cfg StoreConfig) (Measurement, error) {
	switch {
	case cfg.Store == nil:
		return Measurement{}, errors.New("store: no store")
	case cfg.Workers < 1:
		return Measurement{}, fmt.Errorf("store: %d workers, need at least 1", cfg.Workers)
	case cfg.Duration <= 0:
		return Measurement{}, fmt.Errorf("store: duration %v, need a positive window", cfg.Duration)
	case cfg.ReadRatio < 0 || cfg.ReadRatio > 1:
		return Measurement{}, fmt.Errorf("store: read ratio %v is outside [0, 1]", cfg.ReadRatio)
	case cfg.Data.Hosts < 1:
		return Measurement{}, errors.New("store: the data set has no hosts")
	}
	op, ok := storeOps[cfg.Op]
	if cfg.Op == "mixed" {
		r, w := storeOps["host_by_name"], storeOps["update_host_port"]
		ratio := cfg.ReadRatio
		op, ok = storeOp{write: true, run: func(ctx context.Context, s store.Store, ds DataSet, rng *rand.Rand, u string) (int, []string, error) {
			if rng.Float64() < ratio {
				return r.run(ctx, s, ds, rng, u)
			}
			return w.run(ctx, s, ds, rng, u)
		}}, true
	}
	if !ok {
		return Measurement{}, fmt.Errorf("store: unknown operation %q (known: %v)", cfg.Op, StoreOps)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	run := runSeq.Add(1)
	t := newTally(cfg.Workers, cfg.Observer)
	sched := newSchedule(cfg.Window)
	cpu := sampleCPU(ctx, cfg.CPU, sched)
	var mu sync.Mutex
	var created []string
	var rowCount atomic.Int64
	var wg sync.WaitGroup
	for w := range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(run), uint64(w)))
			var mine []string
			for i := 0; ctx.Err() == nil && time.Now().Before(sched.close); i++ {
				uniq := fmt.Sprintf("%d.%d.%d", run, w, i)
				if op.prep != nil {
					names, err := op.prep(ctx, cfg.Store, uniq)
					mine = append(mine, names...)
					if err != nil {
						if now := time.Now(); sched.counts(now, now) {
							t.fail(w)
						}
						continue
					}
				}
				begin := time.Now()
				rows, names, err := op.run(ctx, cfg.Store, cfg.Data, rng, uniq)
				end := time.Now()
				if err == nil {
					mine = append(mine, names...)
				}
				switch {
				case !sched.counts(begin, end):
				case err != nil:
					t.fail(w)
				default:
					t.op(w, end.Sub(begin), 0)
					rowCount.Add(int64(rows))
				}
			}
			mu.Lock()
			created = append(created, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Measurement{}, err
	}
	m := t.measurement(cfg.Duration)
	cpu(&m)
	m.Extra = map[string]float64{"rows_per_sec": float64(rowCount.Load()) / cfg.Duration.Seconds()}
	for lo := 0; lo < len(created); lo += 500 {
		f := store.HostFilter{Hostnames: created[lo:min(lo+500, len(created))]}
		if _, err := cfg.Store.DeleteHosts(ctx, f); err != nil {
			return m, fmt.Errorf("store: deleting the %d hosts %s created: %w", len(created), cfg.Op, err)
		}
	}
	return m, nil
}

// StoreCPU is the CPUSampler of a store trial. The load generator is this
// process, with the store back-end (gorm, sqlx, sql) and its driver inside
// it; what the server CPU figure holds depends on where the database runs:
//
//   - PostgreSQL and MySQL (Server set): the database server's CPU, read
//     from its container's cgroup (CgroupCPU), so server CPU per operation
//     is the database's work alone, and the back-end's own cost is in the
//     generator's CPU. The engine's port proxy (docker-proxy) is not in the
//     container's cgroup: its CPU counts as other processes'.
//   - SQLite (Embedded): the engine runs inside this process, so the
//     "server" is the process itself, and its CPU per operation includes
//     the back-end, the embedded engine and the generator's own calls. It
//     equals the generator's CPU, and is comparable across back-ends on
//     SQLite but not with the server dialects' figures.
//
// With neither, the server's CPU is not seen and is left out (nil).
type StoreCPU struct {
	// Embedded says the database runs in this process (SQLite).
	Embedded bool
	// Server reads the database server's CPU time so far (CgroupCPU.CPU);
	// ok false means not readable now (the container is gone).
	Server func() (cpu time.Duration, ok bool)
}

// Sample implements CPUSampler.
func (s StoreCPU) Sample() CPUSample {
	proc := ProcessCPU()
	out := CPUSample{Client: proc}
	out.HostBusy, out.HostOK = HostBusy()
	switch {
	case s.Embedded:
		out.Server, out.ServerOK = proc, true
		// The window's "other" CPU is host busy time minus the client's
		// and the server's: the process would be taken off twice, so
		// it is counted twice on the host side too.
		out.HostBusy += proc
	case s.Server != nil:
		out.Server, out.ServerOK = s.Server()
	}
	return out
}

// sampler returns the CPUSampler of the trials on dialect d. It runs after
// d's fixture is open, so a container serving d has started; the container
// is looked up anew for every case (the provider may have replaced it). A
// server dialect whose CPU cannot be read is noted once, with why (see
// Notes), and measured without a server figure.
func (f *StoreFixtures) sampler(d store.Dialect) CPUSampler {
	if d == store.SQLite {
		return StoreCPU{Embedded: true}
	}
	var err error
	if f.ContainerID == nil {
		err = errors.New("no container ID source (StoreFixtures.ContainerID unset)")
	} else {
		var c CgroupCPU
		if c, err = ContainerCgroupCPU(CgroupRoot, f.ContainerID(d)); err == nil {
			return StoreCPU{Server: c.CPU}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cpuNotes == nil {
		f.cpuNotes = map[store.Dialect]string{}
	}
	if _, ok := f.cpuNotes[d]; !ok {
		f.cpuNotes[d] = fmt.Sprintf("store suite, %s: server CPU not measured: %v", d, err)
	}
	return StoreCPU{}
}

// Notes returns one line per server dialect whose database CPU could not
// be read and why, in store.Dialects order, for results.File.Skipped.
func (f *StoreFixtures) Notes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, d := range store.Dialects {
		if n, ok := f.cpuNotes[d]; ok {
			out = append(out, n)
		}
	}
	return out
}
