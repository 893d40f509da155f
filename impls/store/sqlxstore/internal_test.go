package sqlxstore

import (
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/twistbench/twistbench/impls/store"
)

// TestBindDriver checks that the driver name handed to sqlx gives each
// dialect its placeholders: sqlx decides by name, and a wrong name would
// only show on a server.
func TestBindDriver(t *testing.T) {
	want := map[store.Dialect]int{store.Postgres: sqlx.DOLLAR, store.MySQL: sqlx.QUESTION, store.SQLite: sqlx.QUESTION}
	for _, d := range store.Dialects {
		name, ok := bindDriver[d]
		if !ok {
			t.Errorf("no driver name for %s", d)
			continue
		}
		if got := sqlx.BindType(name); got != want[d] {
			t.Errorf("%s: sqlx.BindType(%q) = %d, want %d", d, name, got, want[d])
		}
		if maxParams[d] == 0 {
			t.Errorf("%s: no parameter limit", d)
		}
	}
	q, args, err := sqlx.In("UPDATE hosts SET port = ? WHERE hostname IN (?) AND port IN (?)", 1, []string{"a", "b"}, []int{22})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sqlx.Rebind(sqlx.DOLLAR, q), "UPDATE hosts SET port = $1 WHERE hostname IN ($2, $3) AND port IN ($4)"; got != want || len(args) != 4 {
		t.Errorf("rebound %q with %d args, want %q with 4", got, len(args), want)
	}
}
