// Package reactortest is the conformance suite any reactor.Reactor runs.
//
// A back-end proves itself from its own _test.go, the way a net.Conn proves
// itself with golang.org/x/net/nettest.TestConn:
//
//	func TestConformance(t *testing.T) { reactortest.Run(t, stdnet.New) }
//
// The suite knows nothing of back-ends: it imports only the contract, and it
// uses the standard library's net package as an independent referee on the
// other end of every connection. The cases are derived from Twisted's own
// reactor tests (twisted/internet/test/test_tcp.py and connectionmixins.py).
//
// One case table feeds two callers, as in testing/slogtest: Run for go test
// (one subtest per case), and Record for `harness conformance`, which needs
// verdicts rather than a test run. Each case gets a fresh reactor and a
// watchdog: a case that hangs fails with the name of what it was waiting
// for instead of stalling CI, and the suite shuts every reactor down itself,
// checking Shutdown's error.
//
// Beyond what each case asserts, every protocol a case builds is checked
// after the reactor has shut down for the lifecycle invariants of the
// contract (ConnectionMade at most once and first, ConnectionLost at most
// once and last, no two callbacks at the same time), so a back-end that
// breaks them fails whichever case provoked it.
package reactortest

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/twistbench/twistbench/conformance"
	"github.com/twistbench/twistbench/impls/reactor"
)

// Suite is the conformance.Result.Suite of every result Record returns.
const Suite = "reactor"

// DefaultTimeout is the budget of an ordinary case under Run; slow cases
// (marked in the table) get slowFactor times it. The budget covers the case
// and the reactor's shutdown.
const DefaultTimeout = 30 * time.Second

// slowFactor multiplies the budget of cases that move tens of megabytes,
// open a thousand connections or start a child process.
const slowFactor = 4

// testCase is one row of the table: what the report shows (Info) and the
// body. A body fails through e.t; it never needs to stop the reactor, the
// fixture does.
type testCase struct {
	conformance.Info
	slow bool
	// warmUp: before the fixture counts goroutines and descriptors, a
	// throwaway reactor serves a connection each way and shuts down, so
	// that what an engine creates once per process, on first use (a
	// global poller), is counted as already there and not as the
	// reactor's.
	warmUp bool
	run    func(e *env)
}

// table is every case, in report order. protocolCases (protocols.go) is
// appended last.
func table() []testCase {
	var all []testCase
	for _, group := range [][]testCase{
		lifecycleCases,
		addressCases,
		writeCases,
		dataCases,
		closeCases,
		callbackCases,
		halfCloseCases,
		flowCases,
		panicCases,
		clientCases,
		listenCases,
		loadCases,
		resourceCases,
		concurrencyCases,
		protocolCases,
	} {
		all = append(all, group...)
	}
	return all
}

// Cases lists every case the suite runs, in order, for the report.
func Cases() []conformance.Info {
	t := table()
	out := make([]conformance.Info, len(t))
	for i, c := range t {
		out[i] = c.Info
	}
	return out
}

// Run runs every case against fresh reactors from newReactor, each case in
// its own subtest (named by its ID) with a watchdog of DefaultTimeout (four
// times that for slow cases). newReactor is called once per case and must
// return an independent, running reactor; the suite shuts each one down
// itself and fails the case if Shutdown returns an error, so the caller has
// nothing to clean up.
//
// Cases run one after another, never in parallel: the shutdown case looks for
// leaked goroutines and descriptors in the whole process, so the caller
// should not run other tests in parallel with Run. One case (RX-RES-001)
// re-executes the test binary with -test.run set to its own subtest, so the
// test that calls Run must reach the same call again when run alone.
func Run(t *testing.T, newReactor reactor.New) {
	t.Helper()
	if newReactor == nil {
		t.Fatal("reactortest.Run: newReactor is nil")
	}
	child := childCase()
	for _, c := range table() {
		t.Run(c.ID, func(t *testing.T) {
			if child != "" {
				// We are the re-executed test binary of a case that
				// needs its own process (see child.go).
				if c.ID != child {
					t.Skipf("child process for %s", child)
				}
				runChild(t, c.ID, newReactor)
				return
			}
			t.Logf("%s [%s] %s", c.ID, c.Level, c.Statement)
			runTest(t, c, newReactor, budget(c, DefaultTimeout))
		})
	}
}

// Record runs every case against fresh reactors from newReactor outside
// go test and returns one Result per case, in Cases order, with Suite and
// Backend filled in. timeout is the budget of an ordinary case (zero means
// DefaultTimeout); slow cases get four times it.
//
// When the program is the child process of a case that needs one (see
// child.go), Record runs that case's child side for the matching backend and
// exits the process; for other backends it returns nil.
func Record(newReactor reactor.New, backend string, timeout time.Duration) []conformance.Result {
	return RecordMatching(newReactor, backend, timeout, nil)
}

