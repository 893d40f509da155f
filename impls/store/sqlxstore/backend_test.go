package sqlxstore_test

import (
	"github.com/twistbench/twistbench/impls/store"
	"github.com/twistbench/twistbench/impls/store/sqlxstore"
)

// backend is what store_test.go, bench_test.go and conformance_test.go need
// to know of this back-end: its name, Open, and the statement counts that
// follow from how it writes its queries (sqlx: a lookup, then the work).
var backend = struct {
	name                   string
	open                   store.Open
	addMemberStatements    int64 // both ids in one query, then a named INSERT
	hostsInGroupStatements int64 // the group, then its hosts
	preloadStatements      int64 // the parents, then their children IN (...)
}{"sqlx", sqlxstore.Open, 2, 2, 2}
