// Package poetry is the poetry protocol of Twisted's tutorial, written once
// against the reactor contract: the Fast Poetry Server writes a whole poem to
// each client and hangs up, and the Get Poetry Now! 3.0 client downloads from
// several servers at once, a poem being complete when its connection ends.
//
// The protocol has no framing: the end of the connection is the end of the
// poem. So a clean close (ConnectionLost(nil)) is what tells a whole poem
// from a cut one, and every other ending is a failure of that download
// alone: the others go on. The original client stops only when every poem
// has arrived and hangs forever on a refused port; this one reports every
// address, good or bad, and a context bounds the wait.
package poetry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/twistbench/twistbench/impls/reactor"
)

// Server is the server protocol: on connection it writes the whole poem and
// loses the connection, which flushes the poem first.
type Server struct {
	Poem []byte
}

// ConnectionMade writes the poem and hangs up.
func (s *Server) ConnectionMade(t reactor.Transport) {
	t.Write(s.Poem)
	t.LoseConnection()
}

// DataReceived ignores what the client sends: the server does not listen.
func (s *Server) DataReceived([]byte) {}

// ConnectionLost does nothing: the server has nothing to report.
func (s *Server) ConnectionLost(error) {}

// NewServerFactory returns a factory that serves poem, from memory, to every
// client. poem is shared, not copied, and must not change while served.
func NewServerFactory(poem []byte) reactor.Factory {
	return reactor.FactoryFunc(func(net.Addr) reactor.Protocol { return &Server{Poem: poem} })
}

// ErrBadAddress is the error of a download whose address is not host:port;
// it is reported in that address's Result without trying to connect.
var ErrBadAddress = errors.New("poetry: bad address")

// Result is the outcome of one download.
type Result struct {
	// Addr is the address as the caller gave it.
	Addr string
	// Poem is every byte received: the whole poem when Err is nil, and
	// whatever arrived before the failure otherwise.
	Poem []byte
	// Err is nil when the server closed the connection cleanly. Otherwise
	// it is the failure, matched with errors.Is: the reactor's connect
	// error (for example syscall.ECONNREFUSED), the error the connection
	// ended with (a reset), or ctx.Err() when the context ended first.
	Err error
}

// Client is the client protocol for one download. It reports exactly once,
// through the function given to NewClient.
type Client struct {
	done func(poem []byte, err error)
	once sync.Once

	// mu guards everything below: Cancel reads the poem and aborts the
	// transport from another goroutine while the reactor delivers data.
	mu    sync.Mutex
	poem  []byte
	t     reactor.Transport // nil until ConnectionMade
	cause error             // why the download was given up, if it was
	ended bool              // ConnectionLost ran
}

// NewClient returns a client that collects a poem and calls done exactly
// once: when its connection ends, when the connection cannot be made, or
// when Cancel gives it up, whichever comes first. done runs on the
// goroutine that reports (a reactor's, or Cancel's caller) and must not
// block.
func NewClient(done func(poem []byte, err error)) *Client {
	return &Client{done: done}
}

// ConnectionMade keeps the transport, so that Cancel can abort it.
func (c *Client) ConnectionMade(t reactor.Transport) {
	c.mu.Lock()
	c.t = t
	cause := c.cause
	c.mu.Unlock()
	if cause != nil { // cancelled while the connection was being made
		t.AbortConnection()
	}
}

// DataReceived appends the bytes to the poem (a copy: data dies with the
// call). Bytes that arrive after Cancel are dropped: the poem has been
// reported already.
func (c *Client) DataReceived(data []byte) {
	c.mu.Lock()
	if c.cause == nil {
		c.poem = append(c.poem, data...)
	}
	c.mu.Unlock()
}

// ConnectionLost completes the download: a clean close is a whole poem.
func (c *Client) ConnectionLost(err error) {
	c.mu.Lock()
	c.ended = true
	poem := c.poem
	if c.cause != nil { // given up: an abort from Cancel may land here first
		err = c.cause
	}
	c.mu.Unlock()
	c.finish(poem, err)
}

// Cancel gives up the download with cause (typically ctx.Err()): done hears
// cause and what had arrived, at once, and the connection, if it was made,
// is aborted. Cancel does not wait for the reactor: a connect that never
// reports, or an abort whose ConnectionLost never comes, cannot hold the
// result back, and whatever the reactor reports later is ignored. It is
// safe from any goroutine and does nothing after the connection has ended.
func (c *Client) Cancel(cause error) {
	c.mu.Lock()
	if c.ended || c.cause != nil {
		c.mu.Unlock()
		return
	}
	c.cause = cause
	t, poem := c.t, c.poem // poem no longer grows: DataReceived drops bytes from now on
	c.mu.Unlock()
	if t != nil {
		t.AbortConnection()
	}
	c.finish(poem, cause)
}

// failed reports a connection that could not be made.
func (c *Client) failed(err error) {
	c.finish(nil, err)
}

func (c *Client) finish(poem []byte, err error) {
	c.once.Do(func() { c.done(poem, err) })
}

// Fetch starts downloading the poem served at addr on r and returns at once;
// done is called exactly once with the result. When ctx ends first, done is
// called at once with ctx's error (see ctxErr) and the download is aborted,
// whether or not the reactor ever reports on it; a reactor that reports
// first may give its own connect error instead, which wraps ctx.Err() by
// the contract.
func Fetch(ctx context.Context, r reactor.Reactor, addr string, done func(Result)) {
	// stop unregisters the cancellation once the download has ended, so a
	// long-lived ctx does not keep every finished client. It is assigned
	// under mu because, on a ctx that has already ended, the AfterFunc may
	// report (and so read stop) before AfterFunc returns; done then has
	// nothing to unregister.
	var (
		mu   sync.Mutex
		stop func() bool
	)
	c := NewClient(func(poem []byte, err error) {
		mu.Lock()
		s := stop
		mu.Unlock()
		if s != nil {
			s()
		}
		done(Result{Addr: addr, Poem: poem, Err: err})
	})
	mu.Lock()
	stop = context.AfterFunc(ctx, func() { c.Cancel(ctxErr(ctx)) })
	mu.Unlock()
	r.Connect(ctx, addr, reactor.ClientFuncs{
		Build:  func(net.Addr) reactor.Protocol { return c },
		Failed: func(_ string, err error) { c.failed(err) },
	})
}

// ctxErr is the error of an ended ctx: ctx.Err(), so that errors.Is matches
// context.Canceled or context.DeadlineExceeded, with the cause given to
// WithCancelCause or WithTimeoutCause wrapped beside it when there is one.
func ctxErr(ctx context.Context) error {
	err, cause := ctx.Err(), context.Cause(ctx)
	if cause == nil || cause == err {
		return err
	}
	return fmt.Errorf("%w: %w", err, cause)
}

// Get downloads from every address at once and returns one Result per
// address, in the order given, when every download has ended. A failure is
// reported in its own Result and does not stop the others; ctx bounds the
// whole: when it ends, every download still running is aborted and fails
// with ctx.Err() (keeping what arrived), and Get returns without waiting for
// the reactor, even one that never reports a connect.
func Get(ctx context.Context, r reactor.Reactor, addrs []string) []Result {
	results := make([]Result, len(addrs))
	var wg sync.WaitGroup
	wg.Add(len(addrs))
	for i, addr := range addrs {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			results[i] = Result{Addr: addr, Err: fmt.Errorf("%w %q: %w", ErrBadAddress, addr, err)}
			wg.Done()
			continue
		}
		Fetch(ctx, r, addr, func(res Result) {
			results[i] = res
			wg.Done()
		})
	}
	wg.Wait()
	return results
}
