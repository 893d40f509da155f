package reactortest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/goleak"

	"github.com/twistbench/twistbench/conformance"
	"github.com/twistbench/twistbench/impls/reactor"
)

// runMode says who runs the case, which matters only to the case that
// re-executes the program (child.go).
type runMode struct {
	test    bool   // under go test, through Run
	backend string // through Record: the backend's name
}

// env is the fixture of one case: its T, a fresh reactor, a context that
// ends when the case's waits must give up, and everything to tear down.
type env struct {
	t        conformance.T
	id       string
	r        reactor.Reactor
	mode     runMode
	ctx      context.Context
	deadline time.Time // of ctx
	hardStop time.Time // when the runner abandons the case
	budget   time.Duration

	// Taken before the reactor is built, for the shutdown case.
	goroutinesBefore goleak.Option
	fdsBefore        map[string]string

	mu       sync.Mutex
	referees map[string]bool // local addresses of the referee's dials
	dialed   chan struct{}   // closed and replaced at each referee dial
	peers    []io.Closer
	protos   []*proto
	after    []func() // checks that need the reactor shut down
}

// afterShutdown runs check once the fixture's Shutdown has returned, when
// no callback may still come: the place to assert "only once" and "never".
func (e *env) afterShutdown(check func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.after = append(e.after, check)
}

// runCase is the fixture shared by Run and Record. The budget b splits as
// follows: waits give up (naming what they waited for) at 70%; the watchdog
// closes the case's peer connections and starts a Shutdown at 80%, to unblock
// a body stuck in the reactor; the runner abandons the case at 100%.
func runCase(t conformance.T, c testCase, newReactor reactor.New, b time.Duration, m runMode) {
	start := time.Now()
	e := &env{t: t, id: c.ID, mode: m, hardStop: start.Add(b), budget: b,
		referees: map[string]bool{}, dialed: make(chan struct{})}
	ctx, cancel := context.WithTimeout(t.Context(), b*7/10)
	t.Cleanup(cancel)
	e.ctx = ctx
	e.deadline, _ = ctx.Deadline()

	primeNetpoll()
	if c.warmUp {
		if err := warmUp(ctx, newReactor); err != nil {
			t.Fatalf("warming up a throwaway reactor: %v", err)
		}
	}
	e.goroutinesBefore = goleak.IgnoreCurrent()
	e.fdsBefore = openFDs()

	r, err := newReactor()
	if err != nil {
		t.Fatalf("newReactor: %v", err)
	}
	if r == nil {
		t.Fatalf("newReactor returned a nil Reactor and no error")
	}
	e.r = r
	t.Cleanup(e.finish) // registered first, so it runs after every other cleanup

	wd := time.AfterFunc(b*8/10, e.watchdog)
	t.Cleanup(func() { wd.Stop() })
	c.run(e)
}

// primeNetpoll makes the Go runtime create its own poller descriptors now,
// so that the descriptor count taken before a case does not later mistake
// them for the reactor's.
func primeNetpoll() {
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
	}
}

// warmUp has a throwaway reactor accept a connection and make one, then
// shuts it down (see testCase.warmUp).
func warmUp(ctx context.Context, newReactor reactor.New) (err error) {
	r, err := newReactor()
	if err != nil {
		return err
	}
	defer func() {
		if serr := r.Shutdown(ctx); serr != nil && err == nil {
			err = fmt.Errorf("Shutdown: %w", serr)
		}
	}()
	ln, err := r.Listen("127.0.0.1:0", reactor.FactoryFunc(func(net.Addr) reactor.Protocol { return &childEcho{} }))
	if err != nil {
		return err
	}
	ended := make(chan error, 1)
	r.Connect(ctx, ln.Addr().String(), reactor.ClientFuncs{
		Build:  func(net.Addr) reactor.Protocol { return &loseAtOnce{} },
		Failed: func(_ string, err error) { ended <- err },
		Lost:   func(_ string, err error) { ended <- err },
	})
	select {
	case err := <-ended:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no ClientConnectionLost: %w", ctx.Err())
	}
}

// loseAtOnce writes a byte and closes.
type loseAtOnce struct{}

func (loseAtOnce) ConnectionMade(t reactor.Transport) {
	t.Write([]byte("x"))
	t.LoseConnection()
}
func (loseAtOnce) DataReceived([]byte)  {}
func (loseAtOnce) ConnectionLost(error) {}

