package gnet_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/twistbench/twistbench/conformance/reactortest"
	"github.com/twistbench/twistbench/impls/reactor/gnet"
)

// newReactor is the constructor under test, named once for transport_test.go.
var newReactor = gnet.New

// TestMain fails the package if any goroutine outlives the tests, except
// the two of gnet's worker pool, which gnet starts when it is imported and
// never stops (see the package doc): they are no Reactor's leak.
func TestMain(m *testing.M) {
	var opts []goleak.Option
	for _, f := range gnet.EngineGoroutines() {
		opts = append(opts, goleak.IgnoreAnyFunction(f))
	}
	goleak.VerifyTestMain(m, opts...)
}

func TestConformance(t *testing.T) { reactortest.Run(t, gnet.New) }
