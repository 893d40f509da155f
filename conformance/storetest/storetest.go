// Package storetest is the conformance suite any store.Store runs.
//
// A back-end proves itself by calling the suite from its own tests, the way
// a file system calls testing/fstest.TestFS:
//
//	func TestConformance(t *testing.T) {
//		for _, d := range store.Dialects {
//			t.Run(string(d), func(t *testing.T) {
//				db := containers.TestDB(t, d) // empty, opened by sqlconn (counting)
//				storetest.Run(t, storetest.Fresh(mystore.Open, db))
//			})
//		}
//	}
//
// The suite knows nothing of back-ends: it imports the contract
// (impls/store) and the schema maintenance of impls/store/schema, never a
// back-end. One case table feeds three callers, as in testing/slogtest:
// Run (go test, one subtest per case), RunAnswers (the same, returning each
// case's canonical answer so that a test can compare back-end x dialect
// cells), and Record (the harness, outside go test, one conformance.Result
// per case).
//
// # What a case may rely on
//
// Every case gets a fresh store over an empty, migrated database with reset
// identities, and the *store.DB under it. The suite reads DB.Dialect to
// state per-dialect results (case folding of hostnames) and DB.Statements
// to prove that invalid input runs no SQL and that preloads are not N+1: a
// DB whose counter never moves fails ST-COUNT-001 loudly instead of letting
// those cases pass vacuously.
//
// Test data is chosen so that answers do not depend on the database's
// collation: names that are ordered are lowercase ASCII letters and digits
// of the same shape, so "ordered by hostname" means the same on PostgreSQL
// (whatever its locale), MySQL and SQLite.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twistbench/twistbench/conformance"
	"github.com/twistbench/twistbench/impls/store"
	"github.com/twistbench/twistbench/impls/store/schema"
)

// Opener gives each case a Store over an empty, migrated database, and the
// DB under it (for its dialect and statement counter). It registers on t
// whatever cleanup it needs; the suite closes the Store. An Opener that
// cannot open calls t.Fatalf.
type Opener func(t conformance.T) (store.Store, *store.DB)

// CaseTimeout bounds one case. When it passes, the case fails as timed out
// and the context handed to the store is cancelled, so that a hung query
// becomes a named failure rather than a stuck test binary.
const CaseTimeout = 2 * time.Minute

// Answers maps a case ID to the canonical answer the case recorded: what the
// store returned, with the parts that legitimately differ between back-ends
// and dialects (generated IDs, statement counts) left out. Two cells that
// conform give equal Answers.
type Answers map[string]string

// Diff lists, one line per case, where got differs from want (cases missing
// on either side included), in case order.
func (want Answers) Diff(got Answers) []string {
	ids := map[string]bool{}
	for id := range want {
		ids[id] = true
	}
	for id := range got {
		ids[id] = true
	}
	keys := make([]string, 0, len(ids))
	for id := range ids {
		keys = append(keys, id)
	}
	sort.Strings(keys)
	var out []string
	for _, id := range keys {
		w, wok := want[id]
		g, gok := got[id]
		switch {
		case !wok:
			out = append(out, fmt.Sprintf("%s: only in the second cell: %s", id, g))
		case !gok:
			out = append(out, fmt.Sprintf("%s: missing from the second cell (want %s)", id, w))
		case w != g:
			out = append(out, fmt.Sprintf("%s:\n\twant %s\n\tgot  %s", id, w, g))
		}
	}
	return out
}

// Cases describes every case of the suite, in the order they run.
func Cases() []conformance.Info {
	out := make([]conformance.Info, len(cases))
	for i, c := range cases {
		out[i] = c.Info
	}
	return out
}

// Run runs every case, each in its own subtest (named by the case ID) with
// a fresh store from open and a watchdog of CaseTimeout.
func Run(t *testing.T, open Opener) {
	t.Helper()
	RunAnswers(t, open)
}

// RunAnswers is Run, returning the answer of every case that finished
// (failed cases included: their answer shows what the store did). Compare
// the Answers of two cells with Diff.
func RunAnswers(t *testing.T, open Opener) Answers {
	t.Helper()
	if open == nil {
		t.Fatal("storetest: nil Opener")
	}
	ans := Answers{}
	var mu sync.Mutex
	for _, c := range cases {
		t.Run(c.ID, func(t *testing.T) {
			t.Logf("%s [%s] %s", c.ID, c.Level, c.Statement)
			runCase(t, c, open, CaseTimeout, func(a string) {
				mu.Lock()
				ans[c.ID] = a
				mu.Unlock()
			})
		})
	}
	return ans
}

