package poetry

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
//	"poem"    connects, delivers "O Rose", closes cleanly
//	"refused" fails the connect with ECONNREFUSED
//	"hang"    never reports anything (a reactor that loses a refused connect)
//	"stall"   connects, delivers "O Rose", and never ends the connection,
//	          even when aborted
//	"cancel"  calls the reactor's cancel hook, then hangs
//
// It keeps what it never reported, so that a test can report it late.
type scriptedReactor struct {
	cancel func() // called by the "cancel" script

	mu      sync.Mutex
	pending []pendingConnect // "hang" and "cancel" connects, never reported
	stalled []*fakeTransport // transports of "stall" connections
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

func (r *scriptedReactor) Connect(_ context.Context, addr string, f reactor.ClientFactory) {
	host, _, _ := net.SplitHostPort(addr)
	peer := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2}
	switch host {
	case "poem":
		p := f.BuildProtocol(peer)
		p.ConnectionMade(new(fakeTransport))
		p.DataReceived([]byte("O Rose"))
		p.ConnectionLost(nil)
		f.ClientConnectionLost(addr, nil)
	case "refused":
		f.ClientConnectionFailed(addr, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	case "stall":
		ft := new(fakeTransport)
		r.mu.Lock()
		r.stalled = append(r.stalled, ft)
		r.mu.Unlock()
		p := f.BuildProtocol(peer)
		p.ConnectionMade(ft)
		p.DataReceived([]byte("O Rose"))
	case "cancel":
		r.cancel()
		fallthrough
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
		p := pc.f.BuildProtocol(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2})
		p.ConnectionMade(ft)
		p.DataReceived([]byte("too late"))
		p.ConnectionLost(nil)
		pc.f.ClientConnectionLost(pc.addr, nil)
	}
	return fts
}

// TestGetHonoursContext runs Get on a reactor that never reports some
// connects and never ends some connections: when ctx ends, those addresses
// fail with ctx's error (the stalled one keeping what arrived), the others
// keep their own outcome, Get returns, and the stalled transport is
// aborted. A report that comes after Get has returned is ignored, and the
// connection it brings is aborted.
func TestGetHonoursContext(t *testing.T) {
	cases := []struct {
		name    string
		ctx     func(r *scriptedReactor) (context.Context, context.CancelFunc)
		extra   []string // addresses after the common ones
		wantErr error
	}{
		{
			name: "deadline",
			ctx: func(*scriptedReactor) (context.Context, context.CancelFunc) {
				return context.WithTimeout(t.Context(), 50*time.Millisecond)
			},
			wantErr: context.DeadlineExceeded,
		},
		{
			name: "cancelled while connecting",
			ctx: func(r *scriptedReactor) (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(t.Context())
				r.cancel = cancel
				return ctx, cancel
			},
			extra:   []string{"cancel:1"},
			wantErr: context.Canceled,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := new(scriptedReactor)
			ctx, cancel := tc.ctx(r)
			defer cancel()
			addrs := append([]string{"hang:1", "poem:1", "stall:1", "refused:1", "no-port"}, tc.extra...)

			ch := make(chan []Result, 1)
			go func() { ch <- Get(ctx, r, addrs) }()
			var got []Result
			select {
			case got = <-ch:
			case <-time.After(10 * time.Second): // a watchdog, far beyond the deadline
				t.Fatal("Get did not return after its context ended")
			}
			if ctx.Err() == nil {
				t.Fatalf("Get returned before its context ended, with unfinished downloads: %+v", got)
			}

			want := []struct {
				err  error // nil: success
				poem string
			}{
				{err: tc.wantErr},
				{poem: "O Rose"},
				{err: tc.wantErr, poem: "O Rose"},
				{err: syscall.ECONNREFUSED},
				{err: ErrBadAddress},
				{err: tc.wantErr}, // "cancel", when present
			}
			if len(got) != len(addrs) {
				t.Fatalf("%d results for %d addresses", len(got), len(addrs))
			}
			for i, res := range got {
				w := want[i]
				if res.Addr != addrs[i] {
					t.Errorf("result %d is for %q, want %q", i, res.Addr, addrs[i])
				}
				if (w.err == nil) != (res.Err == nil) || !errors.Is(res.Err, w.err) {
					t.Errorf("%s: err %v, want %v", res.Addr, res.Err, w.err)
				}
				if string(res.Poem) != w.poem {
					t.Errorf("%s: poem %q, want %q", res.Addr, res.Poem, w.poem)
				}
			}
			r.mu.Lock()
			stalled := r.stalled
			r.mu.Unlock()
			for _, ft := range stalled {
				if _, _, aborted := ft.snapshot(); aborted != 1 {
					t.Errorf("stalled connection aborted x%d, want once", aborted)
				}
			}

			// A done called twice would panic on Get's WaitGroup or race
			// on its results; the race detector and the checks below see it.
			for _, ft := range r.reportLate() {
				if _, _, aborted := ft.snapshot(); aborted != 1 {
					t.Errorf("connection made after Get returned: aborted x%d, want once", aborted)
				}
			}
			if string(got[0].Poem) != "" || !errors.Is(got[0].Err, tc.wantErr) {
				t.Errorf("late report changed a result: %+v", got[0])
			}
		})
	}
}

// TestGetCause checks that a cause given to the context is kept beside
// ctx.Err() rather than replacing it.
func TestGetCause(t *testing.T) {
	cause := errors.New("operator gave up")
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(cause)
	got := Get(ctx, new(scriptedReactor), []string{"hang:1"})
	if err := got[0].Err; !errors.Is(err, context.Canceled) || !errors.Is(err, cause) {
		t.Errorf("err %v, want one matching both context.Canceled and the cause", err)
	}
}
