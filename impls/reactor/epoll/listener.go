package epoll

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/twistbench/twistbench/impls/reactor"
)

// Accept backoff after descriptor exhaustion.
const (
	acceptRetryMin = 10 * time.Millisecond
	acceptRetryMax = time.Second
)

// listener is a listening socket owned by one loop. Close may come from
// any goroutine, so the descriptor and its epoll registration are guarded
// by mu; the loop accepts under mu too, which makes a closed listener's
// descriptor number safe from reuse while the loop still holds it.
type listener struct {
	r           *Reactor
	l           *loop // the loop that accepts
	f           reactor.Factory
	addr        *net.TCPAddr
	unspecified bool // bound to 0.0.0.0 or ::, so conns need getsockname

	mu      sync.Mutex
	fd      int
	gen     uint32 // registration generation, 0 while not polled
	closed  bool
	backoff time.Duration // accept retry delay; loop goroutine only
	retryAt time.Time     // loop goroutine only
	rr      int           // round-robin cursor over loops; loop goroutine only

	backoffs atomic.Int64 // accept failures that started a backoff (tests read it)
}

var _ reactor.Listener = (*listener)(nil)

// Addr is the bound address, with the real port when bound to port 0.
func (ln *listener) Addr() net.Addr { return ln.addr }

// Close closes the listening socket at once, so new connections are
// refused while accepted ones go on. It is safe from any goroutine,
// including the loop's own callbacks; closing twice returns nil.
func (ln *listener) Close() error {
	ln.mu.Lock()
	if ln.closed {
		ln.mu.Unlock()
		return nil
	}
	ln.closed = true
	if ln.gen != 0 {
		// The descriptor is closed right after, which would also remove
		// it from epoll; deleting first keeps the order obvious.
		unix.EpollCtl(ln.l.epfd, unix.EPOLL_CTL_DEL, ln.fd, nil)
		ln.gen = 0
	}
	err := unix.Close(ln.fd)
	ln.fd = -1
	ln.mu.Unlock()
	ln.r.forget(ln)
	if err != nil {
		return &net.OpError{Op: "close", Net: "tcp", Addr: ln.addr, Err: os.NewSyscallError("close", err)}
	}
	return nil
}

// startListening registers ln with the loop (taskListen).
func (l *loop) startListening(ln *listener) {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	if ln.closed || ln.gen != 0 {
		return
	}
	gen, err := l.register(ln.fd, unix.EPOLLIN, item{ln: ln})
	if err != nil {
		// Out of kernel memory for the registration: retry like EMFILE.
		l.backOff(ln)
		return
	}
	ln.gen = gen
}

// onAccept accepts what is pending on ln and spreads the new connections
// round-robin over the loops; this loop's share is adopted without a
// hand-off.
func (l *loop) onAccept(ln *listener) {
	acc := l.accept[:0]
	ln.mu.Lock()
	if ln.closed {
		ln.mu.Unlock()
		return
	}
	for range maxAcceptsPerWake {
		fd, sa, err := unix.Accept4(ln.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			if err == unix.EAGAIN {
				break
			}
			if err == unix.EINTR || err == unix.ECONNABORTED {
				continue
			}
			// EMFILE, ENFILE, ENOBUFS, ENOMEM, or anything unexpected:
			// stop polling the listener (level-triggered epoll would
			// report it again at once) and retry after a timer.
			unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, ln.fd, nil)
			l.dropItem(ln.fd, ln.gen)
			ln.gen = 0
			l.backOff(ln)
			break
		}
		ln.backoff = 0
		acc = append(acc, task{kind: taskAdopt, fd: fd, sa: sa, ln: ln})
	}
	ln.mu.Unlock()
	loops := l.r.loops
	for i := range acc {
		t := &acc[i]
		target := loops[ln.rr%len(loops)]
		ln.rr++
		if target == l {
			l.adopt(t.fd, t.sa, ln)
		} else if !target.post(*t) {
			unix.Close(t.fd)
		}
		acc[i] = task{}
	}
	l.accept = acc[:0]
}

// backOff schedules ln to be polled again later; ln.mu is held.
func (l *loop) backOff(ln *listener) {
	ln.backoffs.Add(1)
	if ln.backoff == 0 {
		ln.backoff = acceptRetryMin
	} else if ln.backoff *= 2; ln.backoff > acceptRetryMax {
		ln.backoff = acceptRetryMax
	}
	ln.retryAt = time.Now().Add(ln.backoff)
	l.retry = append(l.retry, ln)
}

// retryAccepts puts listeners whose backoff has run out back into epoll.
// Level-triggered, a non-empty backlog reports readiness at once.
func (l *loop) retryAccepts(now time.Time) {
	waiting := l.retry
	l.retry = nil // backOff appends here
	for _, ln := range waiting {
		if now.Before(ln.retryAt) {
			l.retry = append(l.retry, ln)
			continue
		}
		ln.mu.Lock()
		if !ln.closed && ln.gen == 0 {
			if gen, err := l.register(ln.fd, unix.EPOLLIN, item{ln: ln}); err != nil {
				l.backOff(ln)
			} else {
				ln.gen = gen
			}
		}
		ln.mu.Unlock()
	}
}

// listenSocket opens a non-blocking listening TCP socket bound to ta.
func listenSocket(ta *net.TCPAddr) (int, error) {
	family, sa, err := tcpToSockaddr(ta)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("setsockopt", err)
	}
	if family == unix.AF_INET6 {
		v6only := 1
		if ta.IP.IsUnspecified() {
			v6only = 0 // "[::]:port" serves IPv4 too, as package net does
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only); err != nil {
			unix.Close(fd)
			return -1, os.NewSyscallError("setsockopt", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("bind", err)
	}
	if err := unix.Listen(fd, listenBacklog); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("listen", err)
	}
	return fd, nil
}
