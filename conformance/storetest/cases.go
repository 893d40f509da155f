package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/twistbench/twistbench/conformance"
	"github.com/twistbench/twistbench/impls/store"
)

// errClass names the contract class of err for answers: what every cell
// must agree on, whatever the driver's message.
func errClass(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, store.ErrDuplicate):
		return "duplicate"
	case errors.Is(err, store.ErrNotFound):
		return "not-found"
	case errors.Is(err, store.ErrInvalid):
		return "invalid"
	case errors.Is(err, context.Canceled):
		return "canceled"
	default:
		return "other"
	}
}

// errRollback is what the rollback cases return from their transaction.
var errRollback = errors.New("storetest: deliberate rollback")

// maxPreloadStatements bounds ParentsWithChildren: one query for parents,
// one for children, and one spare for a layer that counts first.
const maxPreloadStatements = 3

// maxJoinStatements bounds HostsInGroup: find the group (to tell a missing
// group from an empty one), the join, and one spare.
const maxJoinStatements = 3

// fold reports whether dialect compares hostnames case-insensitively: the
// project's stated per-dialect result (impls/store/schema documents it).
// MySQL and MariaDB use the server's default utf8mb4 collation, which is
// case-insensitive; PostgreSQL and SQLite compare bytes.
func fold(d store.Dialect) bool { return d == store.MySQL }

// info is a short constructor for the case table.
func info(id, category string, level conformance.Level, statement string) conformance.Info {
	return conformance.Info{ID: id, Category: category, Level: level, Statement: statement}
}

