package netpoll_test

import (
	"testing"

	cwnetpoll "github.com/cloudwego/netpoll"
	"go.uber.org/goleak"

	"github.com/twistbench/twistbench/conformance/reactortest"
	"github.com/twistbench/twistbench/impls/reactor/netpoll"
)

// newReactor is the constructor under test, named once for transport_test.go.
var newReactor = netpoll.New

// TestMain fails the package if any goroutine outlives the tests, except
// netpoll's process-wide pollers: netpoll starts them on first use and
// never stops them (see the package doc), so they are no Reactor's leak.
// They are started here, before any test, so that the descriptor counts
// taken by the tests do not mistake the pollers' epoll and event
// descriptors for a leak either.
func TestMain(m *testing.M) {
	cwnetpoll.Initialize()
	var opts []goleak.Option
	for _, f := range netpoll.EngineGoroutines() {
		opts = append(opts, goleak.IgnoreAnyFunction(f))
	}
	goleak.VerifyTestMain(m, opts...)
}

func TestConformance(t *testing.T) { reactortest.Run(t, netpoll.New) }
