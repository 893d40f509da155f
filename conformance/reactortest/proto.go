package reactortest

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twistbench/twistbench/impls/reactor"
)

// proto is the suite's instrumented Protocol. It records every callback,
// checks the lifecycle invariants as they happen (violations are reported
// when the case ends, see checkFinal), and runs the case's hooks. Hooks run
// inside the callback, without proto's lock, so they may call the Transport.
type proto struct {
	e    *env
	name string

	onMade func(p *proto, t reactor.Transport)
	onData func(p *proto, b []byte)
	onLost func(p *proto, err error)

	busy atomic.Bool // a callback is running: detects overlap

	mu         sync.Mutex
	tr         reactor.Transport
	remote     net.Addr
	got        []byte
	dataCalls  int
	madeN      int
	lostN      int
	lostErr    error
	violations []string
	change     chan struct{}
	made, lost chan struct{}
}

func (e *env) newProto(name string) *proto {
	p := &proto{
		e:      e,
		name:   name,
		change: make(chan struct{}, 1),
		made:   make(chan struct{}),
		lost:   make(chan struct{}),
	}
	e.mu.Lock()
	e.protos = append(e.protos, p)
	e.mu.Unlock()
	return p
}

// echoProto echoes what it receives.
func (e *env) echoProto(name string) *proto {
	p := e.newProto(name)
	p.onData = func(p *proto, b []byte) { p.transport().Write(b) }
	return p
}

func (p *proto) setRemote(a net.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.remote = a
}

func (p *proto) violate(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.violations = append(p.violations, fmt.Sprintf(format, args...))
}

func (p *proto) notify() {
	select {
	case p.change <- struct{}{}:
	default:
	}
}

// enter marks a callback as running and reports one that overlaps another
// (concurrent, or re-entered from inside a callback).
func (p *proto) enter(cb string) {
	if !p.busy.CompareAndSwap(false, true) {
		p.violate("%s ran while another callback of the same connection was still running", cb)
		return
	}
}

func (p *proto) exit() { p.busy.Store(false) }

func (p *proto) ConnectionMade(t reactor.Transport) {
	p.enter("ConnectionMade")
	defer p.exit()
	p.mu.Lock()
	p.madeN++
	n, lost, calls := p.madeN, p.lostN, p.dataCalls
	if n == 1 {
		p.tr = t
	}
	p.mu.Unlock()
	switch {
	case n > 1:
		p.violate("ConnectionMade called %d times", n)
		return
	case lost > 0:
		p.violate("ConnectionMade called after ConnectionLost")
	case calls > 0:
		p.violate("ConnectionMade called after %d DataReceived", calls)
	}
	if t == nil {
		p.violate("ConnectionMade called with a nil Transport")
	}
	// The hook runs before the case hears of the callback, so that what
	// the hook records is there when the case looks.
	defer p.notify()
	defer close(p.made)
	if p.onMade != nil {
		p.onMade(p, t)
	}
}

func (p *proto) DataReceived(b []byte) {
	p.enter("DataReceived")
	defer p.exit()
	// Stay inside the callback a little: a back-end that runs callbacks
	// of one connection at once shows it here.
	runtime.Gosched()
	p.mu.Lock()
	p.dataCalls++
	made, lost := p.madeN, p.lostN
	p.got = append(p.got, b...)
	p.mu.Unlock()
	if made == 0 {
		p.violate("DataReceived(%d bytes) before ConnectionMade", len(b))
	}
	if lost > 0 {
		p.violate("DataReceived(%d bytes) after ConnectionLost", len(b))
	}
	p.notify()
	if p.onData != nil {
		p.onData(p, b)
	}
}

func (p *proto) ConnectionLost(err error) {
	p.enter("ConnectionLost")
	defer p.exit()
	p.mu.Lock()
	p.lostN++
	n, made := p.lostN, p.madeN
	if n == 1 {
		p.lostErr = err
	}
	p.mu.Unlock()
	if n > 1 {
		p.violate("ConnectionLost called %d times (second error: %v)", n, err)
		return
	}
	if made == 0 {
		p.violate("ConnectionLost(%v) without ConnectionMade", err)
	}
	defer p.notify()
	defer close(p.lost)
	if p.onLost != nil {
		p.onLost(p, err)
	}
}

// transport returns the transport given to ConnectionMade.
func (p *proto) transport() reactor.Transport {
	p.e.t.Helper()
	p.waitMade()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tr
}

func (p *proto) waitMade() {
	p.e.t.Helper()
	p.e.wait(p.made, "ConnectionMade of %s", p.name)
}

// waitLost waits for ConnectionLost and returns its error.
func (p *proto) waitLost() error {
	p.e.t.Helper()
	p.e.wait(p.lost, "ConnectionLost of %s", p.name)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lostErr
}

// isLost reports whether ConnectionLost has been called.
func (p *proto) isLost() bool {
	select {
	case <-p.lost:
		return true
	default:
		return false
	}
}

// received returns a copy of the bytes delivered so far.
func (p *proto) received() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]byte(nil), p.got...)
}

// waitData waits until at least n bytes have been delivered and returns a
// copy of them all.
func (p *proto) waitData(n int) []byte {
	p.e.t.Helper()
	for {
		p.mu.Lock()
		have := len(p.got)
		p.mu.Unlock()
		if have >= n {
			return p.received()
		}
		select {
		case <-p.change:
		case <-p.lost:
			p.mu.Lock()
			have, err := len(p.got), p.lostErr
			p.mu.Unlock()
			if have < n {
				p.e.t.Fatalf("%s: connection lost (%v) after %d of %d expected bytes", p.name, err, have, n)
			}
		case <-p.e.ctx.Done():
			p.e.t.Fatalf("timed out waiting for %d bytes on %s (got %d)", n, p.name, have)
		}
	}
}

// counts returns how often each callback ran.
func (p *proto) counts() (made, lost int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.madeN, p.lostN
}

// checkFinal reports the protocol's violations; it runs after Shutdown has
// returned, when no callback may be running or still to come.
func (p *proto) checkFinal() {
	p.mu.Lock()
	v := append([]string(nil), p.violations...)
	made, lost := p.madeN, p.lostN
	p.mu.Unlock()
	if made > 0 && lost == 0 {
		v = append(v, "ConnectionLost never called (checked after Shutdown returned)")
	}
	if len(v) > 0 {
		p.e.t.Errorf("%s broke the callback lifecycle: %s", p.name, strings.Join(v, "; "))
	}
}
