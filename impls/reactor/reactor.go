// Package reactor is the Twisted-style contract that every network engine in
// twistbench implements: a Protocol reacts to events, a Transport carries its
// bytes, a Factory builds a Protocol per connection, and a Reactor listens,
// connects and shuts down.
//
// The contract exists so that the echo and poetry protocols are written once
// and measured on every engine; the engines differ only in how they turn
// readiness into these callbacks. Back-ends live in sub-packages (stdnet,
// netpoll, epoll, gnet), import this package and their engine, and nothing of
// each other. The conformance suite in conformance/reactortest checks that
// they all behave alike.
//
// # Callback lifecycle
//
// For every connection, whether accepted by a listener or made by Connect:
//
//	event                          callback                         runs
//	-----------------------------  -------------------------------  -----------------------------
//	connection established         Factory.BuildProtocol(peer)      once; nil return closes the
//	                                                                connection, no other callback
//	protocol built                 Protocol.ConnectionMade(t)       once, before anything else
//	bytes arrive (not paused)      Protocol.DataReceived(b)         0..n times, in stream order
//	peer half-closes (optional)    HalfCloseableProtocol.           at most once, only if the
//	                               ReadConnectionLost()             protocol implements it
//	connection ends                Protocol.ConnectionLost(err)     exactly once, last; err is nil
//	                                                                for a clean close (either side's
//	                                                                LoseConnection, or peer EOF)
//	client connection ended        ClientFactory.                   once, after ConnectionLost
//	                               ClientConnectionLost(addr, err)
//	client connect failed          ClientFactory.                   once, and no protocol is built
//	                               ClientConnectionFailed(addr, e)
//
// # Concurrency
//
// Callbacks of one connection never run concurrently with each other, and
// each happens-before the next; callbacks of different connections may run in
// parallel. Transport methods are safe to call from any goroutine, including
// from inside the connection's own callbacks, and never block on the network.
// The slice given to Write or WriteSequence may be reused by the caller as
// soon as the call returns (the transport copies what it cannot send at once).
// The slice given to DataReceived is valid only during the call: a protocol
// that keeps bytes must copy them.
//
// A panic in a Protocol callback is recovered by the reactor: that connection
// is aborted and hears ConnectionLost with an error wrapping ErrProtocolPanic;
// the reactor and its other connections go on.
package reactor

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// Protocol handles the events of one connection (Twisted's IProtocol).
type Protocol interface {
	// ConnectionMade is called once, before any data, with the connection's
	// transport. The protocol may write from here.
	ConnectionMade(t Transport)
	// DataReceived is called with bytes in stream order. data is valid only
	// during the call.
	DataReceived(data []byte)
	// ConnectionLost is called exactly once, after the last DataReceived.
	// err is nil for a clean close and non-nil for an abort, a reset, a
	// reactor shutdown (ErrShutdown) or a recovered panic.
	ConnectionLost(err error)
}

// HalfCloseableProtocol is an optional upgrade of Protocol (Twisted's
// IHalfCloseableProtocol). When the peer shuts down its write side, a
// protocol that implements it hears ReadConnectionLost and the connection
// stays open for writing until LoseConnection; a protocol that does not is
// treated as on a full close (ConnectionLost(nil)).
type HalfCloseableProtocol interface {
	Protocol
	ReadConnectionLost()
}

// Transport is one connection as the protocol sees it (Twisted's ITransport).
// All methods are safe from any goroutine.
type Transport interface {
	// Write queues p for sending, in order, without blocking. Writes after
	// the connection is lost or after LoseConnection are ignored.
	Write(p []byte)
	// WriteSequence is Write of the concatenation of ps.
	WriteSequence(ps [][]byte)
	// LoseConnection flushes everything pending, then closes. Calling it
	// again, or after AbortConnection, does nothing.
	LoseConnection()
	// AbortConnection closes now and drops what is pending;
	// ConnectionLost then gets a non-nil error (ErrConnectionAborted).
	AbortConnection()
	// LocalAddr is this end's address (Twisted's getHost).
	LocalAddr() net.Addr
	// RemoteAddr is the peer's address (Twisted's getPeer).
	RemoteAddr() net.Addr
	// PauseReading stops DataReceived until ResumeReading (Twisted's
	// pauseProducing). Bytes that arrive meanwhile are kept by the kernel
	// and delivered after resuming; closing a paused connection still
	// reports ConnectionLost.
	PauseReading()
	// ResumeReading undoes PauseReading.
	ResumeReading()
}