// Suite is the suite's name in conformance Results and matrices.
const Suite = "store"

// Record runs every case outside go test, through conformance.Record, and
// returns one Result per case with Suite "store" and the given back-end and
// dialect. Each Result's Log holds the case's answer on a line starting with
// "answer: " (see AnswersOf). timeout bounds each case; zero means
// CaseTimeout.
func Record(open func(conformance.T) (store.Store, *store.DB), backend, dialect string, timeout time.Duration) []conformance.Result {
	return RecordMatching(open, backend, dialect, timeout, nil)
}

// RecordMatching is Record restricted to the cases whose ID match matches
// (every case when match is nil), in Cases order: the harness's --run.
func RecordMatching(open func(conformance.T) (store.Store, *store.DB), backend, dialect string, timeout time.Duration, match *regexp.Regexp) []conformance.Result {
	if timeout <= 0 {
		timeout = CaseTimeout
	}
	var out []conformance.Result
	for _, c := range cases {
		if match != nil && !match.MatchString(c.ID) {
			continue
		}
		// The case's own watchdog cancels the store's context at timeout;
		// Record's fires a little later, only if cancelling did not unstick
		// the case.
		r := conformance.Record(c.Info, timeout+10*time.Second, func(t conformance.T) {
			runCase(t, c, open, timeout, nil)
		})
		r.Suite, r.Backend, r.Dialect = Suite, backend, dialect
		out = append(out, r)
	}
	return out
}

// answerPrefix starts the log line that carries a case's answer.
const answerPrefix = "answer: "

// AnswersOf extracts the answers from the Results Record returned, so that
// the harness can compare cells as RunAnswers callers do.
func AnswersOf(results []conformance.Result) Answers {
	ans := Answers{}
	for _, r := range results {
		for _, line := range strings.Split(r.Log, "\n") {
			if a, ok := strings.CutPrefix(line, answerPrefix); ok {
				ans[r.Case] = a
			}
		}
	}
	return ans
}

// Fresh returns an Opener that, for each case, opens the back-end on db,
// runs Migrate, then empties every table and resets identities with
// schema.Truncate: one database per cell, reused by every case. The suite
// closes the Store; db stays open (its owner closes it).
func Fresh(open store.Open, db *store.DB) Opener {
	return func(t conformance.T) (store.Store, *store.DB) {
		t.Helper()
		if db == nil || db.SQL == nil {
			t.Fatalf("storetest.Fresh: nil DB")
		}
		ctx := t.Context()
		s, err := open(ctx, db)
		if err != nil {
			t.Fatalf("storetest.Fresh: open on %s: %v", db.Dialect, err)
		}
		if err := s.Migrate(ctx); err != nil {
			_ = s.Close()
			t.Fatalf("storetest.Fresh: Migrate on %s: %v", db.Dialect, err)
		}
		if err := schema.Truncate(ctx, db); err != nil {
			_ = s.Close()
			t.Fatalf("storetest.Fresh: %v", err)
		}
		return s, db
	}
}

// testCase is one row of the case table.
type testCase struct {
	conformance.Info
	run func(e *env)
}

