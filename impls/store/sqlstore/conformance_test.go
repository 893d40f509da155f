package sqlstore_test

import (
	"testing"

	"github.com/twistbench/twistbench/conformance/storetest"
	"github.com/twistbench/twistbench/impls/store"
)

// TestConformance runs the store suite on every dialect this machine
// provides (see eachDialect).
func TestConformance(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *store.DB) {
		storetest.Run(t, storetest.Fresh(backend.open, db))
	})
}
