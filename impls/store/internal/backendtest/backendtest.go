// Package backendtest holds the focused tests that the hand-SQL back-ends
// (sqlstore and sqlxstore) share: each back-end's test calls Run with a
// Backend saying what differs between them (the name, Open, and the
// statement counts that follow from how each one writes its queries). The
// conformance suite (conformance/storetest) checks the contract on every
// back-end; these tests pin the hand-SQL back-ends' own choices, such as
// how many statements a join takes.
package backendtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twistbench/twistbench/containers"
	"github.com/twistbench/twistbench/impls/store"
	"github.com/twistbench/twistbench/impls/store/schema"
)

// Backend is what the tests need to know of a back-end.
type Backend struct {
	Name                   string
	Open                   store.Open
	AddMemberStatements    int64 // statements AddHostToGroup runs
	HostsInGroupStatements int64 // statements HostsInGroup runs
	PreloadStatements      int64 // statements ParentsWithChildren of 100 parents runs
}

// eachDialect runs fn in a subtest per dialect with an empty database of
// it: SQLite always, PostgreSQL and MySQL when package containers can
// provide them (a subtest skips, saying why, when it cannot, and fails
// under TWISTBENCH_REQUIRE_DOCKER=1).
// EachDialect is eachDialect, for the back-ends' own tests.
func EachDialect(t *testing.T, fn func(t *testing.T, db *store.DB)) { eachDialect(t, fn) }

func eachDialect(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	for _, d := range store.Dialects {
		t.Run(string(d), func(t *testing.T) { fn(t, containers.TestDB(t, d)) })
	}
}

// NewStore opens the back-end on db, migrates, and empties every table.
func (backend Backend) NewStore(tb testing.TB, db *store.DB) store.Store {
	tb.Helper()
	ctx := context.Background()
	s, err := backend.Open(ctx, db)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := schema.Truncate(ctx, db); err != nil {
		tb.Fatal(err)
	}
	return s
}

// statements returns how many statements f made the driver run.
func statements(db *store.DB, f func()) int64 {
	before := db.Statements.Load()
	f()
	return db.Statements.Load() - before
}

func mustHost(t *testing.T, s store.Ops, name, ip string, port int) store.Host {
	t.Helper()
	h := store.Host{Hostname: name, IPAddr: ip, Port: port}
	if err := s.CreateHost(context.Background(), &h); err != nil {
		t.Fatalf("CreateHost(%s): %v", name, err)
	}
	return h
}

func mustGroup(t *testing.T, s store.Ops, name string) store.HostGroup {
	t.Helper()
	g := store.HostGroup{Name: name}
	if err := s.CreateGroup(context.Background(), &g); err != nil {
		t.Fatalf("CreateGroup(%s): %v", name, err)
	}
	return g
}

func count(t *testing.T, db *store.DB, table string) int {
	t.Helper()
	var n int
	if err := db.SQL.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func testOpenRejects(t *testing.T, backend Backend) {
	ctx := context.Background()
	if _, err := backend.Open(ctx, nil); err == nil {
		t.Error("Open(nil) succeeded")
	}
	bad := *containers.TestDB(t, store.SQLite)
	bad.Dialect = "oracle"
	if _, err := backend.Open(ctx, &bad); err == nil || !strings.Contains(err.Error(), "oracle") {
		t.Errorf("Open(oracle) = %v, want an error naming the dialect", err)
	}
}

func testCreateAndFindHost(t *testing.T, backend Backend) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := backend.NewStore(t, db)
		h := mustHost(t, s, "localhost", "127.0.0.1", 0)
		if h.ID != 1 || h.Port != store.DefaultPort {
			t.Fatalf("created %+v, want id 1 and the default port", h)
		}
		got, err := s.HostByName(ctx, "localhost")
		if err != nil || got != h {
			t.Fatalf("HostByName = %+v, %v; want %+v", got, err, h)
		}
		if _, err := s.HostByName(ctx, "nowhere"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("HostByName(missing) err = %v, want ErrNotFound", err)
		}
		// The documented per-dialect difference: MySQL's default
		// collation folds case, the others compare bytes.
		got, err = s.HostByName(ctx, "LOCALHOST")
		if db.Dialect == store.MySQL {
			if err != nil || got != h {
				t.Fatalf("HostByName(LOCALHOST) on MySQL = %+v, %v; want %+v (case-insensitive collation)", got, err, h)
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("HostByName(LOCALHOST) on %s err = %v, want ErrNotFound", db.Dialect, err)
		}
	})
}

