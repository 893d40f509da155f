package reactortest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twistbench/twistbench/conformance"
	"github.com/twistbench/twistbench/impls/reactor"
)

// halfProto is a proto that also implements reactor.HalfCloseableProtocol.
type halfProto struct {
	*proto
	mu         sync.Mutex
	n          int
	onReadLost func(h *halfProto)
	readLost   chan struct{}
}

func (h *halfProto) ReadConnectionLost() {
	h.enter("ReadConnectionLost")
	defer h.exit()
	h.mu.Lock()
	h.n++
	n := h.n
	h.mu.Unlock()
	if n > 1 {
		h.violate("ReadConnectionLost called %d times", n)
		return
	}
	if h.isLost() {
		h.violate("ReadConnectionLost after ConnectionLost")
	}
	close(h.readLost)
	if h.onReadLost != nil {
		h.onReadLost(h)
	}
}

var halfCloseCases = []testCase{
	{
		// test_tcp: HalfCloseTests / loseWriteConnection.
		Info: info("RX-HALF-001", "half-close", conformance.May,
			"A transport that implements reactor.HalfCloser shuts down only its write side on LoseWriteConnection: the peer reads the pending bytes and EOF, and can still send."),
		run: func(e *env) {
			p := e.newProto("server protocol")
			peer, _ := e.serve(p)
			t := p.transport()
			hc, ok := t.(reactor.HalfCloser)
			if !ok {
				e.t.Skipf("the transport (%T) does not implement reactor.HalfCloser", t)
			}
			t.Write([]byte("outbound"))
			hc.LoseWriteConnection()
			e.expectEOF(peer, []byte("outbound"), "the bytes before LoseWriteConnection")
			if p.isLost() {
				e.t.Fatalf("ConnectionLost after LoseWriteConnection alone; the read side must stay open")
			}
			e.send(peer, []byte("inbound"))
			if got := p.waitData(len("inbound")); string(got) != "inbound" {
				e.t.Errorf("after LoseWriteConnection the protocol received %q, want \"inbound\"", got)
			}
			peer.Close()
			if err := p.waitLost(); err != nil {
				e.t.Errorf("ConnectionLost(%v) after both sides closed, want nil", err)
			}
		},
	},
	{
		// test_tcp: HalfCloseTests / readConnectionLost.
		Info: info("RX-HALF-002", "half-close", conformance.May,
			"A protocol that implements reactor.HalfCloseableProtocol hears ReadConnectionLost once, after the data, when the peer shuts down its write side, and can still write until LoseConnection."),
		run: func(e *env) {
			h := &halfProto{proto: e.newProto("half-closeable protocol"), readLost: make(chan struct{})}
			h.onReadLost = func(h *halfProto) {
				t := h.transport()
				t.Write([]byte("reply after half-close"))
				t.LoseConnection()
			}
			var once sync.Once
			ln := e.listen(reactor.FactoryFunc(func(remote net.Addr) reactor.Protocol {
				var p reactor.Protocol
				if e.fromReferee(remote) {
					once.Do(func() { h.setRemote(remote); p = h })
				}
				return p
			}))
			peer := e.dial(ln.Addr())
			h.waitMade()
			e.send(peer, []byte("request"))
			if err := peer.CloseWrite(); err != nil {
				e.t.Fatalf("referee CloseWrite: %v", err)
			}
			select {
			case <-h.readLost:
			case <-h.lost:
				select {
				case <-h.readLost:
				default:
					if err := h.waitLost(); err != nil {
						e.t.Fatalf("ConnectionLost(%v) on the peer's half-close, want nil (or ReadConnectionLost)", err)
					}
					e.t.Skipf("the back-end treats a peer's half-close as a full close: HalfCloseableProtocol is not supported")
				}
			case <-e.ctx.Done():
				e.t.Fatalf("timed out waiting for ReadConnectionLost or ConnectionLost after the peer's half-close")
			}
			if got := h.received(); string(got) != "request" {
				e.t.Errorf("before ReadConnectionLost the protocol received %q, want \"request\"", got)
			}
			e.expectEOF(peer, []byte("reply after half-close"), "the reply written after ReadConnectionLost")
			if err := h.waitLost(); err != nil {
				e.t.Errorf("ConnectionLost(%v) after LoseConnection, want nil", err)
			}
		},
	},
	{
		Info: info("RX-HALF-003", "half-close", conformance.Must,
			"A protocol that does not implement HalfCloseableProtocol hears ConnectionLost(nil) after all the data when the peer shuts down its write side, and the connection is closed."),
		run: func(e *env) {
			p := e.newProto("server protocol")
			peer, _ := e.serve(p)
			e.send(peer, []byte("last words"))
			if err := peer.CloseWrite(); err != nil {
				e.t.Fatalf("referee CloseWrite: %v", err)
			}
			if err := p.waitLost(); err != nil {
				e.t.Errorf("ConnectionLost(%v) after the peer's half-close, want nil", err)
			}
			if got := p.received(); string(got) != "last words" {
				e.t.Errorf("received %q, want \"last words\"", got)
			}
			e.expectEOF(peer, nil, "the connection after the peer's half-close")
		},
	},
}

