package reactortest

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/twistbench/twistbench/conformance"
	"github.com/twistbench/twistbench/impls/reactor"
	"github.com/twistbench/twistbench/impls/reactor/stdnet"
)

func TestMain(m *testing.M) {
	// Child cases re-enter this binary through TestPlantedFaults/<fault>.
	testBinaryChildArgs = func(backend string) []string {
		return []string{"-test.run=^TestPlantedFaults$/^" + regexp.QuoteMeta(backend) + "$", "-test.count=1"}
	}
	goleak.VerifyTestMain(m)
}

// TestStdnet proves the suite passes on the known-good back-end, as
// testing/fstest's mapfs_test.go does for TestFS.
func TestStdnet(t *testing.T) {
	if testing.Short() {
		t.Skip("the whole suite on stdnet runs in impls/reactor/stdnet's tests; -short skips it here")
	}
	Run(t, stdnet.New)
}

// A fault is a good reactor with one planted bug, and the cases that must
// catch it. Each fault wraps stdnet, the known-good back-end.
//
// TestFaultMatrix (opt-in) lists every case that catches each fault; on
// 2026-11-25 it gave:
//
//	lose-drops-pending      LIFE-003 WRITE-001..004,006,007 DATA-002 CLOSE-001,002 CB-001
//	                        FLOW-002 CLIENT-004 LOAD-002 ECHO-001..005 POEM-001
//	lost-twice              41 cases (every case whose protocol's connection ends
//	                        before Shutdown: the lifecycle check after Shutdown)
//	concurrent-callbacks    DATA-002 FLOW-001 PANIC-001 CONC-001 ECHO-004,005 POEM-001,002
//	reorders-writesequence  WRITE-002 WRITE-007
//	leaks-goroutine         RES-003
//	never-reports-refused   CLIENT-001 POEM-002
//	write-blocks            WRITE-003 CLOSE-005 ECHO-005
//	shutdown-fails          every case (the fixture checks Shutdown's error)
//	accept-dies-on-emfile   RES-001
//
// TestPlantedFaults asserts the most specific of them, so that a change
// that blinds the suite to a fault fails here.
type fault struct {
	name    string
	catches []string // case IDs that must fail, the most specific first
	message string   // a fragment of the first case's log: it failed for this fault
	wrap    wrapper
}

var faults = []fault{
	{
		name:    "lose-drops-pending",
		catches: []string{"RX-CLOSE-001", "RX-LIFE-003", "RX-CLOSE-002"},
		message: "32 MiB written before LoseConnection",
		wrap: wrapper{transport: func(t reactor.Transport, _ *connState) reactor.Transport {
			return loseAborts{t}
		}},
	},
	{
		name:    "lost-twice",
		catches: []string{"RX-LIFE-002", "RX-LIFE-003", "RX-CLOSE-002"},
		message: "ConnectionLost called 2 times",
		wrap: wrapper{proto: func(p reactor.Protocol) reactor.Protocol {
			return lostTwice{p}
		}},
	},
	{
		name:    "concurrent-callbacks",
		catches: []string{"RX-CONC-001"},
		message: "callbacks overlapped",
		wrap: wrapper{proto: func(p reactor.Protocol) reactor.Protocol {
			return &concurrentData{Protocol: p}
		}},
	},
	{
		name:    "reorders-writesequence",
		catches: []string{"RX-WRITE-002", "RX-WRITE-007"},
		message: "Write, WriteSequence of 16 slices, Write",
		wrap: wrapper{transport: func(t reactor.Transport, _ *connState) reactor.Transport {
			return reversedSequence{t}
		}},
	},
	{
		name:    "leaks-goroutine",
		catches: []string{"RX-RES-003"},
		message: "goroutines left after Shutdown returned",
		wrap:    wrapper{leak: true},
	},
	{
		name:    "never-reports-refused",
		catches: []string{"RX-CLIENT-001"},
		message: "timed out waiting for ClientConnectionFailed",
		wrap: wrapper{client: func(cf reactor.ClientFactory) reactor.ClientFactory {
			return swallowRefused{cf}
		}},
	},
	{
		// Not in the brief's list: proves the watchdog names a hang.
		name:    "write-blocks",
		catches: []string{"RX-WRITE-003"},
		message: "Write(64 MiB) to return",
		wrap: wrapper{transport: func(t reactor.Transport, s *connState) reactor.Transport {
			return blockingWrite{t, s}
		}},
	},
	{
		// Not in the brief's list: proves the fixture checks Shutdown.
		name:    "shutdown-fails",
		catches: []string{"RX-LIFE-001"},
		message: "Shutdown: planted: shutdown failed",
		wrap:    wrapper{shutdownErr: true},
	},
	{
		// Not in the brief's list: proves the child-process case.
		name:    "accept-dies-on-emfile",
		catches: []string{"RX-RES-001"},
		message: "stopped listening",
		wrap:    wrapper{listener: func(ln net.Listener) net.Listener { return dieOnEMFILE{ln} }},
	},
}

