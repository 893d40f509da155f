package reactortest

// Protocol cases: the echo and poetry protocols of impls/echo and
// impls/poetry, written once against the contract, checked on every
// back-end: echo from 0 bytes to 16 MiB, three poetry servers at once, one
// refused address among three. The programs of the tutorial have to work on
// every engine.
//
// Each case checks the protocol's server against the referee (the standard
// library on the other end) and its client against the referee, so that a
// failure points at one side, and then both on the back-end together. The
// suite imports these protocol packages, which import only the contract;
// never a back-end.
//
// (This file belongs to the author of impls/echo and impls/poetry; the
// suite's author appends protocolCases last in table.)

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/twistbench/twistbench/conformance"
	echoproto "github.com/twistbench/twistbench/impls/echo"
	poetryproto "github.com/twistbench/twistbench/impls/poetry"
	"github.com/twistbench/twistbench/impls/reactor"
)

var protocolCases = append(echoCases(), poetryCases...)

// echoSizes are the message sizes of the echo cases, from nothing to a
// message far larger than any socket buffer.
var echoSizes = []struct {
	id   string
	size int
	name string
}{
	{id: "RX-ECHO-001", size: 0, name: "an empty message"},
	{id: "RX-ECHO-002", size: 1, name: "a 1-byte message"},
	{id: "RX-ECHO-003", size: 4 << 10, name: "a 4 KiB message"},
	{id: "RX-ECHO-004", size: 1 << 20, name: "a 1 MiB message"},
	{id: "RX-ECHO-005", size: 16 << 20, name: "a 16 MiB message"},
}

func echoCases() []testCase {
	var cases []testCase
	for _, s := range echoSizes {
		cases = append(cases, testCase{
			// Twisted's EchoServer and EchoClient from the tutorial.
			Info: info(s.id, "echo", conformance.Must, fmt.Sprintf(
				"With %s, the echo server on the back-end sends the referee's bytes back exactly and closes when the referee does, and the echo client on the back-end gets exactly its message back, from the referee's echo server and from the back-end's.",
				s.name)),
			slow: s.size >= 1<<20,
			run:  func(e *env) { echoCase(e, s.size) },
		})
	}
	return cases
}

func echoCase(e *env, size int) {
	msg := pattern(size, uint64(size)+1)

	// The server on the back-end, the referee as client: read the echo
	// while sending (a server that writes back as it reads must never
	// stall on a full buffer), then close the write side and expect a
	// clean close with nothing more. The referee half-closes only once
	// everything came back, so whether pending writes survive the peer's
	// EOF (they do not in Twisted) does not matter here.
	ln := e.listen(echoproto.ServerFactory)
	peer := e.dial(ln.Addr())
	wrote := make(chan error, 1)
	go func() {
		_, err := peer.Write(msg)
		wrote <- err
	}()
	got := e.recvFull(peer, size, fmt.Sprintf("the echo server's answer to %d bytes", size))
	if !equalBytes(got, msg) {
		e.t.Errorf("the echo server's answer: %s", diffBytes(got, msg))
	}
	if err := <-wrote; err != nil {
		e.t.Errorf("referee sending %d bytes to the echo server: %v", size, err)
	}
	if err := peer.CloseWrite(); err != nil {
		e.t.Errorf("referee half-close: %v", err)
	}
	e.expectEOF(peer, nil, "the echo server's connection after the referee's half-close")

	// The client on the back-end, the referee as server.
	ref := refereeServer(e, func(c *net.TCPConn) error {
		// Wrapped: the plain copy loop, no splice or sendfile.
		if _, err := io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{c}); err != nil {
			return err
		}
		return c.CloseWrite()
	})
	got, err := echoproto.Roundtrip(e.ctx, e.r, ref.addr, msg)
	if err != nil {
		e.t.Errorf("echo client against the referee's echo server, %d bytes: %v", size, err)
	} else if !equalBytes(got, msg) {
		e.t.Errorf("echo client against the referee's echo server: %s", diffBytes(got, msg))
	}
	ref.wait(e)

	// Both on the back-end.
	got, err = echoproto.Roundtrip(e.ctx, e.r, ln.Addr().String(), msg)
	if err != nil {
		e.t.Errorf("echo client against the back-end's echo server, %d bytes: %v", size, err)
	} else if !equalBytes(got, msg) {
		e.t.Errorf("echo client against the back-end's echo server: %s", diffBytes(got, msg))
	}
}

