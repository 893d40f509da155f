// Package reactortest is the conformance suite any reactor.Reactor runs.
package reactortest

import (
	"testing"

	"github.com/twistbench/twistbench/impls/reactor"
)

// Run runs every case against fresh reactors from newReactor, each case in
// its own subtest with a watchdog; the suite shuts each reactor down itself.
// (Placeholder: the suite is being written.)
func Run(t *testing.T, newReactor reactor.New) {
	t.Fatal("reactortest: suite not written yet")
}
