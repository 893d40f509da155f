// Package apitest is the conformance suite any HTTP front-end of the host
// inventory runs, in the style of TechEmpower's verifier: status codes,
// headers, exact JSON bodies, the error cases, and the number of SQL
// statements each request executed.
//
// The suite speaks HTTP to a base URL with net/http's client and reads the
// database only through the store contract, so it knows nothing of the
// engine or back-end it checks. A front-end proves itself by calling Run
// from its own tests with an Opener.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twistbench/twistbench/conformance"
	"github.com/twistbench/twistbench/impls/store"
)

// Fixture is one front-end under test, over an empty, migrated store.
type Fixture struct {
	URL     string      // base URL, "http://127.0.0.1:PORT"
	Store   store.Store // the store behind the front-end, to seed and check
	DB      *store.DB   // its database: dialect and statement counter
	Poem    []byte      // what GET /poem must return
	MaxBody int         // the configured request body limit
	// CutDatabase, if set, makes the database unreachable for the rest of
	// the case (a closed proxy in front of a network server). Nil where
	// there is no network to cut (SQLite): the 503 case then skips.
	CutDatabase func()
}

// Opener gives each case a fresh fixture and registers its cleanup on t.
type Opener func(t conformance.T) Fixture

type testCase struct {
	conformance.Info
	run func(t conformance.T, f Fixture)
}

// Cases lists the cases, for the report.
func Cases() []conformance.Info {
	out := make([]conformance.Info, len(cases))
	for i, c := range cases {
		out[i] = c.Info
	}
	return out
}

// Run runs every case in its own subtest with a fresh fixture and a
// watchdog.
func Run(t *testing.T, open Opener) {
	for _, c := range cases {
		t.Run(c.ID, func(t *testing.T) {
			done := make(chan struct{})
			timer := time.AfterFunc(caseTimeout, func() {
				select {
				case <-done:
				default:
					panic(fmt.Sprintf("apitest: case %s (%s) did not finish in %v", c.ID, c.Statement, caseTimeout))
				}
			})
			defer func() { close(done); timer.Stop() }()
			c.run(t, open(t))
		})
	}
}

// Suite is the suite's name in results.
const Suite = "http"

// Record runs every case outside go test and returns one result each.
func Record(open Opener, backend, dialect string) []conformance.Result {
	return RecordMatching(open, backend, dialect, nil)
}

// RecordMatching is Record of the cases whose ID match matches (all when
// nil).
func RecordMatching(open Opener, backend, dialect string, match *regexp.Regexp) []conformance.Result {
	var out []conformance.Result
	for _, c := range cases {
		if match != nil && !match.MatchString(c.ID) {
			continue
		}
		r := conformance.Record(c.Info, caseTimeout, func(t conformance.T) { c.run(t, open(t)) })
		r.Suite, r.Backend, r.Dialect = Suite, backend, dialect
		out = append(out, r)
	}
	return out
}

const caseTimeout = 60 * time.Second

var client = &http.Client{Timeout: 20 * time.Second}

// reply is a response read whole.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func do(t conformance.T, f Fixture, method, path string, body []byte) reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, f.URL+path, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// expect checks the status and the headers every response must carry.
func expect(t conformance.T, what string, r reply, status int, contentType string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d (body %q)", what, r.status, status, clip(r.body))
	}
	if contentType != "" && r.header.Get("Content-Type") != contentType {
		t.Errorf("%s: Content-Type %q, want %q", what, r.header.Get("Content-Type"), contentType)
	}
	if d := r.header.Get("Date"); d == "" {
		t.Errorf("%s: no Date header", what)
	} else if _, err := http.ParseTime(d); err != nil {
		t.Errorf("%s: Date %q: %v", what, d, err)
	}
	if status != http.StatusNoContent {
		cl := r.header.Get("Content-Length")
		if n, err := strconv.Atoi(cl); err != nil || n != len(r.body) {
			t.Errorf("%s: Content-Length %q, body has %d bytes", what, cl, len(r.body))
		}
	}
}

// expectJSON checks that the body is exactly the JSON of want (compared as
// values, so key order and spacing do not matter).
func expectJSON(t conformance.T, what string, r reply, want any) {
	t.Helper()
	var got, exp any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("%s: body is not JSON: %v (%q)", what, err, clip(r.body))
	}
	wb, _ := json.Marshal(want)
	_ = json.Unmarshal(wb, &exp)
	if !reflect.DeepEqual(got, exp) {
		t.Errorf("%s: body %s, want %s", what, clip(r.body), wb)
	}
}