func testDuplicates(t *testing.T, backend Backend) {
	ctx := context.Background()
	tests := []struct {
		name  string
		table string
		want  int // rows in table afterwards
		do    func(s store.Store) error
	}{
		{"hostname", "hosts", 1, func(s store.Store) error {
			return s.CreateHost(ctx, &store.Host{Hostname: "a", IPAddr: "10.0.0.9"})
		}},
		{"ip_addr", "hosts", 1, func(s store.Store) error {
			return s.CreateHost(ctx, &store.Host{Hostname: "b", IPAddr: "10.0.0.1"})
		}},
		{"group", "host_groups", 1, func(s store.Store) error {
			return s.CreateGroup(ctx, &store.HostGroup{Name: "g"})
		}},
		{"membership", "host_group_members", 1, func(s store.Store) error {
			return s.AddHostToGroup(ctx, "a", "g")
		}},
		{"bulk, within the statement", "hosts", 1, func(s store.Store) error {
			return s.CreateHosts(ctx, []store.Host{{Hostname: "x", IPAddr: "10.1.0.1"}, {Hostname: "x", IPAddr: "10.1.0.2"}})
		}},
		{"bulk, in the last of several batches", "hosts", 1, func(s store.Store) error {
			hosts := make([]store.Host, 2500) // three statements
			for i := range hosts {
				hosts[i] = store.Host{Hostname: fmt.Sprintf("h%04d", i), IPAddr: fmt.Sprintf("10.2.%d.%d", i/256, i%256)}
			}
			hosts[len(hosts)-1].Hostname = "a"
			return s.CreateHosts(ctx, hosts)
		}},
	}
	eachDialect(t, func(t *testing.T, db *store.DB) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := backend.NewStore(t, db)
				mustHost(t, s, "a", "10.0.0.1", 0)
				mustGroup(t, s, "g")
				if err := s.AddHostToGroup(ctx, "a", "g"); err != nil {
					t.Fatal(err)
				}
				err := tt.do(s)
				if !errors.Is(err, store.ErrDuplicate) {
					t.Fatalf("err = %v, want ErrDuplicate", err)
				}
				if n := count(t, db, tt.table); n != tt.want {
					t.Fatalf("%s has %d rows after the duplicate, want %d (nothing written)", tt.table, n, tt.want)
				}
			})
		}
	})
}