// faultTimeout is the budget of a case run against a fault: short, since
// some faults are caught only by a case timing out.
const faultTimeout = 4 * time.Second

// TestPlantedFaults runs, for each planted fault, the cases that must catch
// it, and asserts that each of them fails. The cases run through record, as
// the harness runs them, so their failures are verdicts and not failures of
// this test.
func TestPlantedFaults(t *testing.T) {
	stop := make(chan struct{}) // ends the goroutines leaked on purpose
	t.Cleanup(func() { close(stop) })
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			match := regexp.MustCompile("^(" + strings.Join(f.catches, "|") + ")$")
			results := record(f.wrap.newReactor(stop), f.name, faultTimeout, match)
			if InChild() {
				return // the verdict line for the parent is printed
			}
			if len(results) != len(f.catches) {
				t.Fatalf("ran %d cases, want %d (%v)", len(results), len(f.catches), f.catches)
			}
			for _, r := range results {
				if r.Verdict != conformance.Fail {
					t.Errorf("%s: verdict %s on a back-end that %s; want fail (log:\n%s)", r.Case, r.Verdict, f.name, r.Log)
					continue
				}
				t.Logf("%s catches it: %s", r.Case, firstLine(r.Message))
				if r.Case == f.catches[0] && !strings.Contains(r.Log, f.message) {
					t.Errorf("%s failed, but not for the planted fault: want %q in the log:\n%s", r.Case, f.message, r.Log)
				}
			}
		})
	}
}