// watchdog is nettest's timeoutWrapper: the case overran, so close what it
// waits on, the way TestConn closes its pipe.
func (e *env) watchdog() {
	e.t.Errorf("watchdog: case still running after 80%% of its budget; closing its peer connections and shutting the reactor down")
	e.closePeers()
	go func() {
		ctx, cancel := context.WithDeadline(context.Background(), e.hardStop)
		defer cancel()
		_ = e.r.Shutdown(ctx)
	}()
}

// finish shuts the reactor down (again, if the case did: later calls must
// return the first result) and then checks every protocol the case built
// against the lifecycle invariants: once Shutdown has returned, no callback
// may still be running or still to come.
func (e *env) finish() {
	e.closePeers()
	ctx, cancel := context.WithDeadline(context.Background(), e.hardStop.Add(-e.budget/20))
	defer cancel()
	if err := e.r.Shutdown(ctx); err != nil {
		e.t.Errorf("Shutdown: %v", err)
	}
	e.mu.Lock()
	protos := append([]*proto(nil), e.protos...)
	after := append([]func(){}, e.after...)
	e.mu.Unlock()
	for _, p := range protos {
		p.checkFinal()
	}
	for _, check := range after {
		check()
	}
}

func (e *env) closePeers() {
	e.mu.Lock()
	peers := e.peers
	e.peers = nil
	e.mu.Unlock()
	for _, c := range peers {
		c.Close()
	}
}

func (e *env) addPeer(c io.Closer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.peers = append(e.peers, c)
}

// wait blocks until ch is closed, or fails the case naming what it waited
// for when the case's deadline passes.
func (e *env) wait(ch <-chan struct{}, format string, args ...any) {
	e.t.Helper()
	select {
	case <-ch:
	case <-e.ctx.Done():
		e.t.Fatalf("timed out waiting for %s", fmt.Sprintf(format, args...))
	}
}

// within is a bounded observation window for a property that is an absence
// ("nothing is delivered while paused"): it is not synchronisation, there is
// nothing to wait for. It reports whether ch closed within d.
func (e *env) within(ch <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	case <-e.ctx.Done():
		return false
	}
}

// listen starts a reactor listener on a free loopback port.
func (e *env) listen(f reactor.Factory) reactor.Listener {
	e.t.Helper()
	ln, err := e.r.Listen("127.0.0.1:0", f)
	if err != nil {
		e.t.Fatalf("Listen(127.0.0.1:0): %v", err)
	}
	if ln == nil {
		e.t.Fatalf("Listen(127.0.0.1:0) returned a nil Listener and no error")
	}
	e.t.Cleanup(func() { ln.Close() })
	return ln
}

// stdListen opens a plain net listener: the referee's server.
func (e *env) stdListen() *net.TCPListener {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatalf("referee listen: %v", err)
	}
	e.addPeer(ln)
	tl := ln.(*net.TCPListener)
	tl.SetDeadline(e.deadline)
	return tl
}

// dial connects the referee to addr.
func (e *env) dial(addr net.Addr) *net.TCPConn {
	e.t.Helper()
	d := net.Dialer{Deadline: e.deadline}
	c, err := d.DialContext(e.ctx, "tcp", addr.String())
	if err != nil {
		e.t.Fatalf("referee dial %v: %v", addr, err)
	}
	e.addReferee(c)
	c.SetDeadline(e.deadline)
	return c.(*net.TCPConn)
}

// addReferee records a referee connection: closed at the end, and known to
// fromReferee by its address.
func (e *env) addReferee(c net.Conn) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.peers = append(e.peers, c)
	e.referees[c.LocalAddr().String()] = true
	close(e.dialed)
	e.dialed = make(chan struct{})
}

// strayWait bounds how long fromReferee waits for the referee's dial to
// return once the server side has accepted it (the two race; the dial has
// completed in the kernel by then, so this is only scheduling).
const strayWait = 3 * time.Second

// fromReferee reports whether a connection accepted by the reactor comes
// from this case's referee. Loopback ports are shared with every other
// process on the host: another test that dials a port it just closed (the
// usual way to get a refused address) can reach this case's listener, which
// reused the port. Factories that hand out the case's protocols refuse such
// strays instead of giving them a protocol the case is watching.
func (e *env) fromReferee(remote net.Addr) bool {
	if remote == nil {
		return false
	}
	timer := time.NewTimer(strayWait)
	defer timer.Stop()
	for {
		e.mu.Lock()
		ok, ch := e.referees[remote.String()], e.dialed
		e.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-timer.C:
			e.t.Logf("refused a connection from %v: not this case's referee (another process on this host?)", remote)
			return false
		case <-e.ctx.Done():
			return false
		}
	}
}