// pauseWindow is how long a paused connection is watched for deliveries
// that must not happen. It proves an absence, so nothing can end it early;
// it is short, and a back-end that ignores PauseReading delivers within it
// on loopback by orders of magnitude.
const pauseWindow = 200 * time.Millisecond

var flowCases = []testCase{
	{
		// test_tcp: "pauseProducing / resumeProducing".
		Info: info("RX-FLOW-001", "flow control", conformance.Must,
			"While reading is paused nothing is delivered; after ResumeReading everything that arrived meanwhile is, in order."),
		run: func(e *env) {
			delivered := make(chan struct{})
			var once sync.Once
			p := e.newProto("server protocol")
			p.onMade = func(p *proto, t reactor.Transport) { t.PauseReading() }
			p.onData = func(p *proto, b []byte) { once.Do(func() { close(delivered) }) }
			peer, _ := e.serve(p)
			want := pattern(128<<10, 8)
			e.send(peer, want)
			if e.within(delivered, pauseWindow) {
				e.t.Errorf("DataReceived called while reading was paused (%d bytes)", len(p.received()))
			}
			p.transport().ResumeReading()
			if got := p.waitData(len(want)); !equalBytes(got, want) {
				e.t.Errorf("after ResumeReading: %s", diffBytes(got, want))
			}
			// Pause and resume again, from outside the callbacks.
			p.transport().PauseReading()
			p.transport().ResumeReading()
			e.send(peer, []byte("more"))
			p.waitData(len(want) + 4)
		},
	},
	{
		Info: info("RX-FLOW-002", "flow control", conformance.Must,
			"Closing a paused connection still reports ConnectionLost: nil after LoseConnection, ErrConnectionAborted after AbortConnection."),
		run: func(e *env) {
			lose := e.newProto("paused protocol closed by LoseConnection")
			abort := e.newProto("paused protocol closed by AbortConnection")
			for _, p := range []*proto{lose, abort} {
				p.onMade = func(p *proto, t reactor.Transport) { t.PauseReading() }
			}
			ln := e.listen(e.factory(lose, abort))
			p1 := e.dial(ln.Addr())
			lose.waitMade()
			p2 := e.dial(ln.Addr())
			abort.waitMade()
			lose.transport().Write([]byte("bye"))
			lose.transport().LoseConnection()
			abort.transport().AbortConnection()
			if err := lose.waitLost(); err != nil {
				e.t.Errorf("paused connection: ConnectionLost(%v) after LoseConnection, want nil", err)
			}
			if err := abort.waitLost(); !errors.Is(err, reactor.ErrConnectionAborted) {
				e.t.Errorf("paused connection: ConnectionLost(%v) after AbortConnection, want ErrConnectionAborted", err)
			}
			e.expectEOF(p1, []byte("bye"), "the paused connection closed by LoseConnection")
			e.recvAll(p2, "the paused connection closed by AbortConnection")
		},
	},
	{
		Info: info("RX-FLOW-003", "flow control", conformance.Must,
			"When the peer closes while reading is paused, ResumeReading delivers the pending data and then ConnectionLost(nil)."),
		run: func(e *env) {
			p := e.newProto("server protocol")
			p.onMade = func(p *proto, t reactor.Transport) { t.PauseReading() }
			var atLost atomic.Int64
			p.onLost = func(p *proto, err error) { atLost.Store(int64(len(p.received()))) }
			peer, _ := e.serve(p)
			want := pattern(64<<10, 9)
			e.send(peer, want)
			peer.Close()
			// Watch the paused connection while the data and the FIN
			// arrive: ConnectionLost now would come before the data.
			if e.within(p.lost, pauseWindow) {
				e.t.Errorf("ConnectionLost while reading was paused, with %d bytes never delivered", len(want)-len(p.received()))
			}
			p.transport().ResumeReading()
			if err := p.waitLost(); err != nil {
				e.t.Errorf("ConnectionLost(%v), want nil after the peer's clean close", err)
			}
			if n := atLost.Load(); n != int64(len(want)) {
				e.t.Errorf("ConnectionLost came after %d of the %d bytes sent before the close", n, len(want))
			}
		},
	},
}