// RecordMatching is Record restricted to the cases whose ID match matches
// (every case when match is nil), in Cases order: the harness's --run, and
// the suite's own tests, which run one case against a planted fault.
func RecordMatching(newReactor reactor.New, backend string, timeout time.Duration, match *regexp.Regexp) []conformance.Result {
	return record(newReactor, backend, timeout, match)
}

func record(newReactor reactor.New, backend string, timeout time.Duration, match *regexp.Regexp) []conformance.Result {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if id := childCase(); id != "" {
		if os.Getenv(childBackendEnv) != backend {
			return nil
		}
		code := recordChild(id, newReactor)
		if testing.Testing() {
			// A test binary may not exit from a test; the verdict line
			// is what the parent reads.
			return nil
		}
		os.Exit(code)
	}
	var out []conformance.Result
	for _, c := range table() {
		if match != nil && !match.MatchString(c.ID) {
			continue
		}
		b := budget(c, timeout)
		res := conformance.Record(c.Info, b, func(t conformance.T) {
			runCase(t, c, newReactor, b, runMode{backend: backend})
		})
		res.Suite = Suite
		res.Backend = backend
		out = append(out, res)
	}
	return out
}

func budget(c testCase, timeout time.Duration) time.Duration {
	if c.slow {
		return timeout * slowFactor
	}
	return timeout
}

// runTest runs one case under go test. The body runs in its own goroutine
// behind a guard (guardT) so that a body stuck in a call that ignores the
// watchdog (a Write that blocks, a Shutdown that never returns) is abandoned
// with a named failure at the end of its budget, instead of hanging the test
// binary until go test's global timeout.
func runTest(t *testing.T, c testCase, newReactor reactor.New, b time.Duration) {
	g := &guardT{t: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer g.runCleanups()
		runCase(g, c, newReactor, b, runMode{test: true})
	}()
	timer := time.NewTimer(b)
	defer timer.Stop()
	select {
	case <-done:
		g.finish()
	case <-timer.C:
		g.abandon()
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("%s: hung for %v, blocked in a call that does not return; its goroutine is abandoned. Goroutines:\n%s", c.ID, b, buf)
	}
}

// guardT forwards to a *testing.T from the case goroutine. Fatalf and Skipf
// end that goroutine (not the test's), and the test goroutine turns them into
// t.FailNow/t.SkipNow once the body is done; after abandon, every call is
// dropped, since package testing panics on calls after a test returned.
// Cleanups are run by runCase itself (see env), not by package testing, so
// that they count in the watchdog's budget.
type guardT struct {
	t         *testing.T
	mu        sync.Mutex
	abandoned bool
	skipped   bool
	skipMsg   string
	fatal     bool
	cleanups  []func()
}

// Each forwarder takes the lock itself (no closure), and marks itself a
// helper, so that failures point at the case's line.
func (g *guardT) Helper() { g.t.Helper() }

func (g *guardT) Name() string { return g.t.Name() }

func (g *guardT) Logf(format string, args ...any) {
	g.t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.abandoned {
		g.t.Logf(format, args...)
	}
}

func (g *guardT) Errorf(format string, args ...any) {
	g.t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.abandoned {
		g.t.Errorf(format, args...)
	}
}

func (g *guardT) Fatalf(format string, args ...any) {
	g.t.Helper()
	g.mu.Lock()
	if !g.abandoned {
		g.t.Errorf(format, args...)
		g.fatal = true
	}
	g.mu.Unlock()
	runtime.Goexit()
}

func (g *guardT) Skipf(format string, args ...any) {
	g.t.Helper()
	g.mu.Lock()
	if !g.abandoned {
		g.skipped = true
		g.skipMsg = fmt.Sprintf(format, args...)
	}
	g.mu.Unlock()
	runtime.Goexit()
}

func (g *guardT) Failed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.abandoned && g.t.Failed()
}

func (g *guardT) Context() context.Context { return g.t.Context() }

// Cleanup registers f to run when the case body ends, last in first out,
// before the test goroutine reports the verdict.
func (g *guardT) Cleanup(f func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cleanups = append(g.cleanups, f)
}

// runCleanups runs the cleanups LIFO; a Fatalf inside one ends only that one.
func (g *guardT) runCleanups() {
	for {
		g.mu.Lock()
		n := len(g.cleanups)
		if n == 0 {
			g.mu.Unlock()
			return
		}
		f := g.cleanups[n-1]
		g.cleanups = g.cleanups[:n-1]
		g.mu.Unlock()
		done := make(chan struct{})
		go func() {
			defer close(done)
			f()
		}()
		<-done
	}
}

func (g *guardT) abandon() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.abandoned = true
}

// finish reports a skip on the test goroutine, as package testing requires
// (a failure was already reported by Errorf).
func (g *guardT) finish() {
	g.mu.Lock()
	skipped, fatal, msg := g.skipped, g.fatal, g.skipMsg
	g.mu.Unlock()
	if skipped && !fatal && !g.t.Failed() {
		g.t.Skip(msg)
	}
}
