// Package storetest is the conformance suite any store.Store runs.
package storetest

import (
	"testing"

	"github.com/twistbench/twistbench/conformance"
	"github.com/twistbench/twistbench/impls/store"
)

// Opener gives each case a Store over an empty, migrated database, and the
// DB under it (for its dialect and statement counter). It registers on t
// whatever cleanup it needs; the suite closes the Store.
type Opener func(t conformance.T) (store.Store, *store.DB)

// Run runs every case, each in its own subtest with a fresh store from open.
// (Placeholder: the suite is being written.)
func Run(t *testing.T, open Opener) {
	t.Fatal("storetest: suite not written yet")
}