// dialRacing connects the referee to a server that may abort the
// connection at once: the kernel can then report the reset to connect
// itself, which is not a failure here. It returns nil in that case.
func (e *env) dialRacing(addr net.Addr) *net.TCPConn {
	e.t.Helper()
	d := net.Dialer{Deadline: e.deadline}
	c, err := d.DialContext(e.ctx, "tcp", addr.String())
	if errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	if err != nil {
		e.t.Fatalf("referee dial %v: %v", addr, err)
	}
	e.addReferee(c)
	c.SetDeadline(e.deadline)
	return c.(*net.TCPConn)
}

// accept takes the next connection on a referee listener.
func (e *env) accept(ln *net.TCPListener) *net.TCPConn {
	e.t.Helper()
	c, err := ln.AcceptTCP()
	if err != nil {
		e.t.Fatalf("referee accept: %v", err)
	}
	e.addPeer(c)
	c.SetDeadline(e.deadline)
	return c
}

// send writes b on the referee's connection.
func (e *env) send(c net.Conn, b []byte) {
	e.t.Helper()
	if _, err := c.Write(b); err != nil {
		e.t.Fatalf("referee write: %v", err)
	}
}

// recvFull reads exactly n bytes from the referee's connection.
func (e *env) recvFull(c net.Conn, n int, what string) []byte {
	e.t.Helper()
	b := make([]byte, n)
	if k, err := io.ReadFull(c, b); err != nil {
		e.t.Fatalf("referee reading %s: got %d of %d bytes: %v", what, k, n, err)
	}
	return b
}

// recvAll reads until the connection ends and returns what came and how it
// ended: nil for EOF, the error for a reset. Running into the case's
// deadline fails the case.
func (e *env) recvAll(c net.Conn, what string) ([]byte, error) {
	e.t.Helper()
	var buf []byte
	tmp := make([]byte, 256<<10)
	for {
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			e.t.Fatalf("timed out reading %s to its end (got %d bytes, no EOF)", what, len(buf))
		}
		return buf, err
	}
}

// expectEOF reads until the end and fails unless exactly want came, then a
// clean EOF.
func (e *env) expectEOF(c net.Conn, want []byte, what string) {
	e.t.Helper()
	got, err := e.recvAll(c, what)
	if err != nil {
		e.t.Errorf("%s: connection ended with %v, want a clean EOF", what, err)
	}
	if !equalBytes(got, want) {
		e.t.Errorf("%s: %s", what, diffBytes(got, want))
	}
}

// serve listens with a factory that hands out p for the first connection,
// dials it from the referee and waits for ConnectionMade.
func (e *env) serve(p *proto) (peer *net.TCPConn, ln reactor.Listener) {
	e.t.Helper()
	ln = e.listen(e.factory(p))
	peer = e.dial(ln.Addr())
	p.waitMade()
	return peer, ln
}

