package sqlstore

import (
	"strings"
	"testing"

	"github.com/twistbench/twistbench/impls/store"
)

// TestPlaceholders checks the SQL text per dialect: PostgreSQL's $n must
// number every parameter in order, across fixed and generated parts, which
// only a PostgreSQL server would otherwise catch.
func TestPlaceholders(t *testing.T) {
	f := store.HostFilter{Hostnames: []string{"a", "b"}, Ports: []int{22}}
	tests := []struct {
		dialect store.Dialect
		update  string
		member  string
	}{
		{store.Postgres, "UPDATE hosts SET port = $1 WHERE hostname IN ($2, $3) AND port IN ($4)", "h.hostname = $1 AND g.name = $2"},
		{store.MySQL, "UPDATE hosts SET port = ? WHERE hostname IN (?, ?) AND port IN (?)", "h.hostname = ? AND g.name = ?"},
		{store.SQLite, "UPDATE hosts SET port = ? WHERE hostname IN (?, ?) AND port IN (?)", "h.hostname = ? AND g.name = ?"},
	}
	for _, tt := range tests {
		d, err := dialectOf(tt.dialect)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		b.WriteString("UPDATE hosts SET port = " + d.ph(1))
		args := d.where(&b, []any{1}, f)
		if b.String() != tt.update || len(args) != 4 {
			t.Errorf("%s: %q with %d args, want %q with 4", tt.dialect, b.String(), len(args), tt.update)
		}
		if !strings.Contains(d.addMember, tt.member) {
			t.Errorf("%s: add member %q, want it to contain %q", tt.dialect, d.addMember, tt.member)
		}
		if got := d.batchRows(3); got < 1 || got*3 > d.maxParams {
			t.Errorf("%s: %d rows of 3 per batch breaks the limit of %d", tt.dialect, got, d.maxParams)
		}
	}
	if _, err := dialectOf("oracle"); err == nil {
		t.Error("dialectOf(oracle) succeeded")
	}
}