// HalfCloser is an optional upgrade of Transport (Twisted's
// loseWriteConnection): LoseWriteConnection flushes what is pending and then
// shuts down the write side only; the connection keeps reading until the
// peer closes.
type HalfCloser interface {
	LoseWriteConnection()
}

// Factory builds a Protocol for each new connection.
type Factory interface {
	// BuildProtocol is called with the peer's address. Returning nil
	// refuses the connection: it is closed and no other callback runs.
	BuildProtocol(remote net.Addr) Protocol
}

// ClientFactory is a Factory for outgoing connections that also hears how
// they end (Twisted's ClientFactory).
type ClientFactory interface {
	Factory
	// ClientConnectionFailed is called once when the connection to addr
	// could not be made (refused, unreachable, timed out, cancelled); no
	// protocol was built. err matches the cause with errors.Is (for example
	// syscall.ECONNREFUSED or context.Canceled).
	ClientConnectionFailed(addr string, err error)
	// ClientConnectionLost is called once after the protocol's
	// ConnectionLost, with the same error. Calling Reactor.Connect from
	// here reconnects.
	ClientConnectionLost(addr string, err error)
}

// Listener is a listening port (Twisted's IListeningPort).
type Listener interface {
	// Addr is the bound address; on port 0 it reports the real port.
	Addr() net.Addr
	// Close stops accepting: new connections are refused, existing ones
	// keep working. Closing twice returns nil.
	Close() error
}

// Reactor is one engine's event loop(s) (Twisted's reactor). It starts
// running when its back-end's constructor returns and stops with Shutdown.
type Reactor interface {
	// Listen binds a TCP address ("127.0.0.1:0") and serves f on it.
	Listen(addr string, f Factory) (Listener, error)
	// Serve takes over an existing TCP listener and serves f on it;
	// the reactor owns ln from then on and closes it.
	Serve(ln net.Listener, f Factory) (Listener, error)
	// Connect dials addr over TCP in the background and reports the
	// outcome through f: BuildProtocol and ConnectionMade on success,
	// ClientConnectionFailed otherwise (also when ctx ends first).
	Connect(ctx context.Context, addr string, f ClientFactory)
	// Shutdown closes every listener and every connection (each hears
	// ConnectionLost(ErrShutdown) and client factories hear
	// ClientConnectionLost), then waits until the reactor's goroutines have
	// exited and its descriptors are closed, or until ctx ends. Calls
	// after the first return the first result. Listen, Serve and Connect
	// after Shutdown fail with ErrShutdown.
	Shutdown(ctx context.Context) error
}

// Errors a back-end reports. Match them with errors.Is.
var (
	// ErrConnectionAborted is given to ConnectionLost after AbortConnection.
	ErrConnectionAborted = errors.New("reactor: connection aborted")
	// ErrShutdown is given to ConnectionLost when the reactor shuts down,
	// and returned by Listen, Serve and Connect after Shutdown.
	ErrShutdown = errors.New("reactor: shut down")
	// ErrProtocolPanic wraps a panic recovered from a Protocol callback.
	ErrProtocolPanic = errors.New("reactor: protocol panicked")
)

// PanicError wraps a recovered panic value v so that errors.Is(err,
// ErrProtocolPanic) holds and the message keeps the value.
func PanicError(v any) error {
	return fmt.Errorf("%w: %v", ErrProtocolPanic, v)
}

// New builds a Reactor. Each back-end package exports one as New; the CLI
// keeps them in a registry by name.
type New func() (Reactor, error)
