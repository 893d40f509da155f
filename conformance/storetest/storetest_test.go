package storetest_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/twistbench/twistbench/conformance"
	"github.com/twistbench/twistbench/conformance/storetest"
	"github.com/twistbench/twistbench/impls/store"
	"github.com/twistbench/twistbench/impls/store/gormstore"
	"github.com/twistbench/twistbench/impls/store/sqlconn"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The suite proves itself the way testing/fstest does: it passes a
// known-good store (GORM on SQLite, the one back-end and dialect every
// machine has) and catches deliberately broken ones, each wrong in one
// behaviour, in exactly the cases that state that behaviour.

// sqliteDB opens an empty SQLite file through sqlconn and closes it when
// the test ends.
func sqliteDB(t testing.TB) *store.DB {
	t.Helper()
	db, err := sqlconn.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "inventory.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.SQL.Close() })
	return db
}

func TestCasesWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range storetest.Cases() {
		if seen[c.ID] {
			t.Errorf("case ID %s repeats", c.ID)
		}
		seen[c.ID] = true
		if c.Category == "" || c.Statement == "" {
			t.Errorf("%s: empty category or statement", c.ID)
		}
		switch c.Level {
		case conformance.Must, conformance.Should, conformance.May:
		default:
			t.Errorf("%s: level %q", c.ID, c.Level)
		}
	}
	if len(seen) < 40 {
		t.Errorf("%d cases; the issue's list needs more", len(seen))
	}
}

func TestKnownGoodPasses(t *testing.T) {
	db := sqliteDB(t)
	storetest.Run(t, storetest.Fresh(gormstore.Open, db))
}

// broken wraps a working store and breaks one behaviour, chosen by mode.
type broken struct {
	store.Store
	db   *store.DB
	mode string
}

func (b broken) CreateHost(ctx context.Context, h *store.Host) error {
	switch b.mode {
	case "duplicate-is-nil":
		if err := b.Store.CreateHost(ctx, h); !errors.Is(err, store.ErrDuplicate) {
			return err
		}
		return nil
	case "sql-before-validation":
		if _, err := b.db.SQL.ExecContext(ctx, "SELECT 1"); err != nil {
			return err
		}
	}
	return b.Store.CreateHost(ctx, h)
}

// HostByName in "hangs" waits for its context to end: a store stuck in a
// query.
func (b broken) HostByName(ctx context.Context, name string) (store.Host, error) {
	if b.mode == "hangs" {
		<-ctx.Done()
		return store.Host{}, ctx.Err()
	}
	return b.Store.HostByName(ctx, name)
}

// CreateHosts in "non-atomic-bulk" inserts one row at a time and stops at
// the first error, leaving the rows before it; in
// "batches-without-transaction" it inserts batches of 500, each atomic,
// and stops at the first failed batch, leaving the batches before it.
func (b broken) CreateHosts(ctx context.Context, hosts []store.Host) error {
	switch b.mode {
	case "non-atomic-bulk":
		for i := range hosts {
			if err := b.Store.CreateHost(ctx, &hosts[i]); err != nil {
				return err
			}
		}
		return nil
	case "batches-without-transaction":
		for start := 0; start < len(hosts); start += 500 {
			if err := b.Store.CreateHosts(ctx, hosts[start:min(start+500, len(hosts))]); err != nil {
				return err
			}
		}
		return nil
	}
	return b.Store.CreateHosts(ctx, hosts)
}

