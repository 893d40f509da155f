package echo

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twistbench/twistbench/impls/reactor"
)

// scriptedReactor is a reactor.Reactor without a network whose Connect
// plays, synchronously, the script named by the address's host:
//
//	"refused" fails the connect with ECONNREFUSED
//	"hang"    never reports anything (a reactor that loses a refused connect)
//	"stall"   connects, echoes the first two bytes written, and never ends
//	          the connection, even when aborted
//	"linger"  connects, echoes everything written, and never reports the
//	          end of the connection the client then loses
//
// It keeps what it never reported, so that a test can report it late, and
// calls played, if set, once the script has played.
type scriptedReactor struct {
	played func()

	mu      sync.Mutex
	pending []pendingConnect // "hang" connects, never reported
	conns   []*fakeTransport // transports of "stall" and "linger" connections
}

type pendingConnect struct {
	addr string
	f    reactor.ClientFactory
}

var _ reactor.Reactor = (*scriptedReactor)(nil)

var errNoListen = errors.New("scriptedReactor: no listening")

func (r *scriptedReactor) Listen(string, reactor.Factory) (reactor.Listener, error) {
	return nil, errNoListen
}

func (r *scriptedReactor) Serve(net.Listener, reactor.Factory) (reactor.Listener, error) {
	return nil, errNoListen
}

func (r *scriptedReactor) Shutdown(context.Context) error { return nil }

var peer = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2}

func (r *scriptedReactor) Connect(_ context.Context, addr string, f reactor.ClientFactory) {
	if r.played != nil {
		defer r.played()
	}
	host, _, _ := net.SplitHostPort(addr)
	switch host {
	case "refused":
		f.ClientConnectionFailed(addr, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	case "stall", "linger":
		ft := new(fakeTransport)
		r.mu.Lock()
		r.conns = append(r.conns, ft)
		r.mu.Unlock()
		p := f.BuildProtocol(peer)
		p.ConnectionMade(ft)
		written, _, _ := ft.snapshot()
		if host == "stall" {
			written = written[:2]
		}
		p.DataReceived(written)
	default:
		r.mu.Lock()
		r.pending = append(r.pending, pendingConnect{addr: addr, f: f})
		r.mu.Unlock()
	}
}

// reportLate finally connects every pending connect, as a slow reactor
// would after the client has given up, and returns the transports it
// connected.
func (r *scriptedReactor) reportLate() []*fakeTransport {
	r.mu.Lock()
	pending := r.pending
	r.pending = nil
	r.mu.Unlock()
	var fts []*fakeTransport
	for _, pc := range pending {
		ft := new(fakeTransport)
		fts = append(fts, ft)
		p := pc.f.BuildProtocol(peer)
		p.ConnectionMade(ft)
		p.ConnectionLost(nil)
		pc.f.ClientConnectionLost(pc.addr, nil)
	}
	return fts
}

// TestRoundtripHonoursContext runs Roundtrip on a reactor that never
// reports a connect, or never ends a connection: Roundtrip returns once ctx
// ends, with ctx's error and what came back, and aborts the connection it
// has; a message that came back whole is a success even if the end of the
// connection is never reported.
func TestRoundtripHonoursContext(t *testing.T) {
	cases := []struct {
		name        string
		addr        string
		cancel      bool // cancel rather than let a deadline pass
		wantErr     error
		wantEchoed  string
		wantAborted int // of the connection the script made, if any
	}{
		{name: "connect never reported, deadline", addr: "hang:1", wantErr: context.DeadlineExceeded},
		{name: "connect never reported, cancelled", addr: "hang:1", cancel: true, wantErr: context.Canceled},
		{name: "echo stalls, deadline", addr: "stall:1", wantErr: context.DeadlineExceeded, wantEchoed: "he", wantAborted: 1},
		{name: "echo stalls, cancelled", addr: "stall:1", cancel: true, wantErr: context.Canceled, wantEchoed: "he", wantAborted: 1},
		{name: "whole echo, end never reported", addr: "linger:1", wantEchoed: "hello", wantAborted: 0},
		{name: "refused before the deadline", addr: "refused:1", wantErr: syscall.ECONNREFUSED},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := new(scriptedReactor)
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			type outcome struct {
				echoed []byte
				err    error
			}
			ch := make(chan outcome, 1)
			if tc.cancel {
				r.played = cancel
			}
			go func() {
				echoed, err := Roundtrip(ctx, r, tc.addr, []byte("hello"))
				ch <- outcome{echoed, err}
			}()
			var o outcome
			select {
			case o = <-ch:
			case <-time.After(10 * time.Second): // a watchdog, far beyond the deadline
				t.Fatal("Roundtrip did not return after its context ended")
			}
			if (tc.wantErr == nil) != (o.err == nil) || !errors.Is(o.err, tc.wantErr) {
				t.Errorf("err %v, want %v", o.err, tc.wantErr)
			}
			if string(o.echoed) != tc.wantEchoed {
				t.Errorf("echoed %q, want %q", o.echoed, tc.wantEchoed)
			}
			r.mu.Lock()
			conns := r.conns
			r.mu.Unlock()
			for _, ft := range conns {
				if _, _, aborted := ft.snapshot(); aborted != tc.wantAborted {
					t.Errorf("connection aborted x%d, want x%d", aborted, tc.wantAborted)
				}
			}
			for _, ft := range r.reportLate() {
				if sent, _, aborted := ft.snapshot(); aborted != 1 || len(sent) != 0 {
					t.Errorf("connection made after Roundtrip returned: sent %q, aborted x%d; want nothing sent, one abort", sent, aborted)
				}
			}
		})
	}
}