// factory returns a Factory that hands out ps in order, one per connection
// from the referee; a connection beyond them fails the case and is refused,
// and so is a stray (see fromReferee).
func (e *env) factory(ps ...*proto) reactor.Factory {
	var mu sync.Mutex
	i := 0
	return reactor.FactoryFunc(func(remote net.Addr) reactor.Protocol {
		if !e.fromReferee(remote) {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if i >= len(ps) {
			e.t.Errorf("unexpected connection from %v: the case expected %d", remote, len(ps))
			return nil
		}
		p := ps[i]
		i++
		p.setRemote(remote)
		return p
	})
}

// manyFactory builds a fresh protocol from mk for every connection.
func (e *env) manyFactory(mk func() *proto) reactor.Factory {
	return reactor.FactoryFunc(func(remote net.Addr) reactor.Protocol {
		p := mk()
		p.setRemote(remote)
		return p
	})
}

// client records what a ClientFactory hears.
type client struct {
	e      *env
	mu     sync.Mutex
	build  func(remote net.Addr) *proto // nil: the case expects no connection
	built  int
	failed []error
	lost   []error
	addrs  []string
	events []string
	change chan struct{}
	onLost func(addr string, err error) // runs inside ClientConnectionLost
}

func (e *env) newClient(build func(remote net.Addr) *proto) *client {
	return &client{e: e, build: build, change: make(chan struct{}, 1)}
}

func (c *client) notify() {
	select {
	case c.change <- struct{}{}:
	default:
	}
}

func (c *client) BuildProtocol(remote net.Addr) reactor.Protocol {
	c.mu.Lock()
	c.built++
	c.events = append(c.events, "BuildProtocol")
	c.mu.Unlock()
	defer c.notify()
	if c.build == nil {
		c.e.t.Errorf("BuildProtocol(%v) called, but the connection should not have been made", remote)
		return nil
	}
	p := c.build(remote)
	if p == nil {
		return nil
	}
	p.setRemote(remote)
	return p
}

func (c *client) ClientConnectionFailed(addr string, err error) {
	c.mu.Lock()
	c.failed = append(c.failed, err)
	c.addrs = append(c.addrs, addr)
	c.events = append(c.events, "ClientConnectionFailed")
	c.mu.Unlock()
	c.notify()
}

func (c *client) ClientConnectionLost(addr string, err error) {
	c.mu.Lock()
	hook := c.onLost
	c.mu.Unlock()
	if hook != nil { // first, so that the case sees what it recorded
		hook(addr, err)
	}
	c.mu.Lock()
	c.lost = append(c.lost, err)
	c.addrs = append(c.addrs, addr)
	c.events = append(c.events, "ClientConnectionLost")
	c.mu.Unlock()
	c.notify()
}

// expect checks, once the reactor is shut down, how often each callback of
// the client factory ran.
func (c *client) expect(e *env, built, failed, lost int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.built != built || len(c.failed) != failed || len(c.lost) != lost {
		e.t.Errorf("client factory heard BuildProtocol %d, ClientConnectionFailed %d, ClientConnectionLost %d times; want %d, %d, %d (in order: %s)",
			c.built, len(c.failed), len(c.lost), built, failed, lost, strings.Join(c.events, ", "))
	}
}

// waitUntil waits until cond (called under c.mu) holds.
func (c *client) waitUntil(what string, cond func() bool) {
	for {
		c.mu.Lock()
		ok := cond()
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.change:
		case <-c.e.ctx.Done():
			c.mu.Lock()
			ev := strings.Join(c.events, ", ")
			c.mu.Unlock()
			c.e.t.Fatalf("timed out waiting for %s (client factory heard: [%s])", what, ev)
		}
	}
}

// connect has the reactor connect to a referee listener with client c and
// returns the referee's end of the connection.
func (e *env) connect(c *client) (peer *net.TCPConn, ln *net.TCPListener) {
	ln = e.stdListen()
	e.r.Connect(e.ctx, ln.Addr().String(), c)
	return e.accept(ln), ln
}

// openFDs maps each open descriptor of this process to what it points at
// (Linux /proc/self/fd); nil where that cannot be read.
func openFDs() map[string]string {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	m := make(map[string]string, len(ents))
	for _, d := range ents {
		target, err := os.Readlink("/proc/self/fd/" + d.Name())
		if err != nil {
			continue // the directory's own descriptor, closed by now
		}
		m[d.Name()] = target
	}
	return m
}

// newFDs lists descriptors open now that were not open (or pointed
// elsewhere) in before.
func newFDs(before map[string]string) []string {
	var out []string
	for fd, target := range openFDs() {
		if before[fd] != target {
			out = append(out, fd+" -> "+target)
		}
	}
	sort.Strings(out)
	return out
}

func equalBytes(a, b []byte) bool { return string(a) == string(b) }

// diffBytes describes how got differs from want without dumping megabytes.
func diffBytes(got, want []byte) string {
	n := min(len(got), len(want))
	i := 0
	for i < n && got[i] == want[i] {
		i++
	}
	if i == n && len(got) == len(want) {
		return "equal"
	}
	if i == n {
		return fmt.Sprintf("got %d bytes, want %d (the first %d agree)", len(got), len(want), n)
	}
	return fmt.Sprintf("got %d bytes, want %d; first difference at byte %d: got %s, want %s",
		len(got), len(want), i, excerpt(got, i), excerpt(want, i))
}

func excerpt(b []byte, i int) string {
	end := min(len(b), i+16)
	return fmt.Sprintf("%q", b[i:end])
}