// cases is the suite, in running order. IDs are stable: never renumber one,
// add new ones at the end of their category.
var cases = []testCase{
	// The suite's own premise.
	{info("ST-COUNT-001", "premise", conformance.Must,
		"the DB's statement counter moves when the store runs SQL (the no-SQL and N+1 cases rely on it)"),
		func(e *env) {
			before := e.statements()
			e.host(e.s, "alpha", "10.0.0.1", 22)
			_, err := e.s.HostByName(e.ctx, "alpha")
			e.must("HostByName", err)
			if e.statements() <= before {
				e.t.Fatalf("statement counter did not move across CreateHost and HostByName; open the DB through sqlconn's counting driver")
			}
			e.answer("counted", true)
		}},

	// Hosts: create and find.
	{info("ST-HOST-001", "hosts", conformance.Must,
		"CreateHost sets an ID, Port 0 becomes 22, and HostByName returns the row as written"),
		func(e *env) {
			a := e.host(e.s, "alpha", "10.0.0.1", 0)
			b := e.host(e.s, "bravo", "10.0.0.2", 2222)
			if a.Port != store.DefaultPort {
				e.t.Errorf("CreateHost with Port 0: h.Port = %d after the call, want %d", a.Port, store.DefaultPort)
			}
			if a.ID == b.ID {
				e.t.Errorf("two hosts got the same ID %d", a.ID)
			}
			var got []store.Host
			for _, want := range []store.Host{a, b} {
				h, err := e.s.HostByName(e.ctx, want.Hostname)
				e.must("HostByName", err)
				if h != want {
					e.t.Errorf("HostByName(%q) = %+v, want %+v", want.Hostname, h, want)
				}
				got = append(got, h)
			}
			e.answer("hosts", hostViews(got))
		}},
	{info("ST-HOST-002", "hosts", conformance.Must,
		"CreateHost with an existing hostname returns ErrDuplicate and writes nothing"),
		func(e *env) {
			e.host(e.s, "alpha", "10.0.0.1", 22)
			h := store.Host{Hostname: "alpha", IPAddr: "10.0.0.2", Port: 22}
			e.answer("err", e.wantErr("CreateHost(duplicate hostname)", e.s.CreateHost(e.ctx, &h), store.ErrDuplicate))
			e.answer("hosts", hostViews(e.all()))
			e.sameInt("rows in hosts", e.tableRows("hosts"), 1)
		}},
	{info("ST-HOST-003", "hosts", conformance.Must,
		"CreateHost with an existing ip_addr returns ErrDuplicate and writes nothing"),
		func(e *env) {
			e.host(e.s, "alpha", "10.0.0.1", 22)
			h := store.Host{Hostname: "bravo", IPAddr: "10.0.0.1", Port: 22}
			e.answer("err", e.wantErr("CreateHost(duplicate ip_addr)", e.s.CreateHost(e.ctx, &h), store.ErrDuplicate))
			_, err := e.s.HostByName(e.ctx, "bravo")
			e.answer("bravo", e.wantErr("HostByName(bravo)", err, store.ErrNotFound))
			e.sameInt("rows in hosts", e.tableRows("hosts"), 1)
		}},
	{info("ST-HOST-004", "hosts", conformance.Must,
		"HostByName of a hostname that does not exist returns ErrNotFound"),
		func(e *env) {
			e.host(e.s, "alpha", "10.0.0.1", 22)
			_, err := e.s.HostByName(e.ctx, "bravo")
			e.answer("err", e.wantErr("HostByName(absent)", err, store.ErrNotFound))
		}},
	{info("ST-HOST-005", "hosts", conformance.Must,
		"a 64-character hostname of multi-byte characters (4-byte UTF-8 included) round-trips unchanged"),
		func(e *env) {
			name := strings.Repeat("ü", 59) + "日本🙂é" + "x" // 64 characters, 129 bytes
			if n := len([]rune(name)); n != store.MaxHostname {
				e.t.Fatalf("suite bug: test hostname has %d characters", n)
			}
			e.host(e.s, name, "10.0.0.1", 22)
			h, err := e.s.HostByName(e.ctx, name)
			e.must("HostByName(unicode)", err)
			if h.Hostname != name {
				e.t.Errorf("hostname came back as %q, want %q", h.Hostname, name)
			}
			hs, err := e.s.HostsByNames(e.ctx, []string{name})
			e.must("HostsByNames(unicode)", err)
			e.sameStrings("HostsByNames(unicode)", hostnames(hs), []string{name})
			e.answer("hostname", h.Hostname)
		}},
	{info("ST-HOST-006", "validation", conformance.Must,
		"a 65-character hostname returns ErrInvalid before any SQL runs"),
		func(e *env) {
			h := store.Host{Hostname: strings.Repeat("a", store.MaxHostname+1), IPAddr: "10.0.0.1"}
			err := e.noSQL("CreateHost(65 characters)", func() error { return e.s.CreateHost(e.ctx, &h) })
			e.answer("err", e.wantErr("CreateHost(65 characters)", err, store.ErrInvalid))
			e.sameInt("rows in hosts", e.tableRows("hosts"), 0)
		}},
	{info("ST-HOST-007", "validation", conformance.Must,
		"an empty hostname or ip_addr returns ErrInvalid before any SQL runs"),
		func(e *env) {
			for _, h := range []store.Host{{Hostname: "", IPAddr: "10.0.0.1"}, {Hostname: "alpha", IPAddr: ""}} {
				what := fmt.Sprintf("CreateHost(%+v)", h)
				err := e.noSQL(what, func() error { return e.s.CreateHost(e.ctx, &h) })
				e.answer(what, e.wantErr(what, err, store.ErrInvalid))
			}
			e.sameInt("rows in hosts", e.tableRows("hosts"), 0)
		}},
	{info("ST-HOST-010", "validation", conformance.Must,
		"a hostname, ip_addr or group name with leading or trailing white space returns ErrInvalid before any SQL runs (MariaDB would otherwise take \"web1 \" for \"web1\")"),
		func(e *env) {
			for _, h := range []store.Host{{Hostname: "web1 ", IPAddr: "10.0.0.1"}, {Hostname: " web1", IPAddr: "10.0.0.1"}, {Hostname: "web1", IPAddr: "10.0.0.1\t"}} {
				what := fmt.Sprintf("CreateHost(%q, %q)", h.Hostname, h.IPAddr)
				err := e.noSQL(what, func() error { return e.s.CreateHost(e.ctx, &h) })
				e.answer(what, e.wantErr(what, err, store.ErrInvalid))
			}
			g := store.HostGroup{Name: "web "}
			err := e.noSQL("CreateGroup(\"web \")", func() error { return e.s.CreateGroup(e.ctx, &g) })
			e.answer("CreateGroup", e.wantErr("CreateGroup(\"web \")", err, store.ErrInvalid))
			e.sameInt("rows in hosts", e.tableRows("hosts"), 0)
		}},
	{info("ST-HOST-008", "validation", conformance.Must,
		"a port outside 0-65535 returns ErrInvalid before any SQL runs; 0 (meaning 22) and 65535 are accepted"),
		func(e *env) {
			for i, port := range []int{-1, 65536, 1 << 20} {
				h := store.Host{Hostname: fmt.Sprintf("bad%d", i), IPAddr: fmt.Sprintf("10.0.1.%d", i), Port: port}
				what := fmt.Sprintf("CreateHost(port %d)", port)
				err := e.noSQL(what, func() error { return e.s.CreateHost(e.ctx, &h) })
				e.answer(what, e.wantErr(what, err, store.ErrInvalid))
			}
			e.host(e.s, "alpha", "10.0.0.1", 0)
			e.host(e.s, "bravo", "10.0.0.2", 65535)
			e.answer("hosts", hostViews(e.all()))
		}},
	{info("ST-HOST-009", "dialect", conformance.Must,
		`hostnames differing only in case: on MySQL/MariaDB (case-insensitive default collation) "WEB1" duplicates "web1" and HostByName("WEB1") finds "web1"; on PostgreSQL and SQLite they are two hosts`),
		func(e *env) {
			e.host(e.s, "web1", "10.0.0.1", 22)
			upper := store.Host{Hostname: "WEB1", IPAddr: "10.0.0.2", Port: 22}
			err := e.s.CreateHost(e.ctx, &upper)
			found, ferr := e.s.HostByName(e.ctx, "WEB1")
			e.must("HostByName(WEB1)", ferr)
			if fold(e.db.Dialect) {
				e.t.Logf("%s folds case: WEB1 is a duplicate of web1", e.db.Dialect)
				e.wantErr("CreateHost(WEB1) after web1", err, store.ErrDuplicate)
				if found.Hostname != "web1" {
					e.t.Errorf("HostByName(WEB1) found %q, want web1", found.Hostname)
				}
				e.sameInt("rows in hosts", e.tableRows("hosts"), 1)
			} else {
				e.t.Logf("%s compares bytes: WEB1 and web1 are two hosts", e.db.Dialect)
				e.wantErr("CreateHost(WEB1) after web1", err, nil)
				if found.Hostname != "WEB1" {
					e.t.Errorf("HostByName(WEB1) found %q, want WEB1", found.Hostname)
				}
				e.sameInt("rows in hosts", e.tableRows("hosts"), 2)
			}
			// The answer is relative to the dialect's stated rule, so that
			// every cell gives the same answer when it follows its rule.
			e.answer("follows the dialect's stated rule", !e.t.Failed())
		}},

	// Bulk inserts.
	{info("ST-BULK-001", "bulk", conformance.Must,
		"CreateHosts inserts every host and sets each ID to the row that holds its hostname"),
		func(e *env) {
			hs := make([]store.Host, 25)
			for i := range hs {
				hs[i] = store.Host{Hostname: fmt.Sprintf("host%03d", i), IPAddr: fmt.Sprintf("10.0.0.%d", i), Port: i % 3 * 1000}
			}
			e.must("CreateHosts", e.s.CreateHosts(e.ctx, hs))
			seen := map[int64]bool{}
			for _, h := range hs {
				if h.ID == 0 || seen[h.ID] {
					e.t.Errorf("CreateHosts set ID %d on %s (zero or repeated)", h.ID, h.Hostname)
				}
				seen[h.ID] = true
				got, err := e.s.HostByName(e.ctx, h.Hostname)
				e.must("HostByName", err)
				if got.ID != h.ID {
					e.t.Errorf("%s: CreateHosts set ID %d, the row has %d", h.Hostname, h.ID, got.ID)
				}
				if h.Port == 0 && got.Port != store.DefaultPort {
					e.t.Errorf("%s: Port 0 stored as %d, want %d", h.Hostname, got.Port, store.DefaultPort)
				}
			}
			e.answer("hosts", hostViews(e.all()))
		}},
	{info("ST-BULK-002", "bulk", conformance.Must,
		"CreateHosts with one host duplicating an existing row returns ErrDuplicate and writes none of them"),
		func(e *env) {
			e.host(e.s, "mike", "10.0.0.99", 22)
			hs := make([]store.Host, 10)
			for i := range hs {
				hs[i] = store.Host{Hostname: fmt.Sprintf("host%02d", i), IPAddr: fmt.Sprintf("10.0.0.%d", i)}
			}
			hs[7].Hostname = "mike" // the duplicate comes after valid rows
			e.answer("err", e.wantErr("CreateHosts(one duplicate)", e.s.CreateHosts(e.ctx, hs), store.ErrDuplicate))
			e.answer("hosts", hostViews(e.all()))
			e.sameInt("rows in hosts", e.tableRows("hosts"), 1)
		}},
	{info("ST-BULK-003", "bulk", conformance.Must,
		"CreateHosts whose input repeats a hostname returns ErrDuplicate and writes none of them"),
		func(e *env) {
			hs := []store.Host{
				{Hostname: "alpha", IPAddr: "10.0.0.1"},
				{Hostname: "bravo", IPAddr: "10.0.0.2"},
				{Hostname: "alpha", IPAddr: "10.0.0.3"},
			}
			e.answer("err", e.wantErr("CreateHosts(repeated hostname)", e.s.CreateHosts(e.ctx, hs), store.ErrDuplicate))
			e.sameInt("rows in hosts", e.tableRows("hosts"), 0)
		}},
	{info("ST-BULK-004", "validation", conformance.Must,
		"CreateHosts with one invalid host returns ErrInvalid before any SQL runs and writes none"),
		func(e *env) {
			hs := []store.Host{
				{Hostname: "alpha", IPAddr: "10.0.0.1"},
				{Hostname: "bravo", IPAddr: "10.0.0.2", Port: 70000},
			}
			err := e.noSQL("CreateHosts(bad port)", func() error { return e.s.CreateHosts(e.ctx, hs) })
			e.answer("err", e.wantErr("CreateHosts(bad port)", err, store.ErrInvalid))
			e.sameInt("rows in hosts", e.tableRows("hosts"), 0)
		}},
	{info("ST-BULK-005", "bulk", conformance.Should,
		"CreateHosts of an empty list succeeds and writes nothing"),
		func(e *env) {
			e.answer("err", e.wantErr("CreateHosts(nil)", e.s.CreateHosts(e.ctx, nil), nil))
			e.answer("err-empty", e.wantErr("CreateHosts([])", e.s.CreateHosts(e.ctx, []store.Host{}), nil))
			e.sameInt("rows in hosts", e.tableRows("hosts"), 0)
		}},
	{info("ST-BULK-006", "bulk", conformance.Must,
		"CreateHosts of 1500 hosts (4500 bind parameters, past SQLite's limit of 999 before 3.32) writes them all"),
		func(e *env) {
			hs := make([]store.Host, 1500)
			for i := range hs {
				hs[i] = store.Host{Hostname: fmt.Sprintf("bulk%05d", i), IPAddr: fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255), Port: 22}
			}
			e.must("CreateHosts(1500)", e.s.CreateHosts(e.ctx, hs))
			e.sameInt("rows in hosts", e.tableRows("hosts"), int64(len(hs)))
			last, err := e.s.HostByName(e.ctx, hs[len(hs)-1].Hostname)
			e.must("HostByName(last)", err)
			if last.ID != hs[len(hs)-1].ID {
				e.t.Errorf("last host: CreateHosts set ID %d, the row has %d", hs[len(hs)-1].ID, last.ID)
			}
			e.answer("rows", e.tableRows("hosts"))
		}},
	{info("ST-BULK-007", "bulk", conformance.Must,
		"CreateHosts of 1500 hosts whose last one duplicates an existing row writes none of them, however the back-end batches"),
		func(e *env) {
			e.host(e.s, "mike", "192.168.0.1", 22)
			hs := make([]store.Host, 1500)
			for i := range hs {
				hs[i] = store.Host{Hostname: fmt.Sprintf("bulk%05d", i), IPAddr: fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255)}
			}
			hs[len(hs)-1].Hostname = "mike"
			e.answer("err", e.wantErr("CreateHosts(1500, last a duplicate)", e.s.CreateHosts(e.ctx, hs), store.ErrDuplicate))
			e.sameInt("rows in hosts", e.tableRows("hosts"), 1)
		}},

	// IN lists, pages, projections.
	{info("ST-IN-001", "queries", conformance.Must,
		"HostsByNames returns the hosts whose hostname is in the list, ordered by hostname, ignoring absent names"),
		func(e *env) {
			for i, n := range []string{"delta", "alpha", "charlie", "bravo"} {
				e.host(e.s, n, fmt.Sprintf("10.0.0.%d", i), 22)
			}
			hs, err := e.s.HostsByNames(e.ctx, []string{"charlie", "zulu", "alpha", "delta"})
			e.must("HostsByNames", err)
			e.sameStrings("HostsByNames", hostnames(hs), []string{"alpha", "charlie", "delta"})
			e.answer("hosts", hostViews(hs))
		}},
	{info("ST-IN-002", "queries", conformance.Must,
		"HostsByNames of an empty (or nil) list returns no hosts and no error"),
		func(e *env) {
			e.host(e.s, "alpha", "10.0.0.1", 22)
			for _, names := range [][]string{nil, {}} {
				hs, err := e.s.HostsByNames(e.ctx, names)
				e.wantErr(fmt.Sprintf("HostsByNames(%#v)", names), err, nil)
				if len(hs) != 0 {
					e.t.Errorf("HostsByNames(%#v) = %v, want nothing", names, hs)
				}
				e.answer(fmt.Sprintf("%#v", names), len(hs))
			}
		}},
	{info("ST-IN-003", "queries", conformance.Must,
		"HostsByNames of 1500 names (past SQLite's limit of 999 bind parameters before 3.32) returns every match"),
		func(e *env) {
			hs := make([]store.Host, 1200)
			names := make([]string, 0, 1500)
			for i := range hs {
				hs[i] = store.Host{Hostname: fmt.Sprintf("in%05d", i), IPAddr: fmt.Sprintf("10.0.%d.%d", i>>8, i&255)}
				names = append(names, hs[i].Hostname)
			}
			for i := len(hs); len(names) < cap(names); i++ {
				names = append(names, fmt.Sprintf("in%05d", i)) // absent
			}
			e.must("CreateHosts", e.s.CreateHosts(e.ctx, hs))
			got, err := e.s.HostsByNames(e.ctx, names)
			e.must("HostsByNames(1500 names)", err)
			e.sameStrings("HostsByNames(1500 names)", hostnames(got), names[:len(hs)])
			e.answer("found", len(got))
		}},
	{info("ST-PAGE-001", "queries", conformance.Must,
		"HostsPage(offset, limit) returns hosts ordered by id like order_by(id)[offset:offset+limit], short at the end"),
		func(e *env) {
			for i, n := range []string{"echo", "alpha", "delta", "bravo", "charlie"} {
				e.host(e.s, n, fmt.Sprintf("10.0.0.%d", i), 22)
			}
			pages := []struct{ offset, limit int }{{1, 2}, {0, 10}, {4, 10}, {0, 1}}
			want := [][]string{{"alpha", "delta"}, {"echo", "alpha", "delta", "bravo", "charlie"}, {"charlie"}, {"echo"}}
			for i, p := range pages {
				hs, err := e.s.HostsPage(e.ctx, p.offset, p.limit)
				e.must("HostsPage", err)
				e.sameStrings(fmt.Sprintf("HostsPage(%d, %d)", p.offset, p.limit), hostnames(hs), want[i])
				e.answer(fmt.Sprintf("%d:%d", p.offset, p.limit), hostnames(hs))
			}
		}},
	{info("ST-PAGE-002", "queries", conformance.Must,
		"HostsPage with an offset at or past the end, or a limit of 0, returns an empty page and no error"),
		func(e *env) {
			for i, n := range []string{"alpha", "bravo", "charlie"} {
				e.host(e.s, n, fmt.Sprintf("10.0.0.%d", i), 22)
			}
			for _, p := range []struct{ offset, limit int }{{3, 10}, {100, 1}, {0, 0}, {2, 0}} {
				hs, err := e.s.HostsPage(e.ctx, p.offset, p.limit)
				what := fmt.Sprintf("HostsPage(%d, %d)", p.offset, p.limit)
				e.wantErr(what, err, nil)
				if len(hs) != 0 {
					e.t.Errorf("%s = %v, want an empty page", what, hostnames(hs))
				}
				e.answer(what, len(hs))
			}
		}},
	{info("ST-PAGE-003", "validation", conformance.Should,
		"HostsPage with a negative offset or limit returns ErrInvalid before any SQL runs"),
		func(e *env) {
			for _, p := range []struct{ offset, limit int }{{-1, 10}, {0, -1}} {
				what := fmt.Sprintf("HostsPage(%d, %d)", p.offset, p.limit)
				err := e.noSQL(what, func() error { _, err := e.s.HostsPage(e.ctx, p.offset, p.limit); return err })
				e.answer(what, e.wantErr(what, err, store.ErrInvalid))
			}
		}},
	{info("ST-LABEL-001", "queries", conformance.Must,
		"HostLabels returns (hostname AS name, ip_addr AS addr) of every host, ordered by id"),
		func(e *env) {
			e.host(e.s, "charlie", "10.0.0.3", 22)
			e.host(e.s, "alpha", "10.0.0.1", 22)
			e.host(e.s, "bravo", "10.0.0.2", 22)
			ls, err := e.s.HostLabels(e.ctx)
			e.must("HostLabels", err)
			want := []store.HostLabel{{Name: "charlie", Addr: "10.0.0.3"}, {Name: "alpha", Addr: "10.0.0.1"}, {Name: "bravo", Addr: "10.0.0.2"}}
			if fmt.Sprint(ls) != fmt.Sprint(want) {
				e.t.Errorf("HostLabels = %v, want %v", ls, want)
			}
			e.answer("labels", ls)
		}},

	// Update and delete by filter.
	{info("ST-UPD-001", "update", conformance.Must,
		"UpdateHostPort sets the port of the hosts the filter selects (hostnames AND ports) and returns how many"),
		func(e *env) {
			e.host(e.s, "alpha", "10.0.0.1", 22)
			e.host(e.s, "bravo", "10.0.0.2", 8022)
			e.host(e.s, "charlie", "10.0.0.3", 8022)
			n, err := e.s.UpdateHostPort(e.ctx, store.HostFilter{Hostnames: []string{"alpha", "bravo"}, Ports: []int{8022}}, 9022)
			e.must("UpdateHostPort", err)
			e.sameInt("rows affected", n, 1)
			n2, err := e.s.UpdateHostPort(e.ctx, store.HostFilter{Ports: []int{22, 8022}}, 2222)
			e.must("UpdateHostPort(ports)", err)
			e.sameInt("rows affected (ports)", n2, 2)
			e.sameStrings("hosts after", hostViews(e.all()), []string{"alpha 10.0.0.1 2222", "bravo 10.0.0.2 9022", "charlie 10.0.0.3 2222"})
			e.answer("n", []int64{n, n2})
			e.answer("hosts", hostViews(e.all()))
		}},
	{info("ST-UPD-002", "update", conformance.Must,
		"UpdateHostPort to the value a row already has counts that row: rows matched, not rows changed, on every dialect"),
		func(e *env) {
			e.host(e.s, "alpha", "10.0.0.1", 22)
			e.host(e.s, "bravo", "10.0.0.2", 22)
			e.host(e.s, "charlie", "10.0.0.3", 2222)
			n, err := e.s.UpdateHostPort(e.ctx, store.HostFilter{Hostnames: []string{"alpha", "bravo", "charlie"}}, 22)
			e.must("UpdateHostPort", err)
			e.sameInt("rows matched (two already 22)", n, 3)
			n2, err := e.s.UpdateHostPort(e.ctx, store.HostFilter{Hostnames: []string{"alpha"}}, 22)
			e.must("UpdateHostPort(same again)", err)
			e.sameInt("rows matched (nothing changes)", n2, 1)
			e.answer("n", []int64{n, n2})
		}},
	{info("ST-UPD-003", "update", conformance.Must,
		"UpdateHostPort and DeleteHosts with a filter that matches nothing return 0 and no error"),
		func(e *env) {
			e.host(e.s, "alpha", "10.0.0.1", 22)
			n, err := e.s.UpdateHostPort(e.ctx, store.HostFilter{Hostnames: []string{"zulu"}}, 80)
			e.wantErr("UpdateHostPort(no match)", err, nil)
			e.sameInt("updated", n, 0)
			d, err := e.s.DeleteHosts(e.ctx, store.HostFilter{Ports: []int{65535}})
			e.wantErr("DeleteHosts(no match)", err, nil)
			e.sameInt("deleted", d, 0)
			e.answer("n", []int64{n, d})
		}},
	{info("ST-UPD-004", "validation", conformance.Must,
		"UpdateHostPort and DeleteHosts with an empty filter, or a port outside 0-65535, return ErrInvalid before any SQL runs and touch nothing"),
		func(e *env) {
			e.host(e.s, "alpha", "10.0.0.1", 22)
			calls := []struct {
				what string
				f    func() error
			}{
				{"UpdateHostPort(empty filter)", func() error {
					_, err := e.s.UpdateHostPort(e.ctx, store.HostFilter{}, 80)
					return err
				}},
				{"UpdateHostPort(port 65536)", func() error {
					_, err := e.s.UpdateHostPort(e.ctx, store.HostFilter{Hostnames: []string{"alpha"}}, 65536)
					return err
				}},
				{"UpdateHostPort(filter port -1)", func() error {
					_, err := e.s.UpdateHostPort(e.ctx, store.HostFilter{Ports: []int{-1}}, 80)
					return err
				}},
				{"DeleteHosts(empty filter)", func() error {
					_, err := e.s.DeleteHosts(e.ctx, store.HostFilter{Hostnames: []string{}})
					return err
				}},
			}
			for _, c := range calls {
				err := e.noSQL(c.what, c.f)
				e.answer(c.what, e.wantErr(c.what, err, store.ErrInvalid))
			}
			e.sameStrings("hosts after", hostViews(e.all()), []string{"alpha 10.0.0.1 22"})
		}},
	{info("ST-DEL-001", "delete", conformance.Must,
		"DeleteHosts deletes the hosts the filter selects, returns how many, and leaves the others"),
		func(e *env) {
			e.host(e.s, "alpha", "10.0.0.1", 22)
			e.host(e.s, "bravo", "10.0.0.2", 8022)
			e.host(e.s, "charlie", "10.0.0.3", 22)
			e.host(e.s, "delta", "10.0.0.4", 22)
			n, err := e.s.DeleteHosts(e.ctx, store.HostFilter{Ports: []int{22}, Hostnames: []string{"alpha", "bravo", "delta"}})
			e.must("DeleteHosts", err)
			e.sameInt("deleted", n, 2)
			e.sameStrings("left", hostnames(e.all()), []string{"bravo", "charlie"})
			e.answer("n", n)
			e.answer("left", hostViews(e.all()))
		}},

	// Groups and membership.
	{info("ST-GRP-001", "groups", conformance.Must,
		"CreateGroup sets an ID; a second group with the same name returns ErrDuplicate and writes nothing"),
		func(e *env) {
			g := e.group("web")
			dup := store.HostGroup{Name: "web"}
			e.answer("err", e.wantErr("CreateGroup(duplicate)", e.s.CreateGroup(e.ctx, &dup), store.ErrDuplicate))
			e.sameInt("rows in host_groups", e.tableRows("host_groups"), 1)
			counts, err := e.s.GroupHostCounts(e.ctx)
			e.must("GroupHostCounts", err)
			if len(counts) != 1 || counts[0].Group != g.Name {
				e.t.Errorf("GroupHostCounts = %v, want only %q", counts, g.Name)
			}
			e.answer("groups", counts)
		}},
	{info("ST-GRP-002", "groups", conformance.Must,
		"HostsInGroup returns the members of a group ordered by hostname; an empty group gives none, a missing group ErrNotFound"),
		func(e *env) {
			for i, n := range []string{"delta", "alpha", "charlie", "bravo"} {
				e.host(e.s, n, fmt.Sprintf("10.0.0.%d", i), 22)
			}
			e.group("web")
			e.group("db")
			e.group("empty")
			for _, m := range [][2]string{{"delta", "web"}, {"alpha", "web"}, {"bravo", "web"}, {"charlie", "db"}} {
				e.join(m[0], m[1])
			}
			web, err := e.s.HostsInGroup(e.ctx, "web")
			e.must("HostsInGroup(web)", err)
			e.sameStrings("HostsInGroup(web)", hostnames(web), []string{"alpha", "bravo", "delta"})
			empty, err := e.s.HostsInGroup(e.ctx, "empty")
			e.wantErr("HostsInGroup(empty)", err, nil)
			if len(empty) != 0 {
				e.t.Errorf("HostsInGroup(empty) = %v, want none", hostnames(empty))
			}
			_, err = e.s.HostsInGroup(e.ctx, "missing")
			e.answer("web", hostViews(web))
			e.answer("empty", len(empty))
			e.answer("missing", e.wantErr("HostsInGroup(missing)", err, store.ErrNotFound))
		}},
	{info("ST-GRP-003", "groups", conformance.Must,
		"AddHostToGroup returns ErrNotFound for a missing host or group and ErrDuplicate for an existing membership, writing nothing"),
		func(e *env) {
			e.host(e.s, "alpha", "10.0.0.1", 22)
			e.group("web")
			e.join("alpha", "web")
			e.answer("missing host", e.wantErr("AddHostToGroup(missing host)", e.s.AddHostToGroup(e.ctx, "zulu", "web"), store.ErrNotFound))
			e.answer("missing group", e.wantErr("AddHostToGroup(missing group)", e.s.AddHostToGroup(e.ctx, "alpha", "zulu"), store.ErrNotFound))
			e.answer("twice", e.wantErr("AddHostToGroup(twice)", e.s.AddHostToGroup(e.ctx, "alpha", "web"), store.ErrDuplicate))
			e.sameInt("rows in host_group_members", e.tableRows("host_group_members"), 1)
		}},
	{info("ST-GRP-004", "groups", conformance.Must,
		"GroupHostCounts returns every group ordered by name with its host count, groups without hosts at 0"),
		func(e *env) {
			for i, n := range []string{"alpha", "bravo", "charlie"} {
				e.host(e.s, n, fmt.Sprintf("10.0.0.%d", i), 22)
			}
			for _, g := range []string{"web", "db", "empty", "cache"} {
				e.group(g)
			}
			for _, m := range [][2]string{{"alpha", "web"}, {"bravo", "web"}, {"charlie", "web"}, {"alpha", "db"}, {"bravo", "cache"}} {
				e.join(m[0], m[1])
			}
			counts, err := e.s.GroupHostCounts(e.ctx)
			e.must("GroupHostCounts", err)
			want := []store.GroupCount{{Group: "cache", Hosts: 1}, {Group: "db", Hosts: 1}, {Group: "empty", Hosts: 0}, {Group: "web", Hosts: 3}}
			if fmt.Sprint(counts) != fmt.Sprint(want) {
				e.t.Errorf("GroupHostCounts = %v, want %v", counts, want)
			}
			e.answer("counts", counts)
		}},
	{info("ST-GRP-005", "groups", conformance.Must,
		"deleting a host removes its memberships (ON DELETE CASCADE) and keeps its groups, now counted without it"),
		func(e *env) {
			e.host(e.s, "alpha", "10.0.0.1", 22)
			e.host(e.s, "bravo", "10.0.0.2", 22)
			e.group("web")
			e.group("db")
			e.join("alpha", "web")
			e.join("bravo", "web")
			e.join("alpha", "db")
			n, err := e.s.DeleteHosts(e.ctx, store.HostFilter{Hostnames: []string{"alpha"}})
			e.must("DeleteHosts(alpha)", err)
			e.sameInt("deleted", n, 1)
			e.sameInt("rows in host_group_members", e.tableRows("host_group_members"), 1)
			web, err := e.s.HostsInGroup(e.ctx, "web")
			e.must("HostsInGroup(web)", err)
			e.sameStrings("HostsInGroup(web)", hostnames(web), []string{"bravo"})
			counts, err := e.s.GroupHostCounts(e.ctx)
			e.must("GroupHostCounts", err)
			want := []store.GroupCount{{Group: "db", Hosts: 0}, {Group: "web", Hosts: 1}}
			if fmt.Sprint(counts) != fmt.Sprint(want) {
				e.t.Errorf("GroupHostCounts = %v, want %v", counts, want)
			}
			e.answer("counts", counts)
		}},
	{info("ST-GRP-006", "groups", conformance.Must,
		"DeleteGroup removes the group and its memberships and keeps the hosts; a missing group gives ErrNotFound"),
		func(e *env) {
			e.host(e.s, "alpha", "10.0.0.1", 22)
			e.host(e.s, "bravo", "10.0.0.2", 22)
			e.group("web")
			e.group("db")
			e.join("alpha", "web")
			e.join("bravo", "web")
			e.join("bravo", "db")
			e.must("DeleteGroup(web)", e.s.DeleteGroup(e.ctx, "web"))
			e.sameInt("rows in host_group_members", e.tableRows("host_group_members"), 1)
			e.sameStrings("hosts", hostnames(e.all()), []string{"alpha", "bravo"})
			_, err := e.s.HostsInGroup(e.ctx, "web")
			e.answer("deleted group", e.wantErr("HostsInGroup(deleted group)", err, store.ErrNotFound))
			e.answer("again", e.wantErr("DeleteGroup(web) again", e.s.DeleteGroup(e.ctx, "web"), store.ErrNotFound))
			counts, err := e.s.GroupHostCounts(e.ctx)
			e.must("GroupHostCounts", err)
			e.answer("counts", counts)
		}},
	{info("ST-GRP-007", "groups", conformance.Must,
		"HostsInGroup of a group of 60 hosts takes at most 3 statements"),
		func(e *env) {
			hs := make([]store.Host, 60)
			for i := range hs {
				hs[i] = store.Host{Hostname: fmt.Sprintf("host%02d", i), IPAddr: fmt.Sprintf("10.0.0.%d", i)}
			}
			e.must("CreateHosts", e.s.CreateHosts(e.ctx, hs))
			e.group("web")
			for _, h := range hs {
				e.join(h.Hostname, "web")
			}
			before := e.statements()
			got, err := e.s.HostsInGroup(e.ctx, "web")
			n := e.statements() - before
			e.must("HostsInGroup", err)
			if len(got) != len(hs) {
				e.t.Errorf("HostsInGroup returned %d hosts, want %d", len(got), len(hs))
			}
			switch {
			case n == 0:
				e.t.Errorf("HostsInGroup ran 0 counted statements: the DB's counter does not count this back-end's queries")
			case n > maxJoinStatements:
				e.t.Errorf("HostsInGroup of %d hosts took %d statements, want at most %d", len(hs), n, maxJoinStatements)
			}
			e.t.Logf("HostsInGroup: %d statement(s)", n)
			e.answer("hosts", len(got))
		}},

	// Users: names repeat.
	{info("ST-USER-001", "users", conformance.Must,
		"CreateUsers inserts users whose names repeat, setting each ID; UsersNamed returns those of a name ordered by id, none for an absent name"),
		func(e *env) {
			us := []store.User{{Name: "sb"}, {Name: "bb"}, {Name: "sb"}}
			e.must("CreateUsers", e.s.CreateUsers(e.ctx, us))
			if us[0].ID == 0 || us[0].ID == us[2].ID {
				e.t.Errorf("CreateUsers set IDs %d, %d, %d", us[0].ID, us[1].ID, us[2].ID)
			}
			got, err := e.s.UsersNamed(e.ctx, "sb")
			e.must("UsersNamed(sb)", err)
			if len(got) != 2 || got[0] != us[0] || got[1] != us[2] {
				e.t.Errorf("UsersNamed(sb) = %v, want %v", got, []store.User{us[0], us[2]})
			}
			none, err := e.s.UsersNamed(e.ctx, "zz")
			e.wantErr("UsersNamed(absent)", err, nil)
			if len(none) != 0 {
				e.t.Errorf("UsersNamed(absent) = %v, want none", none)
			}
			e.answer("sb", len(got))
			e.answer("zz", len(none))
		}},
	{info("ST-USER-002", "validation", conformance.Must,
		"CreateUsers, CreateGroup and CreateParent reject empty or over-long names with ErrInvalid before any SQL runs"),
		func(e *env) {
			calls := []struct {
				what string
				f    func() error
			}{
				{"CreateUsers(51 characters)", func() error {
					return e.s.CreateUsers(e.ctx, []store.User{{Name: "ok"}, {Name: strings.Repeat("u", store.MaxUserName+1)}})
				}},
				{"CreateGroup(empty)", func() error { return e.s.CreateGroup(e.ctx, &store.HostGroup{}) }},
				{"CreateGroup(65 characters)", func() error {
					return e.s.CreateGroup(e.ctx, &store.HostGroup{Name: strings.Repeat("g", store.MaxGroupName+1)})
				}},
				{"CreateParent(empty child name)", func() error {
					return e.s.CreateParent(e.ctx, &store.Parent{Name: "p", Children: []store.Child{{Name: "c"}, {}}})
				}},
			}
			for _, c := range calls {
				err := e.noSQL(c.what, c.f)
				e.answer(c.what, e.wantErr(c.what, err, store.ErrInvalid))
			}
			for _, table := range []string{"users", "host_groups", "parent", "child"} {
				e.sameInt("rows in "+table, e.tableRows(table), 0)
			}
		}},

	// Parent and children.
	{info("ST-PAR-001", "preload", conformance.Must,
		"CreateParent sets every ID and ParentID; ParentsWithChildren returns parents by id, each with its children by id (none for a childless parent)"),
		func(e *env) {
			p1 := store.Parent{Name: "p1", Children: []store.Child{{Name: "c1"}, {Name: "c2"}, {Name: "c3"}}}
			p2 := store.Parent{Name: "p2"}
			p3 := store.Parent{Name: "p3", Children: []store.Child{{Name: "c4"}}}
			for _, p := range []*store.Parent{&p1, &p2, &p3} {
				e.must("CreateParent", e.s.CreateParent(e.ctx, p))
				if p.ID == 0 {
					e.t.Errorf("CreateParent(%s) left ID 0", p.Name)
				}
				for _, c := range p.Children {
					if c.ID == 0 || c.ParentID != p.ID {
						e.t.Errorf("CreateParent(%s): child %s has ID %d, ParentID %d (parent %d)", p.Name, c.Name, c.ID, c.ParentID, p.ID)
					}
				}
			}
			got, err := e.s.ParentsWithChildren(e.ctx)
			e.must("ParentsWithChildren", err)
			want := []store.Parent{p1, p2, p3}
			if render(got) != render(want) {
				e.t.Errorf("ParentsWithChildren:\n\tgot  %s\n\twant %s", render(got), render(want))
			}
			e.answer("parents", familyView(got))
		}},
	{info("ST-PAR-002", "preload", conformance.Must,
		"ParentsWithChildren of 100 parents with children takes at most 3 statements (no N+1)"),
		func(e *env) {
			for i := range 100 {
				p := store.Parent{Name: fmt.Sprintf("p%03d", i)}
				for j := range i % 4 {
					p.Children = append(p.Children, store.Child{Name: fmt.Sprintf("c%03d.%d", i, j)})
				}
				e.must("CreateParent", e.s.CreateParent(e.ctx, &p))
			}
			before := e.statements()
			got, err := e.s.ParentsWithChildren(e.ctx)
			n := e.statements() - before
			e.must("ParentsWithChildren", err)
			if len(got) != 100 {
				e.t.Errorf("ParentsWithChildren returned %d parents, want 100", len(got))
			}
			children := 0
			for _, p := range got {
				children += len(p.Children)
			}
			e.sameInt("children", int64(children), 150)
			switch {
			case n == 0:
				e.t.Errorf("ParentsWithChildren ran 0 counted statements: the DB's counter does not count, so no N+1 can be seen")
			case n > maxPreloadStatements:
				e.t.Errorf("ParentsWithChildren of 100 parents took %d statements, want at most %d (N+1?)", n, maxPreloadStatements)
			}
			e.t.Logf("ParentsWithChildren: %d statement(s)", n)
			e.answer("parents", len(got))
			e.answer("children", children)
		}},

	// Transactions.
	{info("ST-TX-001", "transactions", conformance.Must,
		"WithTx commits every write of fn when fn returns nil, and fn reads its own writes"),
		func(e *env) {
			err := e.s.WithTx(e.ctx, func(tx store.Ops) error {
				e.host(tx, "alpha", "10.0.0.1", 22)
				g := store.HostGroup{Name: "web"}
				if err := tx.CreateGroup(e.ctx, &g); err != nil {
					return err
				}
				if err := tx.AddHostToGroup(e.ctx, "alpha", "web"); err != nil {
					return err
				}
				if _, err := tx.HostByName(e.ctx, "alpha"); err != nil {
					return fmt.Errorf("reading own write: %w", err)
				}
				return nil
			})
			e.must("WithTx", err)
			hs, err := e.s.HostsInGroup(e.ctx, "web")
			e.must("HostsInGroup after commit", err)
			e.sameStrings("HostsInGroup after commit", hostnames(hs), []string{"alpha"})
			e.answer("hosts", hostViews(hs))
		}},
	{info("ST-TX-002", "transactions", conformance.Must,
		"WithTx rolls back every write of fn when fn returns an error, and returns that error as is"),
		func(e *env) {
			e.host(e.s, "alpha", "10.0.0.1", 22)
			err := e.s.WithTx(e.ctx, func(tx store.Ops) error {
				e.host(tx, "bravo", "10.0.0.2", 22)
				if err := tx.CreateUsers(e.ctx, []store.User{{Name: "u"}}); err != nil {
					return err
				}
				if _, err := tx.UpdateHostPort(e.ctx, store.HostFilter{Hostnames: []string{"alpha"}}, 2222); err != nil {
					return err
				}
				return errRollback
			})
			if err != errRollback {
				e.t.Errorf("WithTx returned %v, want fn's error as is", err)
			}
			e.sameStrings("hosts after rollback", hostViews(e.all()), []string{"alpha 10.0.0.1 22"})
			e.sameInt("rows in users", e.tableRows("users"), 0)
			e.answer("err", errors.Is(err, errRollback))
			e.answer("hosts", hostViews(e.all()))
		}},
	{info("ST-TX-003", "transactions", conformance.Must,
		"a statement that fails inside WithTx (a duplicate) reports ErrDuplicate, and the whole transaction rolls back"),
		func(e *env) {
			e.host(e.s, "alpha", "10.0.0.1", 22)
			var inner error
			err := e.s.WithTx(e.ctx, func(tx store.Ops) error {
				e.host(tx, "bravo", "10.0.0.2", 22)
				dup := store.Host{Hostname: "alpha", IPAddr: "10.0.0.3"}
				inner = tx.CreateHost(e.ctx, &dup)
				return inner
			})
			e.answer("inner", e.wantErr("CreateHost(duplicate) inside WithTx", inner, store.ErrDuplicate))
			e.answer("outer", e.wantErr("WithTx", err, store.ErrDuplicate))
			e.sameStrings("hosts after", hostnames(e.all()), []string{"alpha"})
		}},
	{info("ST-TX-004", "transactions", conformance.Must,
		"a panic inside WithTx rolls everything back and is re-raised with the same value"),
		func(e *env) {
			type boom struct{ n int }
			var recovered any
			func() {
				defer func() { recovered = recover() }()
				_ = e.s.WithTx(e.ctx, func(tx store.Ops) error {
					e.host(tx, "alpha", "10.0.0.1", 22)
					panic(boom{42})
				})
			}()
			if recovered != (boom{42}) {
				e.t.Errorf("recovered %v from WithTx, want the panic value boom{42}", recovered)
			}
			e.sameInt("rows in hosts", e.tableRows("hosts"), 0)
			// The store must still work: the connection went back clean.
			e.host(e.s, "bravo", "10.0.0.2", 22)
			e.answer("re-panicked", recovered == (boom{42}))
			e.answer("hosts", hostViews(e.all()))
		}},
	{info("ST-TX-005", "transactions", conformance.Must,
		"a bulk insert and a parent with children inside a rolled-back WithTx leave no trace"),
		func(e *env) {
			err := e.s.WithTx(e.ctx, func(tx store.Ops) error {
				if err := tx.CreateHosts(e.ctx, []store.Host{{Hostname: "alpha", IPAddr: "10.0.0.1"}, {Hostname: "bravo", IPAddr: "10.0.0.2"}}); err != nil {
					return err
				}
				if err := tx.CreateParent(e.ctx, &store.Parent{Name: "p", Children: []store.Child{{Name: "c"}}}); err != nil {
					return err
				}
				return errRollback
			})
			e.wantErr("WithTx", err, errRollback)
			for _, table := range []string{"hosts", "parent", "child"} {
				e.sameInt("rows in "+table, e.tableRows(table), 0)
			}
			e.answer("err", errClass(err))
		}},

	// The store as a whole.
	{info("ST-CTX-001", "lifecycle", conformance.Should,
		"a call with a cancelled context returns an error matching context.Canceled and writes nothing"),
		func(e *env) {
			ctx, cancel := context.WithCancel(e.ctx)
			cancel()
			h := store.Host{Hostname: "alpha", IPAddr: "10.0.0.1"}
			err := e.s.CreateHost(ctx, &h)
			if !errors.Is(err, context.Canceled) {
				e.t.Errorf("CreateHost(cancelled ctx) = %v, want context.Canceled", err)
			}
			e.sameInt("rows in hosts", e.tableRows("hosts"), 0)
			e.answer("err", errClass(err))
		}},
	{info("ST-CONC-001", "lifecycle", conformance.Must,
		"the Store is safe for concurrent use: 4 goroutines creating 10 hosts each all succeed"),
		func(e *env) {
			const workers, each = 4, 10
			var wg sync.WaitGroup
			errs := make(chan error, workers*each)
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						h := store.Host{Hostname: fmt.Sprintf("w%dh%02d", w, i), IPAddr: fmt.Sprintf("10.0.%d.%d", w, i)}
						if err := e.s.CreateHost(e.ctx, &h); err != nil {
							errs <- fmt.Errorf("%s: %w", h.Hostname, err)
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				e.t.Errorf("concurrent CreateHost: %v", err)
			}
			e.sameInt("rows in hosts", e.tableRows("hosts"), workers*each)
			e.answer("rows", e.tableRows("hosts"))
		}},
	{info("ST-MIG-001", "lifecycle", conformance.Must,
		"Migrate on a migrated database succeeds and keeps the data"),
		func(e *env) {
			e.host(e.s, "alpha", "10.0.0.1", 22)
			e.must("Migrate again", e.s.Migrate(e.ctx))
			e.sameStrings("hosts after Migrate", hostnames(e.all()), []string{"alpha"})
			e.answer("hosts", hostViews(e.all()))
		}},
	{info("ST-CLOSE-001", "lifecycle", conformance.Must,
		"Close releases the back-end but leaves the *sql.DB it was given open"),
		func(e *env) {
			e.host(e.s, "alpha", "10.0.0.1", 22)
			e.closed = true
			e.must("Close", e.s.Close())
			e.must("PingContext after Close", e.db.SQL.PingContext(e.ctx))
			e.sameInt("rows in hosts", e.tableRows("hosts"), 1)
			e.answer("db open", true)
		}},
}

// render prints parents with every field, IDs included, to compare a
// result with what CreateParent returned.
func render(ps []store.Parent) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "%d:%s[", p.ID, p.Name)
		for _, c := range p.Children {
			fmt.Fprintf(&b, "%d/%d:%s ", c.ID, c.ParentID, c.Name)
		}
		b.WriteString("] ")
	}
	return b.String()
}

// familyView renders parents and children without IDs, for answers.
func familyView(ps []store.Parent) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		names := make([]string, len(p.Children))
		for j, c := range p.Children {
			names[j] = c.Name
		}
		out[i] = p.Name + ":" + strings.Join(names, ",")
	}
	return out
}