// panicValue is what the planted panic throws, so the error can be traced.
type panicValue string

var panicCases = []testCase{
	{
		Info: info("RX-PANIC-001", "robustness", conformance.Must,
			"A panic in DataReceived aborts that connection with an error matching reactor.ErrProtocolPanic; the reactor, its listener and its other connections go on."),
		run: func(e *env) {
			bad := e.newProto("panicking protocol")
			bad.onData = func(p *proto, b []byte) { panic(panicValue("planted panic")) }
			good := e.echoProto("echo protocol beside it")
			later := e.echoProto("echo protocol accepted after the panic")
			ln := e.listen(e.factory(good, bad, later))
			gpeer := e.dial(ln.Addr())
			good.waitMade()
			bpeer := e.dial(ln.Addr())
			bad.waitMade()
			echo(e, gpeer, "before")
			e.send(bpeer, []byte("boom"))
			err := bad.waitLost()
			if !errors.Is(err, reactor.ErrProtocolPanic) {
				e.t.Errorf("ConnectionLost(%v) after a panic in DataReceived, want an error matching ErrProtocolPanic", err)
			}
			e.recvAll(bpeer, "the connection whose protocol panicked")
			echo(e, gpeer, "after")
			lpeer := e.dial(ln.Addr())
			echo(e, lpeer, "new connection")
		},
	},
}

