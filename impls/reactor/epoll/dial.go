package epoll

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"

	"github.com/twistbench/twistbench/impls/reactor"
)

// dialer is one Connect in progress. Once its loop takes it (taskDial) it
// is touched by that loop only, except for the fields set before.
type dialer struct {
	l      *loop
	f      reactor.ClientFactory
	addr   string
	ctx    context.Context
	err    error // resolution failure, set before taskDial
	family int
	sa     unix.Sockaddr
	raddr  *net.TCPAddr

	fd    int
	gen   uint32
	stop  func() bool // stops the context.AfterFunc
	ended bool
}

func (d *dialer) setAddr(ap netip.AddrPort) {
	d.family, d.sa = addrPortToSockaddr(ap)
	d.raddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
}

// opError wraps a dial failure so that errors.Is finds its cause
// (syscall.ECONNREFUSED, context.Canceled, reactor.ErrShutdown).
func (d *dialer) opError(err error) error {
	if errors.Is(err, reactor.ErrShutdown) {
		return fmt.Errorf("epoll: connect %s: %w", d.addr, err)
	}
	oe := &net.OpError{Op: "dial", Net: "tcp", Err: err}
	if d.raddr != nil {
		oe.Addr = d.raddr
	}
	return oe
}

// fail reports a failed connect to the factory: on the dial's loop, or on
// the caller's goroutine when no loop is left to do it.
func (d *dialer) fail(err error) {
	if d.ended {
		return
	}
	d.ended = true
	if d.stop != nil {
		d.stop()
	}
	safeFailed(d.f, d.addr, d.opError(err))
}

func safeFailed(f reactor.ClientFactory, addr string, err error) {
	defer func() { recover() }() // a panicking factory must not kill the loop
	f.ClientConnectionFailed(addr, err)
}

// startDial opens the socket and starts a non-blocking connect (taskDial).
func (l *loop) startDial(d *dialer) {
	if err := d.ctx.Err(); err != nil { // first: a cancelled lookup says why
		d.fail(err)
		return
	}
	if d.err != nil {
		d.fail(d.err)
		return
	}
	fd, err := unix.Socket(d.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		d.fail(os.NewSyscallError("socket", err))
		return
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	for {
		err = unix.Connect(fd, d.sa)
		if err != unix.EINTR {
			break
		}
	}
	switch err {
	case nil:
		l.connected(d, fd, false)
	case unix.EINPROGRESS:
		gen, rerr := l.register(fd, unix.EPOLLOUT, item{d: d})
		if rerr != nil {
			unix.Close(fd)
			d.fail(rerr)
			return
		}
		d.fd, d.gen = fd, gen
		if d.ctx.Done() != nil {
			d.stop = context.AfterFunc(d.ctx, func() {
				l.post(task{kind: taskDialCancel, d: d})
			})
		}
	default:
		unix.Close(fd)
		d.fail(os.NewSyscallError("connect", err))
	}
}

// onDial completes a connect: EPOLLOUT (or ERR/HUP) fired, SO_ERROR says how.
func (l *loop) onDial(d *dialer) {
	soerr, err := unix.GetsockoptInt(d.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err == nil && soerr != 0 {
		err = os.NewSyscallError("connect", unix.Errno(soerr))
	} else if err != nil {
		err = os.NewSyscallError("getsockopt", err)
	}
	if err != nil {
		l.abandonDial(d, err)
		return
	}
	fd := d.fd
	l.dropItem(fd, d.gen)
	d.fd = -1
	l.connected(d, fd, true)
}

// cancelDial ends a connect whose context ended first (taskDialCancel).
func (l *loop) cancelDial(d *dialer) {
	if d.ended || d.fd < 0 {
		return
	}
	l.abandonDial(d, d.ctx.Err())
}

// abandonDial closes a connect in progress and reports err.
func (l *loop) abandonDial(d *dialer, err error) {
	if d.fd >= 0 {
		l.dropItem(d.fd, d.gen)
		unix.Close(d.fd)
		d.fd = -1
	}
	d.fail(err)
}

// connected turns a connected socket into a connection. registered says
// whether fd is in epoll already (as a dial waiting for EPOLLOUT).
func (l *loop) connected(d *dialer, fd int, registered bool) {
	if d.stop != nil {
		d.stop()
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		d.fail(os.NewSyscallError("getsockname", err))
		return
	}
	laddr := sockaddrToTCP(sa)
	if laddr.Port == d.raddr.Port && laddr.IP.Equal(d.raddr.IP) {
		// A connect to a free port in the ephemeral range can connect the
		// socket to itself (TCP simultaneous open). Nothing listens there:
		// report it as the refusal it stands for, as package net does.
		unix.Close(fd)
		d.fail(os.NewSyscallError("connect", unix.ECONNREFUSED))
		return
	}
	if registered {
		// Leave epoll, so that newConn registers the fd afresh.
		unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	}
	d.ended = true // from here the factory hears ClientConnectionLost
	l.newConn(fd, laddr, d.raddr, d.f, d)
}