func testInvalidInputRunsNoSQL(t *testing.T, backend Backend) {
	ctx := context.Background()
	db := containers.TestDB(t, store.SQLite) // validation runs before any SQL, so one dialect shows it
	s := backend.NewStore(t, db)
	long := strings.Repeat("é", store.MaxHostname+1)
	tests := []struct {
		name string
		do   func() error
	}{
		{"empty hostname", func() error { return s.CreateHost(ctx, &store.Host{IPAddr: "1.1.1.1"}) }},
		{"65-char hostname", func() error { return s.CreateHost(ctx, &store.Host{Hostname: long, IPAddr: "1.1.1.1"}) }},
		{"port 65536", func() error { return s.CreateHost(ctx, &store.Host{Hostname: "a", IPAddr: "1.1.1.1", Port: 65536}) }},
		{"bulk with one bad", func() error {
			return s.CreateHosts(ctx, []store.Host{{Hostname: "a", IPAddr: "1"}, {Hostname: "", IPAddr: "2"}})
		}},
		{"empty group", func() error { return s.CreateGroup(ctx, &store.HostGroup{}) }},
		{"empty filter update", func() error { _, err := s.UpdateHostPort(ctx, store.HostFilter{}, 1); return err }},
		{"negative port update", func() error {
			_, err := s.UpdateHostPort(ctx, store.HostFilter{Hostnames: []string{"a"}}, -1)
			return err
		}},
		{"empty filter delete", func() error { _, err := s.DeleteHosts(ctx, store.HostFilter{}); return err }},
		{"negative offset", func() error { _, err := s.HostsPage(ctx, -1, 1); return err }},
		{"negative limit", func() error { _, err := s.HostsPage(ctx, 0, -1); return err }},
		{"user name of 51", func() error { return s.CreateUsers(ctx, []store.User{{Name: strings.Repeat("u", 51)}}) }},
		{"child without name", func() error {
			return s.CreateParent(ctx, &store.Parent{Name: "p", Children: []store.Child{{}}})
		}},
		{"IN list over the parameter limit", func() error {
			_, err := s.HostsByNames(ctx, make([]string, 70000))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if n := statements(db, func() { err = tt.do() }); n != 0 {
				t.Errorf("%d statements ran", n)
			}
			if !errors.Is(err, store.ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func testEmptyListsRunNoSQL(t *testing.T, backend Backend) {
	ctx := context.Background()
	db := containers.TestDB(t, store.SQLite)
	s := backend.NewStore(t, db)
	var hosts []store.Host
	var err error
	if n := statements(db, func() { hosts, err = s.HostsByNames(ctx, nil) }); n != 0 || err != nil || hosts == nil || len(hosts) != 0 {
		t.Errorf("HostsByNames(nil) = %v, %v after %d statements; want an empty non-nil slice and no SQL", hosts, err, n)
	}
	if n := statements(db, func() { err = s.CreateHosts(ctx, nil) }); n != 0 || err != nil {
		t.Errorf("CreateHosts(nil) = %v after %d statements", err, n)
	}
	if n := statements(db, func() { err = s.CreateUsers(ctx, []store.User{}) }); n != 0 || err != nil {
		t.Errorf("CreateUsers([]) = %v after %d statements", err, n)
	}
}

// TestBulkIDsMatchRows checks the ids CreateHosts reports against the rows
// written, over several batches: on MySQL it proves that the ids of one
// multi-row INSERT are consecutive from LastInsertId.
func testBulkIDsMatchRows(t *testing.T, backend Backend) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := backend.NewStore(t, db)
		mustHost(t, s, "first", "10.255.0.1", 0) // ids of the bulk start at 2
		hosts := make([]store.Host, 2100)        // three batches
		for i := range hosts {
			hosts[i] = store.Host{Hostname: fmt.Sprintf("h%04d", i), IPAddr: fmt.Sprintf("10.0.%d.%d", i/256, i%256), Port: i % 3}
		}
		if err := s.CreateHosts(ctx, hosts); err != nil {
			t.Fatal(err)
		}
		byName, err := s.HostsByNames(ctx, []string{"h0000", "h0001", "h1000", "h2099"})
		if err != nil {
			t.Fatal(err)
		}
		want := []store.Host{hosts[0], hosts[1], hosts[1000], hosts[2099]}
		if fmt.Sprint(byName) != fmt.Sprint(want) {
			t.Fatalf("HostsByNames = %v, want %v (ids and ports as CreateHosts set them)", byName, want)
		}
		if hosts[0].ID != 2 || hosts[0].Port != store.DefaultPort || hosts[1].Port != 1 {
			t.Errorf("hosts[0] = %+v, hosts[1] = %+v; want id 2, the default port, then port 1", hosts[0], hosts[1])
		}
	})
}

func testHostsPage(t *testing.T, backend Backend) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := backend.NewStore(t, db)
		for i := range 5 {
			mustHost(t, s, fmt.Sprintf("h%d", i), fmt.Sprintf("10.0.0.%d", i), 0)
		}
		tests := []struct {
			offset, limit int
			want          string
		}{
			{1, 2, "h1 h2"}, // order_by(Host.id)[1:3]
			{0, 10, "h0 h1 h2 h3 h4"},
			{4, 2, "h4"},
			{5, 2, ""},
			{99, 1, ""},
			{0, 0, ""},
		}
		for _, tt := range tests {
			page, err := s.HostsPage(ctx, tt.offset, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, h := range page {
				names = append(names, h.Hostname)
			}
			if got := strings.Join(names, " "); got != tt.want {
				t.Errorf("HostsPage(%d, %d) = %q, want %q", tt.offset, tt.limit, got, tt.want)
			}
		}
	})
}