// ParentsWithChildren in "n+1" queries the children of each parent on its
// own: the right answer in 101 statements.
func (b broken) ParentsWithChildren(ctx context.Context) ([]store.Parent, error) {
	if b.mode != "n+1" {
		return b.Store.ParentsWithChildren(ctx)
	}
	rows, err := b.db.SQL.QueryContext(ctx, "SELECT id, name FROM parent ORDER BY id")
	if err != nil {
		return nil, err
	}
	var ps []store.Parent
	for rows.Next() {
		var p store.Parent
		if err := rows.Scan(&p.ID, &p.Name); err != nil {
			rows.Close()
			return nil, err
		}
		ps = append(ps, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range ps {
		cs, err := b.db.SQL.QueryContext(ctx, "SELECT id, parent_id, name FROM child WHERE parent_id = ? ORDER BY id", ps[i].ID)
		if err != nil {
			return nil, err
		}
		for cs.Next() {
			var c store.Child
			if err := cs.Scan(&c.ID, &c.ParentID, &c.Name); err != nil {
				cs.Close()
				return nil, err
			}
			ps[i].Children = append(ps[i].Children, c)
		}
		cs.Close()
	}
	return ps, nil
}

// GroupHostCounts in "inner-join" loses the groups without hosts.
func (b broken) GroupHostCounts(ctx context.Context) ([]store.GroupCount, error) {
	gs, err := b.Store.GroupHostCounts(ctx)
	if b.mode != "inner-join" || err != nil {
		return gs, err
	}
	return slices.DeleteFunc(gs, func(g store.GroupCount) bool { return g.Hosts == 0 }), nil
}

// WithTx in "commit-on-error" commits whatever fn did, then returns fn's
// error.
func (b broken) WithTx(ctx context.Context, fn func(store.Ops) error) error {
	if b.mode != "commit-on-error" {
		return b.Store.WithTx(ctx, fn)
	}
	var ferr error
	if err := b.Store.WithTx(ctx, func(tx store.Ops) error { ferr = fn(tx); return nil }); err != nil {
		return err
	}
	return ferr
}

func TestBrokenStoresAreCaught(t *testing.T) {
	tests := []struct {
		mode string
		// fail lists the cases that must fail, and no others may.
		fail []string
	}{
		{mode: "duplicate-is-nil", fail: []string{"ST-HOST-002", "ST-HOST-003"}},
		{mode: "sql-before-validation", fail: []string{"ST-HOST-006", "ST-HOST-007", "ST-HOST-008", "ST-HOST-010"}},
		// One row at a time also runs SQL for the valid rows before the
		// invalid one: ST-BULK-004 catches that too.
		{mode: "non-atomic-bulk", fail: []string{"ST-BULK-002", "ST-BULK-003", "ST-BULK-004", "ST-BULK-007"}},
		// GORM's CreateInBatches under SkipDefaultTransaction: each batch
		// atomic, the whole not.
		{mode: "batches-without-transaction", fail: []string{"ST-BULK-007"}},
		{mode: "n+1", fail: []string{"ST-PAR-002"}},
		{mode: "inner-join", fail: []string{"ST-GRP-001", "ST-GRP-004", "ST-GRP-005"}},
		{mode: "commit-on-error", fail: []string{"ST-TX-002", "ST-TX-003", "ST-TX-005"}},
		// Not a broken store but a DB whose counter is not wired to the
		// driver: the cases that rely on counting fail loudly instead of
		// passing vacuously.
		{mode: "counter-not-wired", fail: []string{"ST-COUNT-001", "ST-GRP-007", "ST-PAR-002"}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			db := sqliteDB(t)
			fresh := storetest.Fresh(gormstore.Open, db)
			open := func(ct conformance.T) (store.Store, *store.DB) {
				s, db := fresh(ct)
				if tt.mode == "counter-not-wired" {
					unwired := *db
					unwired.Statements = new(atomic.Int64)
					return s, &unwired
				}
				return broken{Store: s, db: db, mode: tt.mode}, db
			}
			results := storetest.Record(open, "broken-"+tt.mode, string(db.Dialect), time.Minute)
			var failed []string
			for _, r := range results {
				switch r.Verdict {
				case conformance.Fail:
					failed = append(failed, r.Case)
					t.Logf("%s failed as it should: %s", r.Case, r.Message)
				case conformance.Pass, conformance.Skip:
				default:
					t.Errorf("%s: verdict %s: %s", r.Case, r.Verdict, r.Message)
				}
			}
			sort.Strings(failed)
			if !slices.Equal(failed, tt.fail) {
				t.Errorf("failed cases %v, want exactly %v", failed, tt.fail)
			}
		})
	}
}

// TestRecordMatchesRun checks the harness path: Record gives one passing
// Result per case, labelled, with an answer that AnswersOf recovers and
// that equals what RunAnswers returns for the same store.
func TestRecordMatchesRun(t *testing.T) {
	db := sqliteDB(t)
	results := storetest.Record(storetest.Fresh(gormstore.Open, db), "gorm", string(db.Dialect), 0)
	if len(results) != len(storetest.Cases()) {
		t.Fatalf("%d results for %d cases", len(results), len(storetest.Cases()))
	}
	for i, r := range results {
		if r.Suite != "store" || r.Backend != "gorm" || r.Dialect != "sqlite" || r.Case != storetest.Cases()[i].ID {
			t.Errorf("result %d labelled %s/%s/%s/%s", i, r.Suite, r.Backend, r.Dialect, r.Case)
		}
		if r.Verdict != conformance.Pass {
			t.Errorf("%s: %s: %s", r.Case, r.Verdict, r.Message)
		}
	}
	recorded := storetest.AnswersOf(results)
	var run storetest.Answers
	t.Run("run", func(t *testing.T) { run = storetest.RunAnswers(t, storetest.Fresh(gormstore.Open, sqliteDB(t))) })
	if len(recorded) != len(storetest.Cases()) {
		t.Errorf("AnswersOf found %d answers for %d cases", len(recorded), len(storetest.Cases()))
	}
	for _, d := range recorded.Diff(run) {
		t.Error(d)
	}
}

func TestDiff(t *testing.T) {
	a := storetest.Answers{"ST-A": `{"n":1}`, "ST-B": `{"n":2}`, "ST-C": `{}`}
	b := storetest.Answers{"ST-A": `{"n":1}`, "ST-B": `{"n":3}`, "ST-D": `{}`}
	got := a.Diff(b)
	want := []string{
		"ST-B:\n\twant {\"n\":2}\n\tgot  {\"n\":3}",
		"ST-C: missing from the second cell (want {})",
		"ST-D: only in the second cell: {}",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Diff =\n%s\nwant\n%s", fmt.Sprint(got), fmt.Sprint(want))
	}
	if d := a.Diff(a); len(d) != 0 {
		t.Errorf("Diff of equal answers = %v", d)
	}
}

func TestRecordMatching(t *testing.T) {
	db := sqliteDB(t)
	results := storetest.RecordMatching(storetest.Fresh(gormstore.Open, db), "gorm", "sqlite", 0, regexp.MustCompile(`^ST-TX-`))
	var want []string
	for _, c := range storetest.Cases() {
		if strings.HasPrefix(c.ID, "ST-TX-") {
			want = append(want, c.ID)
		}
	}
	var got []string
	for _, r := range results {
		got = append(got, r.Case)
		if r.Suite != storetest.Suite || r.Verdict != conformance.Pass {
			t.Errorf("%s: suite %q, verdict %s: %s", r.Case, r.Suite, r.Verdict, r.Message)
		}
	}
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("RecordMatching(^ST-TX-) ran %v, want %v", got, want)
	}
}

// TestWatchdog: a case whose store hangs fails as timed out, named, and
// its context is cancelled so that the store returns and the case ends.
func TestWatchdog(t *testing.T) {
	db := sqliteDB(t)
	fresh := storetest.Fresh(gormstore.Open, db)
	open := func(ct conformance.T) (store.Store, *store.DB) {
		s, db := fresh(ct)
		return broken{Store: s, db: db, mode: "hangs"}, db
	}
	results := storetest.RecordMatching(open, "hangs", "sqlite", 500*time.Millisecond, regexp.MustCompile(`^ST-HOST-004$`))
	if len(results) != 1 {
		t.Fatalf("%d results, want 1", len(results))
	}
	r := results[0]
	if r.Verdict != conformance.Fail || !strings.Contains(r.Message, "ST-HOST-004: timed out") {
		t.Errorf("verdict %s, message %q; want a failure naming the timeout", r.Verdict, r.Message)
	}
	if strings.Contains(r.Message, "abandoned") {
		t.Errorf("the case goroutine was abandoned: cancelling the context did not end it (%s)", r.Message)
	}
}
