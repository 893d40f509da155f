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
	done func(echoed []byte, err error)
	once sync.Once

	// mu guards everything below: Cancel reads what came back and aborts
	// the transport from another goroutine while the reactor delivers data.
	mu     sync.Mutex
	got    []byte            // what came back so far; a prefix of msg while all is well
	t      reactor.Transport // nil until ConnectionMade
	cause  error             // why the client gave up early (a mismatch, or Cancel), if it did
	lostOK bool              // the whole message came back and matched
	ended  bool              // ConnectionLost ran
}

// NewClient returns a client that sends msg (which it does not modify, and
// which must not change until done is called) and then calls done exactly
// once: with the echoed bytes and a nil error when they equal msg, or with
// what came back so far and an error. done runs on the goroutine that
// reports (a reactor's, or Cancel's caller) and must not block.
func NewClient(msg []byte, done func(echoed []byte, err error)) *Client {
	return &Client{msg: msg, got: make([]byte, 0, len(msg)), done: done}
}

// ConnectionMade sends the message. An empty message has nothing to wait
// for, so the client loses the connection at once.
func (c *Client) ConnectionMade(t reactor.Transport) {
	c.mu.Lock()
	c.t = t
	cause := c.cause
	if cause == nil && len(c.msg) == 0 {
		c.lostOK = true
	}
	c.mu.Unlock()
	if cause != nil { // cancelled while the connection was being made
		t.AbortConnection()
		return
	}
	t.Write(c.msg)
	if len(c.msg) == 0 {
		t.LoseConnection()
	}
}

// DataReceived compares the bytes with the next part of the message and
// loses the connection once all of it has come back. On a mismatch it
// aborts: nothing the server sends afterwards can repair the exchange.
// After a mismatch or Cancel it ignores what arrives.
func (c *Client) DataReceived(data []byte) {
	c.mu.Lock()
	if c.cause != nil {
		c.mu.Unlock()
		return
	}
	off := len(c.got)
	if off+len(data) > len(c.msg) {
		c.giveUpLocked(fmt.Errorf("%w: %d bytes came back for a %d-byte message", ErrMismatch, off+len(data), len(c.msg)))
		return
	}
	if want := c.msg[off : off+len(data)]; !bytes.Equal(data, want) {
		i := 0
		for data[i] == want[i] {
			i++
		}
		c.got = append(c.got, data[:i+1]...)
		c.giveUpLocked(fmt.Errorf("%w: byte %d is %#02x, sent %#02x", ErrMismatch, off+i, data[i], want[i]))
		return
	}
	c.got = append(c.got, data...)
	whole := len(c.got) == len(c.msg)
	c.lostOK = c.lostOK || whole
	t := c.t
	c.mu.Unlock()
	if whole {
		t.LoseConnection()
	}
}

// ConnectionLost reports the outcome. A connection that ends with an error
// after the whole message came back still counts as a success: the exchange
// was complete before the transport failed (Twisted's client would have
// printed the answer by then too).
func (c *Client) ConnectionLost(err error) {
	c.mu.Lock()
	c.ended = true
	cause, ok, got := c.cause, c.lostOK, c.got
	c.mu.Unlock()
	switch {
	case cause != nil: // a mismatch; after Cancel, finish does nothing
		c.finish(got, cause)
	case ok:
		c.finish(got, nil)
	case err != nil:
		c.finish(got, fmt.Errorf("%w after %d of %d bytes: %w", ErrShort, len(got), len(c.msg), err))
	default:
		c.finish(got, fmt.Errorf("%w: %d of %d bytes", ErrShort, len(got), len(c.msg)))
	}
}

// Cancel gives up on the exchange with cause (typically ctx.Err()): done
// hears cause and what had come back, at once, and the connection, if it
// was made, is aborted. Cancel does not wait for the reactor: a connect that
// never reports, or an abort whose ConnectionLost never comes, cannot hold
// the outcome back, and whatever the reactor reports later is ignored. It is
// safe from any goroutine. Once the message has come back whole it aborts
// nothing (the connection is closing cleanly) and reports the success, if
// ConnectionLost has not yet; after the exchange has ended it does nothing.
func (c *Client) Cancel(cause error) {
	c.mu.Lock()
	if c.cause != nil || c.ended {
		c.mu.Unlock()
		return
	}
	if c.lostOK {
		got := c.got
		c.mu.Unlock()
		c.finish(got, nil)
		return
	}
	c.cause = cause
	t, got := c.t, c.got // got no longer grows: DataReceived ignores bytes from now on
	c.mu.Unlock()
	if t != nil {
		t.AbortConnection()
	}
	c.finish(got, cause)
}

// giveUpLocked records cause, releases c.mu and aborts; ConnectionLost
// reports cause.
func (c *Client) giveUpLocked(cause error) {
	c.cause = cause
	t := c.t
	c.mu.Unlock()
	t.AbortConnection()
}

// failed reports a connection that was never made.
func (c *Client) failed(err error) { c.finish(nil, err) }

func (c *Client) finish(echoed []byte, err error) {
	c.once.Do(func() { c.done(echoed, err) })
}

// Connect starts one exchange with the echo server at addr on r and returns
// at once; done is called exactly once, as NewClient describes. When ctx
// ends first, done is called at once with ctx's error (see ctxErr) and the
// connection, or the attempt, is aborted, whether or not the reactor ever
// reports on it; a reactor that reports first may give its own connect
// error instead, which wraps ctx.Err() by the contract.
func Connect(ctx context.Context, r reactor.Reactor, addr string, msg []byte, done func(echoed []byte, err error)) {
	// stop unregisters the cancellation once the exchange has ended, so a
	// long-lived ctx does not keep every finished client. It is assigned
	// under mu because, on a ctx that has already ended, the AfterFunc may
	// report (and so read stop) before AfterFunc returns; done then has
	// nothing to unregister.
	var (
		mu   sync.Mutex
		stop func() bool
	)
	c := NewClient(msg, func(echoed []byte, err error) {
		mu.Lock()
		s := stop
		mu.Unlock()
		if s != nil {
			s()
		}
		done(echoed, err)
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

// Roundtrip sends msg to the echo server at addr over r, waits for it to
// come back, and returns the echoed bytes. It is the blocking form of
// Connect: the error is nil only when exactly msg came back. It returns by
// the time ctx ends, with ctx's error, even if the reactor never reports.
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
