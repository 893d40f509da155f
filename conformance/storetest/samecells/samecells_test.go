package samecells_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/twistbench/twistbench/conformance/storetest"
	"github.com/twistbench/twistbench/containers"
	"github.com/twistbench/twistbench/impls/store"
	"github.com/twistbench/twistbench/impls/store/gormstore"
	"github.com/twistbench/twistbench/impls/store/sqlstore"
	"github.com/twistbench/twistbench/impls/store/sqlxstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(containers.Wrap(m)) }

// backends are the store back-ends, in the harness's column order. (The
// harness's registry lives in package main; a test cannot import it.)
var backends = []struct {
	name string
	open store.Open
}{
	{"gorm", gormstore.Open},
	{"sqlx", sqlxstore.Open},
	{"sql", sqlstore.Open},
}

// TestSameAnswers runs the suite on every back-end x dialect cell this
// machine provides (SQLite always; PostgreSQL and MySQL through package
// containers, skipped with the reason when unavailable), each cell on a
// fresh database, and compares every cell's answers with the first cell's.
// A cell that fails a case still answers, so a difference shows here as
// well as in the cell's own failures.
func TestSameAnswers(t *testing.T) {
	type cell struct {
		name    string
		answers storetest.Answers
	}
	var (
		mu    sync.Mutex
		cells []cell
	)
	for _, d := range store.Dialects {
		t.Run(string(d), func(t *testing.T) {
			for _, b := range backends {
				t.Run(b.name, func(t *testing.T) {
					db := containers.TestDB(t, d)
					a := storetest.RunAnswers(t, storetest.Fresh(b.open, db))
					mu.Lock()
					cells = append(cells, cell{fmt.Sprintf("%s/%s", b.name, d), a})
					mu.Unlock()
				})
			}
		})
	}
	names := make([]string, len(cells))
	for i, c := range cells {
		names[i] = c.name
	}
	t.Logf("cells compared: %s", strings.Join(names, ", "))
	if len(cells) < 2 {
		t.Fatalf("%d cells ran; nothing to compare", len(cells))
	}
	ref := cells[0]
	for _, c := range cells[1:] {
		if d := ref.answers.Diff(c.answers); len(d) > 0 {
			t.Errorf("%s answers differently from %s:\n%s", c.name, ref.name, strings.Join(d, "\n"))
		}
	}
}
