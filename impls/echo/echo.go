// Package echo is the echo protocol of Twisted's tutorial, written once
// against the reactor contract so that every back-end serves and drives the
// same code.
//
// The server (Twisted's Echo) writes back every byte it receives. The client
// is Twisted's EchoClient made exact: it sends one message, waits until the
// same number of bytes has come back, checks them, and loses the connection.
// (The original prints the first chunk it receives and hangs up, which only
// works while the message fits in one segment; the reactor suite sends up to
// 16 MiB, so this client counts and compares.)
//
// Both protocols keep no state between connections, so one factory serves
// any number of them, from any number of loops.
package echo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/twistbench/twistbench/impls/reactor"
)

// Server is the server protocol: every byte received is written back, in
// order. It relies on the contract's Write copying what it cannot send at
// once, since the slice given to DataReceived dies with the call.
type Server struct {
	t reactor.Transport
}

// ConnectionMade keeps the transport to write back on.
func (s *Server) ConnectionMade(t reactor.Transport) { s.t = t }

// DataReceived writes data back.
func (s *Server) DataReceived(data []byte) { s.t.Write(data) }

// ConnectionLost does nothing: an echo server has nothing to report.
func (s *Server) ConnectionLost(error) {}

// ServerFactory builds a Server for every accepted connection. It is safe
// for concurrent use, as a reactor with several loops needs.
var ServerFactory reactor.Factory = reactor.FactoryFunc(func(net.Addr) reactor.Protocol { return new(Server) })

// Errors the client reports, matched with errors.Is. A failure to connect is
// reported with the reactor's own error (for example one that matches
// syscall.ECONNREFUSED), and a cancelled or expired context with ctx.Err().
var (
	// ErrMismatch: a byte came back that differs from the one sent, or
	// more bytes came back than were sent.
	ErrMismatch = errors.New("echo: echoed bytes differ from the message")
	// ErrShort: the connection ended before the whole message came back.
	ErrShort = errors.New("echo: connection ended before the whole message was echoed")
)

// Client is the client protocol for one exchange. Build it with NewClient;
// it reports the outcome exactly once, through the function given there.
type Client struct {
	msg  []byte
	got  []byte // what came back so far; a prefix of msg while all is well
	bad  bool   // a mismatch was seen: ignore whatever else arrives
	done func(echoed []byte, err error)
	once sync.Once

	mu     sync.Mutex        // guards t, cause and lostOK, which Cancel uses from another goroutine
	t      reactor.Transport // nil until ConnectionMade
	cause  error             // why the client gave up early, if it did
	lostOK bool              // the whole message came back and matched
}

// NewClient returns a client that sends msg (which it does not modify, and
// which must not change until done is called) and then calls done exactly
// once: with the echoed bytes and a nil error when they equal msg, or with
// what came back so far and an error. done runs on a reactor goroutine and
// must not block.
func NewClient(msg []byte, done func(echoed []byte, err error)) *Client {
	return &Client{msg: msg, got: make([]byte, 0, len(msg)), done: done}
}

// ConnectionMade sends the message. An empty message has nothing to wait
// for, so the client loses the connection at once.
func (c *Client) ConnectionMade(t reactor.Transport) {
	c.mu.Lock()
	c.t = t
	cause := c.cause
	c.mu.Unlock()
	if cause != nil { // cancelled while the connection was being made
		t.AbortConnection()
		return
	}
	t.Write(c.msg)
	if len(c.msg) == 0 {
		c.mu.Lock()
		c.lostOK = true
		c.mu.Unlock()
		t.LoseConnection()
	}
}

// DataReceived compares the bytes with the next part of the message and
// loses the connection once all of it has come back. On a mismatch it
// aborts: nothing the server sends afterwards can repair the exchange.
func (c *Client) DataReceived(data []byte) {
	if c.bad {
		return
	}
	off := len(c.got)
	if off+len(data) > len(c.msg) {
		c.giveUp(fmt.Errorf("%w: %d bytes came back for a %d-byte message", ErrMismatch, off+len(data), len(c.msg)))
		return
	}
	if want := c.msg[off : off+len(data)]; !bytes.Equal(data, want) {
		i := 0
		for data[i] == want[i] {
			i++
		}
		c.got = append(c.got, data[:i+1]...)
		c.giveUp(fmt.Errorf("%w: byte %d is %#02x, sent %#02x", ErrMismatch, off+i, data[i], want[i]))
		return
	}
	c.got = append(c.got, data...)
	if len(c.got) == len(c.msg) {
		c.mu.Lock()
		c.lostOK = true
		c.mu.Unlock()
		c.t.LoseConnection()
	}
}

// ConnectionLost reports the outcome. A connection that ends with an error
// after the whole message came back still counts as a success: the exchange
// was complete before the transport failed (Twisted's client would have
// printed the answer by then too).
func (c *Client) ConnectionLost(err error) {
	c.mu.Lock()
	cause, ok := c.cause, c.lostOK
	c.mu.Unlock()
	switch {
	case cause != nil:
		c.finish(cause)
	case ok:
		c.finish(nil)
	case err != nil:
		c.finish(fmt.Errorf("%w after %d of %d bytes: %w", ErrShort, len(c.got), len(c.msg), err))
	default:
		c.finish(fmt.Errorf("%w: %d of %d bytes", ErrShort, len(c.got), len(c.msg)))
	}
}

// Cancel gives up on the exchange with cause (typically ctx.Err()): the
// connection is aborted, and done hears cause. It is safe from any goroutine
// and does nothing once the message has come back whole.
func (c *Client) Cancel(cause error) {
	c.mu.Lock()
	if c.lostOK || c.cause != nil {
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

// giveUp records cause and aborts; ConnectionLost reports it.
func (c *Client) giveUp(cause error) {
	c.bad = true
	c.mu.Lock()
	if c.cause == nil {
		c.cause = cause
	}
	c.mu.Unlock()
	c.t.AbortConnection()
}

// failed reports a connection that was never made.
func (c *Client) failed(err error) { c.finish(err) }

func (c *Client) finish(err error) {
	c.once.Do(func() { c.done(c.got, err) })
}

// Connect starts one exchange with the echo server at addr on r and returns
// at once; done is called exactly once, as NewClient describes. When ctx
// ends first, the connection (or the attempt) is aborted and done hears
// ctx.Err() (or the reactor's connect error, which wraps it).
func Connect(ctx context.Context, r reactor.Reactor, addr string, msg []byte, done func(echoed []byte, err error)) {
	var stop func() bool
	c := NewClient(msg, func(echoed []byte, err error) {
		if stop != nil {
			stop()
		}
		done(echoed, err)
	})
	// stop is set before Connect so that done never races with its
	// assignment; AfterFunc's callback only cancels, it never calls done.
	stop = context.AfterFunc(ctx, func() { c.Cancel(context.Cause(ctx)) })
	r.Connect(ctx, addr, reactor.ClientFuncs{
		Build:  func(net.Addr) reactor.Protocol { return c },
		Failed: func(_ string, err error) { c.failed(err) },
	})
}

// Roundtrip sends msg to the echo server at addr over r, waits for it to
// come back, and returns the echoed bytes. It is the blocking form of
// Connect: the error is nil only when exactly msg came back.
func Roundtrip(ctx context.Context, r reactor.Reactor, addr string, msg []byte) ([]byte, error) {
	type outcome struct {
		echoed []byte
		err    error
	}
	ch := make(chan outcome, 1)
	Connect(ctx, r, addr, msg, func(echoed []byte, err error) { ch <- outcome{echoed, err} })
	o := <-ch
	return o.echoed, o.err
}