// expectError checks a JSON error: status, stable code, and (if non-empty)
// that the message names what was wrong; the body has no other keys, so no
// stack trace or detail can leak.
func expectError(t conformance.T, what string, r reply, status int, code, mentions string) {
	t.Helper()
	expect(t, what, r, status, "application/json")
	var e map[string]map[string]any
	if err := json.Unmarshal(r.body, &e); err != nil || len(e) != 1 || e["error"] == nil {
		t.Fatalf("%s: error body %q is not {\"error\":{...}}", what, clip(r.body))
	}
	inner := e["error"]
	if len(inner) != 2 || inner["code"] != code {
		t.Errorf("%s: error %v, want exactly code %q and a message", what, inner, code)
	}
	msg, _ := inner["message"].(string)
	if mentions != "" && !strings.Contains(msg, mentions) {
		t.Errorf("%s: message %q does not name %q", what, msg, mentions)
	}
	if strings.Contains(msg, "goroutine ") || strings.Contains(msg, ".go:") {
		t.Errorf("%s: message leaks a stack trace: %q", what, msg)
	}
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

func hostJSON(id int64, name, ip string, port int) map[string]any {
	return map[string]any{"id": id, "hostname": name, "ip_addr": ip, "port": port}
}

func seedHosts(t conformance.T, f Fixture, hosts ...store.Host) []store.Host {
	t.Helper()
	if err := f.Store.CreateHosts(t.Context(), hosts); err != nil {
		t.Fatalf("seeding hosts: %v", err)
	}
	return hosts
}

func countHosts(t conformance.T, f Fixture) int {
	t.Helper()
	hs, err := f.Store.HostsPage(t.Context(), 0, 10000)
	if err != nil {
		t.Fatalf("counting hosts: %v", err)
	}
	return len(hs)
}

// statements runs fn and returns how many SQL statements the database
// executed meanwhile.
func statements(f Fixture, fn func()) int64 {
	before := f.DB.Statements.Load()
	fn()
	return f.DB.Statements.Load() - before
}

var cases = []testCase{
	{conformance.Info{ID: "HTTP-ECHO-001", Category: "echo", Level: conformance.Must,
		Statement: "POST /echo returns the body byte for byte, all 256 byte values, as application/octet-stream"},
		func(t conformance.T, f Fixture) {
			body := make([]byte, 4096)
			for i := range body {
				body[i] = byte(i)
			}
			r := do(t, f, "POST", "/echo", body)
			expect(t, "POST /echo", r, 200, "application/octet-stream")
			if !bytes.Equal(r.body, body) {
				t.Errorf("echoed %d bytes that differ from the %d sent", len(r.body), len(body))
			}
			r = do(t, f, "POST", "/echo", []byte{})
			expect(t, "POST /echo (empty)", r, 200, "")
			if len(r.body) != 0 {
				t.Errorf("empty echo returned %d bytes", len(r.body))
			}
		}},
	{conformance.Info{ID: "HTTP-POEM-001", Category: "echo", Level: conformance.Must,
		Statement: "GET /poem returns the configured poem exactly, as text/plain UTF-8"},
		func(t conformance.T, f Fixture) {
			r := do(t, f, "GET", "/poem", nil)
			expect(t, "GET /poem", r, 200, "text/plain; charset=utf-8")
			if !bytes.Equal(r.body, f.Poem) {
				t.Errorf("poem of %d bytes differs from the configured %d", len(r.body), len(f.Poem))
			}
		}},
	{conformance.Info{ID: "HTTP-HLTH-001", Category: "health", Level: conformance.Must,
		Statement: `GET /healthz answers 200 {"status":"ok"}`},
		func(t conformance.T, f Fixture) {
			r := do(t, f, "GET", "/healthz", nil)
			expect(t, "GET /healthz", r, 200, "application/json")
			expectJSON(t, "GET /healthz", r, map[string]any{"status": "ok"})
		}},
	{conformance.Info{ID: "HTTP-HOST-001", Category: "hosts", Level: conformance.Must,
		Statement: "POST /hosts creates a host: 201, a Location, the host as JSON with its id, port 22 when absent"},
		func(t conformance.T, f Fixture) {
			r := do(t, f, "POST", "/hosts", []byte(`{"hostname":"web1","ip_addr":"192.0.2.1"}`))
			expect(t, "POST /hosts", r, 201, "application/json")
			var h store.Host
			if err := json.Unmarshal(r.body, &h); err != nil || h.ID <= 0 {
				t.Fatalf("POST /hosts: body %q has no positive id (%v)", clip(r.body), err)
			}
			expectJSON(t, "POST /hosts", r, hostJSON(h.ID, "web1", "192.0.2.1", 22))
			if loc := r.header.Get("Location"); loc != "/hosts/web1" {
				t.Errorf("Location %q, want /hosts/web1", loc)
			}
			got, err := f.Store.HostByName(t.Context(), "web1")
			if err != nil || got != h {
				t.Errorf("store has %+v (%v), want %+v", got, err, h)
			}
		}},
	{conformance.Info{ID: "HTTP-HOST-002", Category: "hosts", Level: conformance.Must,
		Statement: "GET /hosts/{hostname} returns exactly that host, in one SQL statement"},
		func(t conformance.T, f Fixture) {
			hs := seedHosts(t, f, store.Host{Hostname: "db1", IPAddr: "192.0.2.10", Port: 5432}, store.Host{Hostname: "db2", IPAddr: "192.0.2.11", Port: 22})
			var r reply
			n := statements(f, func() { r = do(t, f, "GET", "/hosts/db1", nil) })
			expect(t, "GET /hosts/db1", r, 200, "application/json")
			expectJSON(t, "GET /hosts/db1", r, hostJSON(hs[0].ID, "db1", "192.0.2.10", 5432))
			if n != 1 {
				t.Errorf("GET /hosts/db1 ran %d SQL statements, want 1", n)
			}
		}},
	{conformance.Info{ID: "HTTP-HOST-003", Category: "errors", Level: conformance.Must,
		Statement: "a duplicate hostname or address is 409 duplicate and writes nothing"},
		func(t conformance.T, f Fixture) {
			seedHosts(t, f, store.Host{Hostname: "web1", IPAddr: "192.0.2.1", Port: 22})
			for _, body := range []string{
				`{"hostname":"web1","ip_addr":"192.0.2.99"}`,
				`{"hostname":"web9","ip_addr":"192.0.2.1"}`,
			} {
				r := do(t, f, "POST", "/hosts", []byte(body))
				expectError(t, "POST "+body, r, 409, "duplicate", "")
			}
			if n := countHosts(t, f); n != 1 {
				t.Errorf("%d hosts after two refused duplicates, want 1", n)
			}
		}},
	{conformance.Info{ID: "HTTP-HOST-004", Category: "errors", Level: conformance.Must,
		Statement: "an unknown hostname is 404 not_found for GET, PATCH and DELETE; an unknown path is 404 too"},
		func(t conformance.T, f Fixture) {
			expectError(t, "GET", do(t, f, "GET", "/hosts/nope", nil), 404, "not_found", "")
			expectError(t, "PATCH", do(t, f, "PATCH", "/hosts/nope", []byte(`{"port":2222}`)), 404, "not_found", "")
			expectError(t, "DELETE", do(t, f, "DELETE", "/hosts/nope", nil), 404, "not_found", "")
			expectError(t, "GET /nowhere", do(t, f, "GET", "/nowhere", nil), 404, "not_found", "")
		}},
	{conformance.Info{ID: "HTTP-HOST-005", Category: "errors", Level: conformance.Must,
		Statement: "malformed JSON, a wrong type, an unknown or missing field, or a bad value is 400 bad_request naming the field, and writes nothing"},
		func(t conformance.T, f Fixture) {
			for _, c := range []struct{ body, names string }{
				{`{"hostname":"web1","ip_addr":`, "body"},
				{`not json`, "body"},
				{`{"hostname":"web1","ip_addr":"192.0.2.1","port":"ssh"}`, "port"},
				{`{"hostname":"web1","ip_addr":"192.0.2.1","colour":"red"}`, "colour"},
				{`{"ip_addr":"192.0.2.1"}`, "hostname"},
				{`{"hostname":"web1"}`, "ip_addr"},
				{`{"hostname":"","ip_addr":"192.0.2.1"}`, "hostname"},
				{`{"hostname":"web1","ip_addr":"192.0.2.1","port":70000}`, "port"},
				{`{"hostname":"web1","ip_addr":"192.0.2.1","port":-1}`, "port"},
				{`{"hostname":"` + strings.Repeat("h", store.MaxHostname+1) + `","ip_addr":"192.0.2.1"}`, "hostname"},
			} {
				r := do(t, f, "POST", "/hosts", []byte(c.body))
				expectError(t, "POST "+clip([]byte(c.body)), r, 400, "bad_request", c.names)
			}
			if n := countHosts(t, f); n != 0 {
				t.Errorf("%d hosts written by refused requests, want 0", n)
			}
		}},
	{conformance.Info{ID: "HTTP-HOST-006", Category: "hosts", Level: conformance.Must,
		Statement: "PATCH /hosts/{hostname} sets the port and returns the updated host; a bad port is 400 and changes nothing"},
		func(t conformance.T, f Fixture) {
			hs := seedHosts(t, f, store.Host{Hostname: "web1", IPAddr: "192.0.2.1", Port: 22})
			r := do(t, f, "PATCH", "/hosts/web1", []byte(`{"port":2222}`))
			expect(t, "PATCH", r, 200, "application/json")
			expectJSON(t, "PATCH", r, hostJSON(hs[0].ID, "web1", "192.0.2.1", 2222))
			r = do(t, f, "PATCH", "/hosts/web1", []byte(`{"port":2222}`))
			expect(t, "PATCH to the same value", r, 200, "application/json")
			expectError(t, "PATCH bad port", do(t, f, "PATCH", "/hosts/web1", []byte(`{"port":65536}`)), 400, "bad_request", "port")
			expectError(t, "PATCH no port", do(t, f, "PATCH", "/hosts/web1", []byte(`{}`)), 400, "bad_request", "port")
			if h, err := f.Store.HostByName(t.Context(), "web1"); err != nil || h.Port != 2222 {
				t.Errorf("store has %+v (%v), want port 2222", h, err)
			}
		}},
	{conformance.Info{ID: "HTTP-HOST-007", Category: "hosts", Level: conformance.Must,
		Statement: "DELETE /hosts/{hostname} is 204 with no body, and the host is gone"},
		func(t conformance.T, f Fixture) {
			seedHosts(t, f, store.Host{Hostname: "web1", IPAddr: "192.0.2.1", Port: 22})
			r := do(t, f, "DELETE", "/hosts/web1", nil)
			expect(t, "DELETE", r, 204, "")
			if len(r.body) != 0 {
				t.Errorf("204 with a body of %d bytes", len(r.body))
			}
			expectError(t, "GET after DELETE", do(t, f, "GET", "/hosts/web1", nil), 404, "not_found", "")
		}},
	{conformance.Info{ID: "HTTP-HOST-008", Category: "hosts", Level: conformance.Must,
		Statement: "GET /hosts pages by id with offset and limit; past the end is []; a bad limit is 400 naming it"},
		func(t conformance.T, f Fixture) {
			hs := seedHosts(t, f,
				store.Host{Hostname: "a", IPAddr: "192.0.2.1", Port: 1},
				store.Host{Hostname: "b", IPAddr: "192.0.2.2", Port: 2},
				store.Host{Hostname: "c", IPAddr: "192.0.2.3", Port: 3})
			r := do(t, f, "GET", "/hosts?offset=1&limit=2", nil)
			expect(t, "page", r, 200, "application/json")
			expectJSON(t, "page", r, []any{hostJSON(hs[1].ID, "b", "192.0.2.2", 2), hostJSON(hs[2].ID, "c", "192.0.2.3", 3)})
			r = do(t, f, "GET", "/hosts?offset=10", nil)
			expect(t, "past the end", r, 200, "application/json")
			expectJSON(t, "past the end", r, []any{})
			expectError(t, "bad limit", do(t, f, "GET", "/hosts?limit=x", nil), 400, "bad_request", "limit")
		}},
	{conformance.Info{ID: "HTTP-GRP-001", Category: "groups", Level: conformance.Must,
		Statement: "GET /hosts?group=NAME lists the group's hosts by hostname in a bounded number of statements (no query per host)"},
		func(t conformance.T, f Fixture) {
			ctx := t.Context()
			var hosts []store.Host
			for i := range 20 {
				hosts = append(hosts, store.Host{Hostname: fmt.Sprintf("h%02d", 19-i), IPAddr: fmt.Sprintf("192.0.2.%d", i+1), Port: 22})
			}
			seedHosts(t, f, hosts...)
			if err := f.Store.CreateGroup(ctx, &store.HostGroup{Name: "web"}); err != nil {
				t.Fatalf("CreateGroup: %v", err)
			}
			for _, h := range hosts {
				if err := f.Store.AddHostToGroup(ctx, h.Hostname, "web"); err != nil {
					t.Fatalf("AddHostToGroup: %v", err)
				}
			}
			var r reply
			n := statements(f, func() { r = do(t, f, "GET", "/hosts?group=web", nil) })
			expect(t, "GET /hosts?group=web", r, 200, "application/json")
			var got []store.Host
			if err := json.Unmarshal(r.body, &got); err != nil || len(got) != 20 {
				t.Fatalf("got %d hosts (%v), want 20", len(got), err)
			}
			for i := 1; i < len(got); i++ {
				if got[i-1].Hostname >= got[i].Hostname {
					t.Errorf("hosts not ordered by hostname: %q before %q", got[i-1].Hostname, got[i].Hostname)
				}
			}
			if n > 2 {
				t.Errorf("a group of 20 hosts took %d SQL statements; the join needs at most 2", n)
			}
			expectError(t, "unknown group", do(t, f, "GET", "/hosts?group=nope", nil), 404, "not_found", "")
		}},
	{conformance.Info{ID: "HTTP-GRP-002", Category: "groups", Level: conformance.Must,
		Statement: "GET /groups?count=1 lists every group by name with its host count, empty groups at 0"},
		func(t conformance.T, f Fixture) {
			ctx := t.Context()
			seedHosts(t, f, store.Host{Hostname: "a", IPAddr: "192.0.2.1", Port: 22}, store.Host{Hostname: "b", IPAddr: "192.0.2.2", Port: 22})
			for _, g := range []string{"web", "db", "empty"} {
				if err := f.Store.CreateGroup(ctx, &store.HostGroup{Name: g}); err != nil {
					t.Fatalf("CreateGroup: %v", err)
				}
			}
			for _, m := range [][2]string{{"a", "web"}, {"b", "web"}, {"a", "db"}} {
				if err := f.Store.AddHostToGroup(ctx, m[0], m[1]); err != nil {
					t.Fatalf("AddHostToGroup: %v", err)
				}
			}
			r := do(t, f, "GET", "/groups?count=1", nil)
			expect(t, "GET /groups?count=1", r, 200, "application/json")
			expectJSON(t, "GET /groups?count=1", r, []any{
				map[string]any{"group": "db", "hosts": 1},
				map[string]any{"group": "empty", "hosts": 0},
				map[string]any{"group": "web", "hosts": 2},
			})
		}},
	{conformance.Info{ID: "HTTP-BODY-001", Category: "errors", Level: conformance.Must,
		Statement: "a body over the configured limit is 413 too_large as JSON, and writes nothing"},
		func(t conformance.T, f Fixture) {
			big := []byte(`{"hostname":"web1","ip_addr":"192.0.2.1","pad":"` + strings.Repeat("x", f.MaxBody) + `"}`)
			expectError(t, "oversized POST /hosts", do(t, f, "POST", "/hosts", big), 413, "too_large", "")
			expectError(t, "oversized POST /echo", do(t, f, "POST", "/echo", bytes.Repeat([]byte{'e'}, f.MaxBody+1)), 413, "too_large", "")
			if n := countHosts(t, f); n != 0 {
				t.Errorf("%d hosts written by an oversized request, want 0", n)
			}
		}},
	{conformance.Info{ID: "HTTP-METH-001", Category: "errors", Level: conformance.Should,
		Statement: "a method an endpoint does not serve is 405 method_not_allowed with an Allow header"},
		func(t conformance.T, f Fixture) {
			r := do(t, f, "DELETE", "/echo", nil)
			expectError(t, "DELETE /echo", r, 405, "method_not_allowed", "POST")
			if r.header.Get("Allow") == "" {
				t.Errorf("405 without an Allow header")
			}
		}},
	{conformance.Info{ID: "HTTP-DB-001", Category: "errors", Level: conformance.Must,
		Statement: "when the database cannot be reached, a store endpoint answers 503 unavailable as JSON, and the server stays up"},
		func(t conformance.T, f Fixture) {
			if f.CutDatabase == nil {
				t.Skipf("no network between this front-end and its database (%s) to cut", f.DB.Dialect)
			}
			f.CutDatabase()
			expectError(t, "GET /hosts/web1 with the database cut", do(t, f, "GET", "/hosts/web1", nil), 503, "unavailable", "")
			r := do(t, f, "GET", "/healthz", nil)
			expect(t, "GET /healthz after", r, 200, "application/json")
		}},
}