// runCase opens a fresh store and runs c against it under a watchdog. The
// answer c recorded is logged and, if record is not nil, handed to it, also
// when the case ends early with Fatalf.
func runCase(t conformance.T, c testCase, open Opener, timeout time.Duration, record func(string)) {
	t.Helper()
	s, db := open(t)
	e := &env{t: t, s: s, db: db}
	if s != nil {
		t.Cleanup(func() {
			if !e.closed {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}
		})
	}
	if s == nil || db == nil || db.SQL == nil {
		t.Fatalf("storetest: the Opener returned a nil Store or DB")
	}
	if db.Statements == nil {
		t.Fatalf("storetest: DB.Statements is nil; the suite needs a statement counter (open the DB with sqlconn)")
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	e.ctx = ctx

	var mu sync.Mutex
	finished := false
	watchdog := time.AfterFunc(timeout, func() {
		mu.Lock()
		defer mu.Unlock()
		if !finished {
			t.Errorf("%s: timed out after %v; cancelling the store's context", c.ID, timeout)
			cancel()
		}
	})
	defer func() {
		mu.Lock()
		finished = true
		mu.Unlock()
		watchdog.Stop()
	}()

	defer func() {
		// Recorded even when the case ends with Fatalf (runtime.Goexit
		// runs deferred calls), so that a failure's answer is visible.
		a := e.render()
		t.Logf("%s%s", answerPrefix, a)
		if record != nil {
			record(a)
		}
	}()
	c.run(e)
}

// env is what a case works with: the store, its DB, a context bounded by
// the watchdog, and the answer being recorded.
type env struct {
	t       conformance.T
	ctx     context.Context
	s       store.Store
	db      *store.DB
	closed  bool // the case closed the store itself
	answers []answerPart
}

type answerPart struct {
	key   string
	value any
}

// answer records one part of the case's canonical answer. Values must not
// contain generated IDs or anything else that legitimately differs between
// cells.
func (e *env) answer(key string, v any) { e.answers = append(e.answers, answerPart{key, v}) }

// render writes the answer as one line of JSON with keys in recording order.
func (e *env) render() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, p := range e.answers {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(p.key)
		v, err := json.Marshal(p.value)
		if err != nil {
			v, _ = json.Marshal(fmt.Sprintf("unmarshalable: %v", err))
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.String()
}

// statements reads the DB's statement counter.
func (e *env) statements() int64 { return e.db.Statements.Load() }

// noSQL runs f and fails the case if the statement counter moved: invalid
// input must be rejected before any SQL runs.
func (e *env) noSQL(what string, f func() error) error {
	e.t.Helper()
	before := e.statements()
	err := f()
	if d := e.statements() - before; d != 0 {
		e.t.Errorf("%s: %d statement(s) ran; invalid input must be rejected before any SQL", what, d)
	}
	return err
}

// must fails the case now if err is not nil.
func (e *env) must(what string, err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
}

// wantErr checks that err matches want (nil means success) with errors.Is,
// and returns the error's class for the answer.
func (e *env) wantErr(what string, err, want error) string {
	e.t.Helper()
	switch {
	case want == nil && err != nil:
		e.t.Errorf("%s: unexpected error: %v", what, err)
	case want != nil && err == nil:
		e.t.Errorf("%s: got no error, want %v", what, want)
	case want != nil && !errors.Is(err, want):
		e.t.Errorf("%s: got %v, want an error matching %v", what, err, want)
	}
	return errClass(err)
}

// host creates a host through ops and fails the case if it cannot.
func (e *env) host(ops store.Ops, name, ip string, port int) store.Host {
	e.t.Helper()
	h := store.Host{Hostname: name, IPAddr: ip, Port: port}
	e.must(fmt.Sprintf("CreateHost(%q)", name), ops.CreateHost(e.ctx, &h))
	if h.ID == 0 {
		e.t.Errorf("CreateHost(%q) left ID 0", name)
	}
	return h
}

// group creates a group and fails the case if it cannot.
func (e *env) group(name string) store.HostGroup {
	e.t.Helper()
	g := store.HostGroup{Name: name}
	e.must(fmt.Sprintf("CreateGroup(%q)", name), e.s.CreateGroup(e.ctx, &g))
	if g.ID == 0 {
		e.t.Errorf("CreateGroup(%q) left ID 0", name)
	}
	return g
}

// join adds a membership and fails the case if it cannot.
func (e *env) join(host, group string) {
	e.t.Helper()
	e.must(fmt.Sprintf("AddHostToGroup(%q, %q)", host, group), e.s.AddHostToGroup(e.ctx, host, group))
}

// all returns every host ordered by id.
func (e *env) all() []store.Host {
	e.t.Helper()
	hs, err := e.s.HostsPage(e.ctx, 0, 1<<20)
	e.must("HostsPage(0, all)", err)
	return hs
}

// tableRows counts the rows of a contract table with plain SQL, to see what
// a back-end really left in the database.
func (e *env) tableRows(table string) int64 {
	e.t.Helper()
	var n int64
	e.must("count "+table, e.db.SQL.QueryRowContext(e.ctx, "SELECT COUNT(*) FROM "+table).Scan(&n))
	return n
}

// hostViews renders hosts without their IDs, for answers and comparisons.
func hostViews(hs []store.Host) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = fmt.Sprintf("%s %s %d", h.Hostname, h.IPAddr, h.Port)
	}
	return out
}

// hostnames lists the hostnames of hs in order.
func hostnames(hs []store.Host) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Hostname
	}
	return out
}

// sameStrings reports a mismatch between two string lists.
func (e *env) sameStrings(what string, got, want []string) {
	e.t.Helper()
	if !slices.Equal(got, want) {
		e.t.Errorf("%s:\n\tgot  %q\n\twant %q", what, got, want)
	}
}

// sameInt reports a mismatch between two counts.
func (e *env) sameInt(what string, got, want int64) {
	e.t.Helper()
	if got != want {
		e.t.Errorf("%s: got %d, want %d", what, got, want)
	}
}
