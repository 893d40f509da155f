package reactortest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Errors the cases match with errors.Is.
var (
	errConnRefused = syscall.ECONNREFUSED
	errAddrInUse   = syscall.EADDRINUSE
	errCanceled    = context.Canceled
)

// contextWithCancel derives a cancellable context from the case's.
func contextWithCancel(e *env) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(e.ctx)
	e.t.Cleanup(cancel)
	return ctx, cancel
}

// closedPort returns a loopback address where nothing listens: a port the
// kernel just handed out and that was closed again.
func closedPort(e *env) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatalf("referee listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// fullBacklog returns the address of a listener that never accepts and
// whose accept queue is full, so that a new connect to it stays in
// progress: Linux drops the SYN of a connection it has no room to queue
// (the client retransmits for minutes). The listener is made with listen(2)
// and a backlog of 0 (one queued connection), then filled by the referee
// until one of its dials stays unanswered, which proves the queue full.
func fullBacklog(e *env) string {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		e.t.Fatalf("socket: %v", err)
	}
	e.addPeer(closerFunc(func() error { return unix.Close(fd) }))
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		e.t.Fatalf("bind: %v", err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		e.t.Fatalf("listen: %v", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		e.t.Fatalf("getsockname: %v", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
	for i := range 8 {
		d := net.Dialer{Timeout: 500 * time.Millisecond}
		c, err := d.DialContext(e.ctx, "tcp", addr)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return addr // the queue is full: connects now hang
			}
			e.t.Fatalf("filling the backlog of %s, dial %d: %v", addr, i+1, err)
		}
		e.addPeer(c)
	}
	e.t.Fatalf("the accept queue of %s (listen backlog 0) never filled after 8 connections: cannot make a connect that stays in progress here", addr)
	return ""
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