var clientCases = []testCase{
	{
		// test_tcp: "connectionRefused" / ClientFactory.clientConnectionFailed.
		Info: info("RX-CLIENT-001", "client", conformance.Must,
			"Connecting to a port where nothing listens calls ClientConnectionFailed once, with the address and an error matching syscall.ECONNREFUSED, and builds no protocol."),
		run: func(e *env) {
			addr := closedPort(e)
			c := e.newClient(nil)
			e.r.Connect(e.ctx, addr, c)
			c.waitUntil("ClientConnectionFailed for a refused connection", func() bool { return len(c.failed) > 0 })
			c.mu.Lock()
			err, got := c.failed[0], c.addrs[0]
			c.mu.Unlock()
			if !errors.Is(err, errConnRefused) {
				e.t.Errorf("ClientConnectionFailed(%q, %v), want an error matching syscall.ECONNREFUSED", got, err)
			}
			if got != addr {
				e.t.Errorf("ClientConnectionFailed got address %q, want %q", got, addr)
			}
			e.afterShutdown(func() { c.expect(e, 0, 1, 0) })
		},
	},
	{
		Info: info("RX-CLIENT-002", "client", conformance.Must,
			"A Connect whose context is already cancelled calls ClientConnectionFailed once with an error matching context.Canceled, and builds no protocol."),
		run: func(e *env) {
			ln := e.stdListen()
			ctx, cancel := contextWithCancel(e)
			cancel()
			c := e.newClient(nil)
			e.r.Connect(ctx, ln.Addr().String(), c)
			c.waitUntil("ClientConnectionFailed for a cancelled Connect", func() bool { return len(c.failed) > 0 })
			c.mu.Lock()
			err := c.failed[0]
			c.mu.Unlock()
			if !errors.Is(err, errCanceled) {
				e.t.Errorf("ClientConnectionFailed(%v), want an error matching context.Canceled", err)
			}
			e.afterShutdown(func() { c.expect(e, 0, 1, 0) })
		},
	},
	{
		Info: info("RX-CLIENT-003", "client", conformance.Must,
			"Cancelling the context of a Connect still in progress (to a listener whose backlog is full) calls ClientConnectionFailed once with an error matching context.Canceled, and builds no protocol."),
		run: func(e *env) {
			addr := fullBacklog(e)
			ctx, cancel := contextWithCancel(e)
			c := e.newClient(nil)
			e.r.Connect(ctx, addr, c)
			cancel()
			c.waitUntil("ClientConnectionFailed after cancelling a Connect in progress", func() bool { return len(c.failed) > 0 })
			c.mu.Lock()
			err := c.failed[0]
			c.mu.Unlock()
			if !errors.Is(err, errCanceled) {
				e.t.Errorf("ClientConnectionFailed(%v), want an error matching context.Canceled", err)
			}
			e.afterShutdown(func() { c.expect(e, 0, 1, 0) })
		},
	},
	{
		// ReconnectingClientFactory's pattern: connect again from clientConnectionLost.
		Info: info("RX-CLIENT-004", "client", conformance.Must,
			"ClientConnectionLost is called once per connection, after the protocol's ConnectionLost and with the same error, and a Connect made from inside it reconnects."),
		run: func(e *env) {
			first := e.newProto("first client protocol")
			second := e.newProto("second client protocol")
			var n atomic.Int32
			c := e.newClient(func(net.Addr) *proto {
				if n.Add(1) == 1 {
					return first
				}
				return second
			})
			ln := e.stdListen()
			addr := ln.Addr().String()
			var problems []string
			var mu sync.Mutex
			losses := 0
			c.onLost = func(_ string, err error) {
				mu.Lock()
				losses++
				p := first
				if losses > 1 {
					p = second
				}
				if !p.isLost() {
					problems = append(problems, fmt.Sprintf("ClientConnectionLost before the ConnectionLost of %s", p.name))
				} else {
					p.mu.Lock()
					perr := p.lostErr
					p.mu.Unlock()
					if err != perr && !errors.Is(err, perr) {
						problems = append(problems, fmt.Sprintf("ClientConnectionLost(%v) but ConnectionLost(%v) for %s", err, perr, p.name))
					}
				}
				mu.Unlock()
				if p == first {
					e.r.Connect(e.ctx, addr, c) // reconnect from inside the callback
				}
			}
			e.r.Connect(e.ctx, addr, c)
			p1 := e.accept(ln)
			first.waitMade()
			p1.Close()
			if err := first.waitLost(); err != nil {
				e.t.Errorf("first connection: ConnectionLost(%v) after the peer's close, want nil", err)
			}
			p2 := e.accept(ln)
			second.waitMade()
			e.send(p2, []byte("reconnected"))
			second.waitData(len("reconnected"))
			second.transport().LoseConnection()
			e.expectEOF(p2, nil, "the reconnected connection")
			c.waitUntil("two ClientConnectionLost calls", func() bool { return len(c.lost) >= 2 })
			mu.Lock()
			for _, msg := range problems {
				e.t.Errorf("%s", msg)
			}
			mu.Unlock()
			e.afterShutdown(func() { c.expect(e, 2, 0, 2) })
		},
	},
}

