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
	poem []byte
	done func(poem []byte, err error)
	once sync.Once

	mu    sync.Mutex        // guards t and cause, which Cancel uses from another goroutine
	t     reactor.Transport // nil until ConnectionMade
	cause error             // why the download was given up, if it was
	ended bool              // ConnectionLost ran
}

// NewClient returns a client that collects a poem and calls done exactly
// once when its connection ends, or when the connection cannot be made.
// done runs on a reactor goroutine and must not block.
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
// call).
func (c *Client) DataReceived(data []byte) { c.poem = append(c.poem, data...) }

// ConnectionLost completes the download: a clean close is a whole poem.
func (c *Client) ConnectionLost(err error) {
	c.mu.Lock()
	c.ended = true
	if c.cause != nil {
		err = c.cause
	}
	c.mu.Unlock()
	c.finish(err)
}

// Cancel gives up the download with cause (typically ctx.Err()): the
// connection is aborted and done hears cause. It is safe from any goroutine
// and does nothing after the connection has ended.
func (c *Client) Cancel(cause error) {
	c.mu.Lock()
	if c.ended || c.cause != nil {
		c.mu.Unlock()
		return
	}
	c.cause = cause
	t := c.t
	c.mu.Unlock()
	if t != nil {
		t.AbortConnection()
	}
}

func (c *Client) finish(err error) {
	c.once.Do(func() { c.done(c.poem, err) })
}

// Fetch starts downloading the poem served at addr on r and returns at once;
// done is called exactly once with the result. When ctx ends first, the
// download is aborted and the result's Err is ctx.Err() (or the reactor's
// connect error, which wraps it).
func Fetch(ctx context.Context, r reactor.Reactor, addr string, done func(Result)) {
	var stop func() bool
	c := NewClient(func(poem []byte, err error) {
		stop()
		done(Result{Addr: addr, Poem: poem, Err: err})
	})
	stop = context.AfterFunc(ctx, func() { c.Cancel(context.Cause(ctx)) })
	r.Connect(ctx, addr, reactor.ClientFuncs{
		Build:  func(net.Addr) reactor.Protocol { return c },
		Failed: func(_ string, err error) { c.finish(err) },
	})
}

// Get downloads from every address at once and returns one Result per
// address, in the order given, when every download has ended. A failure is
// reported in its own Result and does not stop the others; ctx bounds the
// whole: when it ends, the downloads still running fail with ctx.Err().
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