func testLabels(t *testing.T, backend Backend) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		s := backend.NewStore(t, db)
		mustHost(t, s, "b", "10.0.0.2", 0)
		mustHost(t, s, "a", "10.0.0.1", 0)
		got, err := s.HostLabels(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := []store.HostLabel{{Name: "b", Addr: "10.0.0.2"}, {Name: "a", Addr: "10.0.0.1"}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("HostLabels = %v, want %v (by id)", got, want)
		}
	})
}

// TestUpdateAndDelete: UPDATE reports the rows it matched, also those that
// already had the value (on MySQL thanks to clientFoundRows=true).
func testUpdateAndDelete(t *testing.T, backend Backend) {
	ctx := context.Background()
	tests := []struct {
		name    string
		filter  store.HostFilter
		port    int
		matched int64
		ports   string // of a b c afterwards
		deleted int64  // by the same filter afterwards
	}{
		{"same value still counts as matched", store.HostFilter{Hostnames: []string{"a", "b"}}, 22, 2, "22 22 8080", 2},
		{"by name", store.HostFilter{Hostnames: []string{"a"}}, 2222, 1, "2222 22 8080", 1},
		{"by port", store.HostFilter{Ports: []int{22}}, 23, 2, "23 23 8080", 0},
		{"name AND port", store.HostFilter{Hostnames: []string{"a", "c"}, Ports: []int{8080}}, 1, 1, "22 22 1", 0},
		{"nothing matches", store.HostFilter{Hostnames: []string{"zzz"}}, 1, 0, "22 22 8080", 0},
	}
	eachDialect(t, func(t *testing.T, db *store.DB) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := backend.NewStore(t, db)
				mustHost(t, s, "a", "10.0.0.1", 22)
				mustHost(t, s, "b", "10.0.0.2", 22)
				mustHost(t, s, "c", "10.0.0.3", 8080)
				n, err := s.UpdateHostPort(ctx, tt.filter, tt.port)
				if err != nil || n != tt.matched {
					t.Fatalf("UpdateHostPort = %d, %v; want %d", n, err, tt.matched)
				}
				all, err := s.HostsPage(ctx, 0, 10)
				if err != nil {
					t.Fatal(err)
				}
				var ports []string
				for _, h := range all {
					ports = append(ports, fmt.Sprint(h.Port))
				}
				if got := strings.Join(ports, " "); got != tt.ports {
					t.Fatalf("ports afterwards %q, want %q", got, tt.ports)
				}
				n, err = s.DeleteHosts(ctx, tt.filter)
				if err != nil || n != tt.deleted {
					t.Fatalf("DeleteHosts(same filter) = %d, %v; want %d", n, err, tt.deleted)
				}
			})
		}
	})
}