// TestFaultMatrix runs every case against every fault and logs which
// cases catch which fault: the table in the suite's documentation. It takes
// minutes, so it runs only when asked.
func TestFaultMatrix(t *testing.T) {
	if os.Getenv("REACTORTEST_FAULT_MATRIX") == "" {
		t.Skip("set REACTORTEST_FAULT_MATRIX=1 to print which cases catch which planted fault")
	}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	for _, f := range faults {
		var caught []string
		for _, r := range record(f.wrap.newReactor(stop), f.name, faultTimeout, nil) {
			if r.Verdict == conformance.Fail {
				caught = append(caught, r.Case)
			}
		}
		t.Logf("%-24s caught by %s", f.name, strings.Join(caught, " "))
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// TestCases checks the table: unique, well-formed IDs, a level from the
// list, a one-sentence statement, and Cases in table order.
func TestCases(t *testing.T) {
	id := regexp.MustCompile(`^RX-[A-Z]+-\d{3}$`)
	seen := map[string]bool{}
	infos := Cases()
	for i, c := range table() {
		if !id.MatchString(c.ID) {
			t.Errorf("case %d: ID %q is not of the form RX-CATEGORY-NNN", i, c.ID)
		}
		if seen[c.ID] {
			t.Errorf("case ID %s appears twice", c.ID)
		}
		seen[c.ID] = true
		switch c.Level {
		case conformance.Must, conformance.Should, conformance.May:
		default:
			t.Errorf("%s: level %q", c.ID, c.Level)
		}
		if c.Category == "" || !strings.HasSuffix(c.Statement, ".") || strings.Count(c.Statement, ". ") > 0 {
			t.Errorf("%s: needs a category and a one-sentence statement, got %q / %q", c.ID, c.Category, c.Statement)
		}
		if c.run == nil {
			t.Errorf("%s: no body", c.ID)
		}
		if infos[i] != c.Info {
			t.Errorf("Cases()[%d] = %v, want %v", i, infos[i], c.Info)
		}
	}
}

// TestRecord checks what Record adds to conformance.Record: the suite and
// back-end names, and a pass on a good back-end.
func TestRecord(t *testing.T) {
	res := record(stdnet.New, "stdnet", 0, regexp.MustCompile(`^RX-LIFE-00[12]$`))
	if len(res) != 2 {
		t.Fatalf("got %d results, want 2", len(res))
	}
	for _, r := range res {
		if r.Suite != Suite || r.Backend != "stdnet" || r.Verdict != conformance.Pass {
			t.Errorf("%s: suite %q backend %q verdict %s, want reactor, stdnet, pass; log:\n%s", r.Case, r.Suite, r.Backend, r.Verdict, r.Log)
		}
	}
}

// TestRecordNewReactorError: a constructor that fails gives a failed case
// that names the error, not a crash.
func TestRecordNewReactorError(t *testing.T) {
	broken := func() (reactor.Reactor, error) { return nil, errors.New("engine missing") }
	res := record(broken, "broken", time.Second, regexp.MustCompile(`^RX-LIFE-001$`))
	if len(res) != 1 || res[0].Verdict != conformance.Fail || !strings.Contains(res[0].Message, "engine missing") {
		t.Fatalf("got %+v, want one failed case naming the constructor's error", res)
	}
}

func TestAnchoredRun(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"TestConformance/RX-RES-001", "^TestConformance$/^RX-RES-001$"},
		{"TestX/stdnet/RX-RES-001", "^TestX$/^stdnet$/^RX-RES-001$"},
		{"TestA.B", `^TestA\.B$`},
	} {
		if got := anchoredRun(tc.name); got != tc.want {
			t.Errorf("anchoredRun(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// wrapper plants a fault around stdnet: in every protocol, every
// transport, every client factory, or every listener.
type wrapper struct {
	proto       func(reactor.Protocol) reactor.Protocol
	transport   func(reactor.Transport, *connState) reactor.Transport
	client      func(reactor.ClientFactory) reactor.ClientFactory
	listener    func(net.Listener) net.Listener
	leak        bool // start a goroutine per connection that outlives Shutdown
	shutdownErr bool // Shutdown shuts down, then reports an error anyway
}

func (w wrapper) newReactor(stop <-chan struct{}) reactor.New {
	return func() (reactor.Reactor, error) {
		r, err := stdnet.New()
		if err != nil {
			return nil, err
		}
		return &faulty{Reactor: r, w: w, stop: stop}, nil
	}
}

type faulty struct {
	reactor.Reactor
	w    wrapper
	stop <-chan struct{}
}

func (f *faulty) factory(inner reactor.Factory) reactor.Factory {
	return reactor.FactoryFunc(func(remote net.Addr) reactor.Protocol { return f.build(inner, remote) })
}

func (f *faulty) build(inner reactor.Factory, remote net.Addr) reactor.Protocol {
	if f.w.leak {
		go func() { <-f.stop }()
	}
	p := inner.BuildProtocol(remote)
	if p == nil {
		return nil
	}
	if f.w.proto != nil {
		p = f.w.proto(p)
	}
	if f.w.transport != nil {
		p = &wrapTransport{Protocol: p, wrap: f.w.transport, state: &connState{lost: make(chan struct{}), stop: f.stop}}
	}
	return p
}

func (f *faulty) Listen(addr string, fac reactor.Factory) (reactor.Listener, error) {
	if f.w.listener == nil {
		return f.Reactor.Listen(addr, f.factory(fac))
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return f.Reactor.Serve(f.w.listener(ln), f.factory(fac))
}

func (f *faulty) Shutdown(ctx context.Context) error {
	err := f.Reactor.Shutdown(ctx)
	if f.w.shutdownErr && err == nil {
		err = errors.New("planted: shutdown failed")
	}
	return err
}

func (f *faulty) Serve(ln net.Listener, fac reactor.Factory) (reactor.Listener, error) {
	return f.Reactor.Serve(ln, f.factory(fac))
}

func (f *faulty) Connect(ctx context.Context, addr string, cf reactor.ClientFactory) {
	var c reactor.ClientFactory = clientWrap{ClientFactory: cf, f: f}
	if f.w.client != nil {
		c = f.w.client(c)
	}
	f.Reactor.Connect(ctx, addr, c)
}

type clientWrap struct {
	reactor.ClientFactory
	f *faulty
}

func (c clientWrap) BuildProtocol(remote net.Addr) reactor.Protocol {
	return c.f.build(c.ClientFactory, remote)
}

// connState is what a transport fault knows of its connection.
type connState struct {
	once sync.Once
	lost chan struct{}
	stop <-chan struct{} // the test is over: unblock whatever a fault blocked
}

type wrapTransport struct {
	reactor.Protocol
	wrap  func(reactor.Transport, *connState) reactor.Transport
	state *connState
}

func (w *wrapTransport) ConnectionMade(t reactor.Transport) {
	w.Protocol.ConnectionMade(w.wrap(t, w.state))
}

func (w *wrapTransport) ConnectionLost(err error) {
	w.state.once.Do(func() { close(w.state.lost) })
	w.Protocol.ConnectionLost(err)
}

// loseAborts drops pending writes on LoseConnection.
type loseAborts struct{ reactor.Transport }

func (t loseAborts) LoseConnection() { t.Transport.AbortConnection() }

// reversedSequence writes WriteSequence's slices last first.
type reversedSequence struct{ reactor.Transport }

func (t reversedSequence) WriteSequence(ps [][]byte) {
	for i := len(ps) - 1; i >= 0; i-- {
		t.Transport.Write(ps[i])
	}
}

// blockingWrite makes a large Write wait until the connection ends, as a
// transport without an outbound buffer would. (Called from a callback, it
// deadlocks its connection for good, as such a transport would: the test's
// end releases it, so that the abandoned goroutines can finish.)
type blockingWrite struct {
	reactor.Transport
	s *connState
}

func (t blockingWrite) Write(p []byte) {
	t.Transport.Write(p)
	if len(p) > 1<<20 {
		select {
		case <-t.s.lost:
		case <-t.s.stop:
		}
	}
}

// lostTwice calls ConnectionLost twice.
type lostTwice struct{ reactor.Protocol }

func (p lostTwice) ConnectionLost(err error) {
	p.Protocol.ConnectionLost(err)
	p.Protocol.ConnectionLost(err)
}

// concurrentData runs each DataReceived in its own goroutine, as a
// back-end with a worker pool and no per-connection ordering would.
type concurrentData struct {
	reactor.Protocol
	wg sync.WaitGroup
	t  reactor.Transport
}

func (p *concurrentData) ConnectionMade(t reactor.Transport) {
	p.t = t
	p.Protocol.ConnectionMade(t)
}

func (p *concurrentData) DataReceived(b []byte) {
	b = append([]byte(nil), b...)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer func() { // the pool's own recovery: a panic would end the test binary
			if v := recover(); v != nil {
				p.t.AbortConnection()
			}
		}()
		p.Protocol.DataReceived(b)
	}()
}

func (p *concurrentData) ConnectionLost(err error) {
	p.wg.Wait()
	p.Protocol.ConnectionLost(err)
}

// swallowRefused never reports a refused connect.
type swallowRefused struct{ reactor.ClientFactory }

func (c swallowRefused) ClientConnectionFailed(addr string, err error) {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return
	}
	c.ClientFactory.ClientConnectionFailed(addr, err)
}

// dieOnEMFILE turns running out of descriptors into the end of the
// listener, as an accept loop that gives up on any error would.
type dieOnEMFILE struct{ net.Listener }

func (l dieOnEMFILE) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
		l.Listener.Close()
		return nil, net.ErrClosed
	}
	return c, err
}

// TestRunAbandonsHungCase checks the promise of Run's watchdog: a case
// stuck in a call that ignores every deadline fails by name at the end of
// its budget, instead of hanging the test binary. The hung case runs in a
// child test binary (TestRunHungCaseChild), since its failure is the point.
func TestRunAbandonsHungCase(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestRunHungCaseChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "REACTORTEST_HUNG_CHILD=1")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the child test binary hung: %s", out)
	}
	if err == nil {
		t.Fatalf("the child passed; want its hung case to fail:\n%s", out)
	}
	for _, want := range []string{
		"watchdog: case still running after 80% of its budget",
		"RX-TEST-HANG: hung for 2s, blocked in a call that does not return",
		"--- FAIL: TestRunHungCaseChild",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("child output lacks %q:\n%s", want, out)
		}
	}
}

func TestRunHungCaseChild(t *testing.T) {
	if os.Getenv("REACTORTEST_HUNG_CHILD") == "" {
		t.Skip("the child of TestRunAbandonsHungCase")
	}
	hung := testCase{
		Info: info("RX-TEST-HANG", "test", conformance.Must, "Blocks forever, ignoring its context."),
		run:  func(e *env) { select {} },
	}
	runTest(t, hung, stdnet.New, 2*time.Second)
}