// poems are the poems of the poetry cases, of unequal sizes, so that the
// downloads end in an order other than the one given.
var poems = [][]byte{pattern(256<<10, 11), pattern(1<<10, 12), pattern(1<<20, 13)}

var poetryCases = []testCase{
	{
		// Get Poetry Now! 3.0 against three Fast Poetry Servers.
		Info: info("RX-POEM-001", "poetry", conformance.Must,
			"Three poetry servers on the back-end each send their whole poem and close, to the referee and to the poetry client on the back-end, which downloads from all three at once and reports each poem whole, in the order the addresses were given."),
		slow: true,
		run: func(e *env) {
			addrs := make([]string, len(poems))
			for i, p := range poems {
				ln := e.listen(poetryproto.NewServerFactory(p))
				addrs[i] = ln.Addr().String()
				e.expectEOF(e.dial(ln.Addr()), p, fmt.Sprintf("poem %d from the poetry server at %s", i, addrs[i]))
			}
			checkPoems(e, poetryproto.Get(e.ctx, e.r, addrs), addrs, poems)
		},
	},
	{
		// Get Poetry Now! 3.0 with a dead server: the original waits
		// forever; this client reports it and goes on.
		Info: info("RX-POEM-002", "poetry", conformance.Must,
			"The poetry client on the back-end, downloading at once from three addresses of which the middle one refuses, gets the two poems whole from the referee's servers and an error matching ECONNREFUSED for the refused address alone."),
		slow: true,
		run: func(e *env) {
			var refs []*referee
			for _, p := range [][]byte{poems[0], poems[2]} {
				refs = append(refs, refereeServer(e, func(c *net.TCPConn) error {
					_, err := c.Write(p)
					return err
				}))
			}
			addrs := []string{refs[0].addr, closedPort(e), refs[1].addr}
			checkPoems(e, poetryproto.Get(e.ctx, e.r, addrs), addrs, [][]byte{poems[0], nil, poems[2]})
			for _, r := range refs {
				r.wait(e)
			}
		},
	},
}

// checkPoems compares Get's results with want, in order; a nil want is an
// address that must be refused.
func checkPoems(e *env, got []poetryproto.Result, addrs []string, want [][]byte) {
	if len(got) != len(addrs) {
		e.t.Fatalf("poetry client returned %d results for %d addresses", len(got), len(addrs))
	}
	for i, res := range got {
		if res.Addr != addrs[i] {
			e.t.Errorf("result %d is for %s, want %s: results must keep the order given", i, res.Addr, addrs[i])
		}
		switch {
		case want[i] == nil && !errors.Is(res.Err, errConnRefused):
			e.t.Errorf("%s (nothing listens): error %v, want one matching ECONNREFUSED", addrs[i], res.Err)
		case want[i] != nil && res.Err != nil:
			e.t.Errorf("%s: download failed: %v", addrs[i], res.Err)
		case want[i] != nil && !equalBytes(res.Poem, want[i]):
			e.t.Errorf("%s: poem %s", addrs[i], diffBytes(res.Poem, want[i]))
		}
	}
}

// referee is a one-connection server of the standard library: the other
// end for a client protocol under test.
type referee struct {
	addr string
	done chan struct{}
	mu   sync.Mutex
	err  error
}

// refereeServer accepts one connection on a loopback port, runs serve on
// it in its own goroutine and closes it. The listener and the connection
// are the case's peers, with the case's deadline: the watchdog closes them
// if the case overruns, so the goroutine always ends.
func refereeServer(e *env, serve func(c *net.TCPConn) error) *referee {
	ln := e.stdListen()
	r := &referee{addr: ln.Addr().String(), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		c, err := ln.AcceptTCP()
		if err == nil {
			e.addPeer(c)
			c.SetDeadline(e.deadline)
			err = serve(c)
			if cerr := c.Close(); err == nil {
				err = cerr
			}
		}
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
	}()
	return r
}

// wait waits for the referee's connection to end and fails the case if
// serving it failed.
func (r *referee) wait(e *env) {
	e.wait(r.done, "the referee server at %s to finish", r.addr)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		e.t.Errorf("referee server at %s: %v", r.addr, r.err)
	}
}

// The protocols are used through the contract's types.
var (
	_ reactor.Protocol = (*echoproto.Server)(nil)
	_ reactor.Protocol = (*echoproto.Client)(nil)
	_ reactor.Protocol = (*poetryproto.Server)(nil)
	_ reactor.Protocol = (*poetryproto.Client)(nil)
)