func testMembership(t *testing.T, backend Backend) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := backend.NewStore(t, db)
		mustHost(t, s, "b", "10.0.0.2", 0)
		mustHost(t, s, "a", "10.0.0.1", 0)
		mustGroup(t, s, "web")
		mustGroup(t, s, "empty")
		for _, h := range []string{"b", "a"} {
			if n := statements(db, func() {
				if err := s.AddHostToGroup(ctx, h, "web"); err != nil {
					t.Fatal(err)
				}
			}); n != backend.AddMemberStatements {
				t.Errorf("AddHostToGroup took %d statements, want %d", n, backend.AddMemberStatements)
			}
		}
		for _, tt := range []struct{ host, group, missing string }{
			{"nope", "web", `host "nope"`},
			{"a", "nope", `group "nope"`},
			{"nope", "nope", `host "nope"`},
		} {
			err := s.AddHostToGroup(ctx, tt.host, tt.group)
			if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), tt.missing) {
				t.Errorf("AddHostToGroup(%s, %s) = %v, want ErrNotFound naming %s", tt.host, tt.group, err, tt.missing)
			}
		}
		var hosts []store.Host
		var err error
		if n := statements(db, func() { hosts, err = s.HostsInGroup(ctx, "web") }); n != backend.HostsInGroupStatements {
			t.Errorf("HostsInGroup took %d statements, want %d", n, backend.HostsInGroupStatements)
		}
		if err != nil || len(hosts) != 2 || hosts[0].Hostname != "a" || hosts[1].Hostname != "b" {
			t.Fatalf("HostsInGroup(web) = %v, %v; want a, b", hosts, err)
		}
		if hosts, err := s.HostsInGroup(ctx, "empty"); err != nil || hosts == nil || len(hosts) != 0 {
			t.Fatalf("HostsInGroup(empty) = %v, %v; want an empty non-nil slice", hosts, err)
		}
		if _, err := s.HostsInGroup(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("HostsInGroup(nope) err = %v, want ErrNotFound", err)
		}
		counts, err := s.GroupHostCounts(ctx)
		if want := "[{empty 0} {web 2}]"; err != nil || fmt.Sprint(counts) != want {
			t.Fatalf("GroupHostCounts = %v, %v; want %s", counts, err, want)
		}

		// Cascades: a deleted host leaves its groups, a deleted group
		// frees its hosts.
		if n, err := s.DeleteHosts(ctx, store.HostFilter{Hostnames: []string{"a"}}); err != nil || n != 1 {
			t.Fatalf("DeleteHosts(a) = %d, %v", n, err)
		}
		if n := count(t, db, "host_group_members"); n != 1 {
			t.Fatalf("%d memberships after deleting a host, want 1", n)
		}
		if err := s.DeleteGroup(ctx, "web"); err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, "host_group_members"); n != 0 {
			t.Fatalf("%d memberships after deleting the group, want 0", n)
		}
		if err := s.DeleteGroup(ctx, "web"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("DeleteGroup twice: %v, want ErrNotFound", err)
		}
	})
}

func testUsers(t *testing.T, backend Backend) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := backend.NewStore(t, db)
		users := []store.User{{Name: "sb"}, {Name: "bb"}, {Name: "sb"}}
		if err := s.CreateUsers(ctx, users); err != nil {
			t.Fatal(err)
		}
		if users[0].ID != 1 || users[1].ID != 2 || users[2].ID != 3 {
			t.Fatalf("ids %d, %d, %d; want 1, 2, 3", users[0].ID, users[1].ID, users[2].ID)
		}
		got, err := s.UsersNamed(ctx, "sb")
		if want := []store.User{users[0], users[2]}; err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("UsersNamed(sb) = %v, %v; want %v", got, err, want)
		}
		if got, err := s.UsersNamed(ctx, "nobody"); err != nil || got == nil || len(got) != 0 {
			t.Fatalf("UsersNamed(nobody) = %v, %v; want an empty non-nil slice", got, err)
		}
	})
}

func testParentsWithChildrenStatementsBounded(t *testing.T, backend Backend) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := backend.NewStore(t, db)
		const parents = 100
		for i := range parents {
			p := store.Parent{Name: fmt.Sprintf("p%d", i)}
			for j := range i % 4 { // 0 to 3 children: parents without any too
				p.Children = append(p.Children, store.Child{Name: fmt.Sprintf("c%d.%d", i, j)})
			}
			if err := s.CreateParent(ctx, &p); err != nil {
				t.Fatal(err)
			}
			for _, c := range p.Children {
				if c.ParentID != p.ID || c.ID == 0 {
					t.Fatalf("child %+v of parent %d", c, p.ID)
				}
			}
		}
		var got []store.Parent
		var err error
		if n := statements(db, func() { got, err = s.ParentsWithChildren(ctx) }); n != backend.PreloadStatements {
			t.Errorf("ParentsWithChildren(%d parents) ran %d statements, want %d", parents, n, backend.PreloadStatements)
		}
		if err != nil || len(got) != parents {
			t.Fatalf("%d parents, %v", len(got), err)
		}
		for i, p := range got {
			if p.Name != fmt.Sprintf("p%d", i) || len(p.Children) != i%4 || p.Children == nil {
				t.Fatalf("parent %d = %+v", i, p)
			}
			for j, c := range p.Children {
				if c.Name != fmt.Sprintf("c%d.%d", i, j) || c.ParentID != p.ID {
					t.Fatalf("parent %d child %d = %+v", i, j, c)
				}
			}
		}
		// Deleting a parent deletes its children.
		if _, err := db.SQL.Exec(fmt.Sprintf("DELETE FROM parent WHERE id = %d", got[3].ID)); err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, "child"); n != 147 { // 150 children (25 x 0+1+2+3), minus p3's 3
			t.Fatalf("%d children after deleting a parent of 3, want 147", n)
		}
	})
}

