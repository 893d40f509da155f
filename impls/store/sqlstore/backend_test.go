package sqlstore_test

import (
	"github.com/twistbench/twistbench/impls/store"
	"github.com/twistbench/twistbench/impls/store/sqlstore"
)

// backend is what store_test.go, bench_test.go and conformance_test.go need
// to know of this back-end: its name, Open, and the statement counts that
// follow from how it writes its queries (hand SQL: single statements where
// a join or INSERT ... SELECT can do it).
var backend = struct {
	name                   string
	open                   store.Open
	addMemberStatements    int64 // INSERT ... SELECT
	hostsInGroupStatements int64 // one LEFT JOIN from the group
	preloadStatements      int64 // one LEFT JOIN of 100 parents
}{"sql", sqlstore.Open, 1, 1, 1}