var listenCases = []testCase{
	{
		// test_tcp: "listening on a port in use fails with CannotListenError".
		Info: info("RX-LISTEN-001", "listen", conformance.Must,
			"Listen on an address already in use fails with an error matching syscall.EADDRINUSE."),
		run: func(e *env) {
			ref := e.stdListen()
			for _, a := range []struct{ who, addr string }{
				{"the referee's listener", ref.Addr().String()},
				{"the reactor's own listener", e.listen(e.manyFactory(func() *proto { return e.newProto("unused") })).Addr().String()},
			} {
				ln, err := e.r.Listen(a.addr, reactor.FactoryFunc(func(net.Addr) reactor.Protocol { return nil }))
				if err == nil {
					ln.Close()
					e.t.Errorf("Listen(%s) succeeded on the address of %s", a.addr, a.who)
					continue
				}
				if !errors.Is(err, errAddrInUse) {
					e.t.Errorf("Listen(%s) on the address of %s: %v, want an error matching syscall.EADDRINUSE", a.addr, a.who, err)
				}
			}
		},
	},
	{
		// test_tcp: "stopListening leaves connections open"; "listen again on the same port".
		Info: info("RX-LISTEN-002", "listen", conformance.Must,
			"After Listener.Close new connections are refused while existing ones keep working, a second Close returns nil, and Listen on the same address works again."),
		run: func(e *env) {
			ln := e.listen(e.manyFactory(func() *proto { return e.echoProto("echo protocol") }))
			addr := ln.Addr()
			peer := e.dial(addr)
			echo(e, peer, "before close")
			if err := ln.Close(); err != nil {
				e.t.Fatalf("Listener.Close: %v", err)
			}
			if err := ln.Close(); err != nil {
				e.t.Errorf("second Listener.Close: %v, want nil", err)
			}
			if c, err := net.Dial("tcp", addr.String()); err == nil {
				c.Close()
				e.t.Errorf("a new connection to %v succeeded after Listener.Close", addr)
			} else if !errors.Is(err, errConnRefused) {
				e.t.Errorf("dialing a closed listener: %v, want connection refused", err)
			}
			echo(e, peer, "after close")
			ln2, err := e.r.Listen(addr.String(), e.manyFactory(func() *proto { return e.echoProto("echo protocol") }))
			if err != nil {
				e.t.Fatalf("Listen(%v) again after Close: %v", addr, err)
			}
			e.t.Cleanup(func() { ln2.Close() })
			echo(e, e.dial(addr), "listening again")
		},
	},
	{
		Info: info("RX-LISTEN-003", "listen", conformance.Must,
			"Serve takes over a net.Listener: it serves the factory on it, reports its address, and Listener.Close closes it."),
		run: func(e *env) {
			nl, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				e.t.Fatalf("referee listen: %v", err)
			}
			addr := nl.Addr()
			ln, err := e.r.Serve(nl, e.manyFactory(func() *proto { return e.echoProto("echo protocol") }))
			if err != nil {
				nl.Close()
				e.t.Fatalf("Serve: %v", err)
			}
			e.t.Cleanup(func() { ln.Close() })
			if !sameAddr(ln.Addr(), addr) {
				e.t.Errorf("Serve's Listener.Addr() = %v, want %v", ln.Addr(), addr)
			}
			echo(e, e.dial(addr), "served")
			if err := ln.Close(); err != nil {
				e.t.Errorf("Listener.Close: %v", err)
			}
			if c, err := net.Dial("tcp", addr.String()); err == nil {
				c.Close()
				e.t.Errorf("a new connection to %v succeeded after Listener.Close", addr)
			}
		},
	},
}

// echo sends msg on peer and checks it comes back.
func echo(e *env, peer net.Conn, msg string) {
	e.send(peer, []byte(msg))
	if got := e.recvFull(peer, len(msg), "an echo of "+msg); !bytes.Equal(got, []byte(msg)) {
		e.t.Errorf("echo: got %q, want %q", got, msg)
	}
}