func testWithTx(t *testing.T, backend Backend) {
	ctx := context.Background()
	boom := errors.New("boom")
	tests := []struct {
		name      string
		fn        func(tx store.Ops) error
		wantErr   error
		wantPanic bool
		hosts     int
	}{
		{"commit", func(tx store.Ops) error {
			return tx.CreateHost(ctx, &store.Host{Hostname: "t", IPAddr: "10.9.0.1"})
		}, nil, false, 2},
		{"error rolls back", func(tx store.Ops) error {
			if err := tx.CreateHost(ctx, &store.Host{Hostname: "t", IPAddr: "10.9.0.1"}); err != nil {
				return err
			}
			return boom
		}, boom, false, 1},
		{"failed statement rolls back the earlier ones", func(tx store.Ops) error {
			if err := tx.CreateHost(ctx, &store.Host{Hostname: "t", IPAddr: "10.9.0.1"}); err != nil {
				return err
			}
			return tx.CreateHost(ctx, &store.Host{Hostname: "a", IPAddr: "10.9.0.2"})
		}, store.ErrDuplicate, false, 1},
		{"panic rolls back and goes on", func(tx store.Ops) error {
			if err := tx.CreateHost(ctx, &store.Host{Hostname: "t", IPAddr: "10.9.0.1"}); err != nil {
				return err
			}
			panic(boom)
		}, nil, true, 1},
		{"multi-statement op joins the transaction", func(tx store.Ops) error {
			if err := tx.CreateParent(ctx, &store.Parent{Name: "p", Children: []store.Child{{Name: "c"}}}); err != nil {
				return err
			}
			return boom
		}, boom, false, 1},
		{"bulk over several batches joins the transaction", func(tx store.Ops) error {
			hosts := make([]store.Host, 1500)
			for i := range hosts {
				hosts[i] = store.Host{Hostname: fmt.Sprintf("b%04d", i), IPAddr: fmt.Sprintf("10.3.%d.%d", i/256, i%256)}
			}
			if err := tx.CreateHosts(ctx, hosts); err != nil {
				return err
			}
			return boom
		}, boom, false, 1},
	}
	eachDialect(t, func(t *testing.T, db *store.DB) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := backend.NewStore(t, db)
				mustHost(t, s, "a", "10.0.0.1", 0)
				var err error
				panicked := func() (p bool) {
					defer func() {
						if r := recover(); r != nil {
							p = r == boom
						}
					}()
					err = s.WithTx(ctx, tt.fn)
					return false
				}()
				if panicked != tt.wantPanic {
					t.Fatalf("panicked = %v, want %v", panicked, tt.wantPanic)
				}
				if !tt.wantPanic && (tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if n := count(t, db, "hosts"); n != tt.hosts {
					t.Fatalf("%d hosts after the transaction, want %d", n, tt.hosts)
				}
				if n := count(t, db, "parent"); n != 0 {
					t.Fatalf("%d parents after a rolled-back transaction", n)
				}
			})
		}
	})
}

// Run runs every test of the package on b, each in its own subtest.
func Run(t *testing.T, b Backend) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Backend)
	}{
		{"OpenRejects", testOpenRejects},
		{"CreateAndFindHost", testCreateAndFindHost},
		{"Duplicates", testDuplicates},
		{"InvalidInputRunsNoSQL", testInvalidInputRunsNoSQL},
		{"EmptyListsRunNoSQL", testEmptyListsRunNoSQL},
		{"BulkIDsMatchRows", testBulkIDsMatchRows},
		{"HostsPage", testHostsPage},
		{"Labels", testLabels},
		{"UpdateAndDelete", testUpdateAndDelete},
		{"Membership", testMembership},
		{"Users", testUsers},
		{"ParentsWithChildrenStatementsBounded", testParentsWithChildrenStatementsBounded},
		{"WithTx", testWithTx},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, b) })
	}
}
