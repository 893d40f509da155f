package epoll

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/twistbench/twistbench/impls/reactor"
)

// conn is one connection and its Transport.
//
// Who touches what: the loop goroutine alone reads the socket, runs the
// callbacks and closes the descriptor (setting closed under mu). Transport
// methods run on any goroutine and change the state under mu; any of them
// may write to the socket or change its epoll interest under mu, since mu
// also keeps the descriptor open. What only the loop can do (close,
// deliver ConnectionLost, writev the queue) is either done by the loop
// right after the running callback returns, or handed to it as a task.
//
// The hand-over after a callback is lock-free: the loop makes cb odd while
// a callback runs; a method that needs the loop stores needService and
// then loads cb, while the loop makes cb even and then loads needService.
// With sequentially consistent atomics one of the two sees the other, so
// the request is never lost, and at worst both act (which is harmless).
type conn struct {
	l      *loop
	fd     int
	gen    uint32
	laddr  *net.TCPAddr
	raddr  *net.TCPAddr
	proto  reactor.Protocol
	half   reactor.HalfCloseableProtocol // proto, if it handles half-close
	client *dialer                       // nil for accepted connections

	cb          atomic.Uint64 // odd while one of this conn's callbacks runs
	needService atomic.Bool   // the loop must look at this conn
	queued      atomic.Bool   // a taskConn is queued
	readOn      atomic.Bool   // the loop may read (EPOLLIN is wanted)

	mu        sync.Mutex
	out       outq
	direct    uint64 // cb when a callback last wrote straight to the socket
	mask      uint32 // epoll interest as registered
	wantOut   bool   // EPOLLOUT asked for: out is not empty
	paused    bool   // PauseReading
	losing    bool   // LoseConnection (or peer EOF): close once out is empty
	writeDone bool   // no more writes accepted
	shutWr    bool   // LoseWriteConnection: shut the write side once out is empty
	wrShut    bool   // write side shut
	eof       bool   // peer EOF read
	aborted   bool   // AbortConnection or a panic
	unreg     bool   // out of epoll: hung up while paused
	closed    bool   // descriptor closed; set by the loop only
	err       error  // what ConnectionLost will say; the first cause wins
}

var (
	_ reactor.Transport  = (*conn)(nil)
	_ reactor.HalfCloser = (*conn)(nil)
)

// Write sends p in order without blocking. When nothing is queued it
// writes to the socket at once; what the kernel does not take is copied.
func (c *conn) Write(p []byte) {
	if len(p) == 0 {
		return
	}
	c.mu.Lock()
	if !c.writeDone && c.writeLocked(p) {
		c.kickLocked()
	}
	c.mu.Unlock()
}

// WriteSequence writes every slice of ps as one Write, under one lock.
func (c *conn) WriteSequence(ps [][]byte) {
	c.mu.Lock()
	queued := false
	for _, p := range ps {
		if c.writeDone {
			break
		}
		if len(p) > 0 && c.writeLocked(p) {
			queued = true
		}
	}
	if queued {
		c.kickLocked()
	}
	c.mu.Unlock()
}

// writeLocked writes or queues p and reports whether it queued. Inside one
// of this conn's callbacks only the first small write goes straight out;
// later ones are queued and written together when the callback returns.
func (c *conn) writeLocked(p []byte) bool {
	if c.out.n == 0 {
		s := c.cb.Load()
		inCallback := s&1 == 1
		if !inCallback || c.direct != s || len(p) >= blockSize {
			if inCallback {
				c.direct = s
			}
			n, err := writeFD(c.fd, p)
			if err != nil {
				c.failLocked("write", err)
				c.needService.Store(true)
				return true
			}
			if n == len(p) {
				return false
			}
			p = p[n:]
		}
	}
	c.out.push(p)
	c.needService.Store(true)
	return true
}

func writeFD(fd int, p []byte) (int, error) {
	for {
		n, err := unix.Write(fd, p)
		switch err {
		case nil:
			return n, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, nil
		}
		return 0, err
	}
}

// kickLocked makes sure a change made under mu (and flagged with
// needService) is acted on. Inside a callback the loop does it when the
// callback returns; otherwise this goroutine asks for EPOLLOUT or shuts
// the write side itself, and hands closing to the loop.
func (c *conn) kickLocked() {
	if c.cb.Load()&1 == 1 || c.closed {
		return
	}
	if c.out.n > 0 && !c.wantOut {
		c.wantOut = true
		c.applyMaskLocked()
	}
	if c.out.n == 0 && c.shutWr && !c.wrShut {
		c.shutdownWriteLocked()
	}
	if c.closeDueLocked() && c.queued.CompareAndSwap(false, true) {
		c.l.post(task{kind: taskConn, c: c}) // false only if the loop is gone, which closed c already
	}
}

func (c *conn) closeDueLocked() bool {
	return c.aborted || c.err != nil || (c.losing && c.out.n == 0) || (c.eof && c.wrShut)
}

func (c *conn) shutdownWriteLocked() {
	c.wrShut = true
	unix.Shutdown(c.fd, unix.SHUT_WR) // ENOTCONN after a reset: epoll reports that
}

// applyMaskLocked registers the interest that the state calls for.
func (c *conn) applyMaskLocked() {
	rd := !c.paused && !c.eof && !c.losing && !c.aborted && c.err == nil && !c.closed
	c.readOn.Store(rd)
	var m uint32
	if rd {
		m = unix.EPOLLIN
	}
	if c.wantOut {
		m |= unix.EPOLLOUT
	}
	if c.closed || c.unreg || m == c.mask {
		return
	}
	ev := unix.EpollEvent{Events: m, Fd: int32(c.fd), Pad: int32(c.gen)}
	unix.EpollCtl(c.l.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev)
	c.mask = m
}

// failLocked records a failed write: the queue is dropped and the
// connection closes with the error, unless the peer had already closed
// cleanly (EOF), which stays a clean close.
func (c *conn) failLocked(op string, err error) {
	c.out.reset()
	c.writeDone = true
	c.wantOut = false
	c.losing = true
	if c.err == nil && !(c.eof && c.half == nil) {
		c.err = c.opError(op, err)
	}
	c.applyMaskLocked()
}

func (c *conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.laddr, Addr: c.raddr, Err: os.NewSyscallError(op, err)}
}

// abortLocked closes without flushing and reports err (the first cause).
func (c *conn) abortLocked(err error) {
	if c.closed || c.aborted {
		return
	}
	c.aborted = true
	c.writeDone = true
	c.out.reset()
	c.wantOut = false
	if c.err == nil {
		c.err = err
	}
	c.applyMaskLocked()
	c.needService.Store(true)
}

// LoseConnection flushes what is queued, then closes; ConnectionLost(nil).
func (c *conn) LoseConnection() {
	c.mu.Lock()
	if !c.closed && !c.losing && !c.aborted {
		c.losing = true
		c.writeDone = true
		c.applyMaskLocked()
		c.needService.Store(true)
		c.kickLocked()
	}
	c.mu.Unlock()
}

// AbortConnection drops what is queued and closes;
// ConnectionLost(reactor.ErrConnectionAborted).
func (c *conn) AbortConnection() {
	c.mu.Lock()
	if !c.closed && !c.aborted {
		c.abortLocked(reactor.ErrConnectionAborted)
		c.kickLocked()
	}
	c.mu.Unlock()
}

// LoseWriteConnection flushes what is queued, then shuts the write side
// down (SHUT_WR); reading goes on until the peer closes.
func (c *conn) LoseWriteConnection() {
	c.mu.Lock()
	if !c.closed && !c.writeDone {
		c.writeDone = true
		c.shutWr = true
		c.needService.Store(true)
		c.kickLocked()
	}
	c.mu.Unlock()
}

// PauseReading drops EPOLLIN: the kernel keeps what arrives.
func (c *conn) PauseReading() {
	c.mu.Lock()
	if !c.closed && !c.paused {
		c.paused = true
		c.applyMaskLocked()
	}
	c.mu.Unlock()
}

// ResumeReading asks for EPOLLIN again (and re-registers a descriptor that
// hung up while paused, so that its last bytes and EOF are read).
func (c *conn) ResumeReading() {
	c.mu.Lock()
	if !c.closed && c.paused {
		c.paused = false
		if c.unreg {
			c.unreg = false
			c.mask = 0
			ev := unix.EpollEvent{Fd: int32(c.fd), Pad: int32(c.gen)}
			unix.EpollCtl(c.l.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev)
		}
		c.applyMaskLocked()
	}
	c.mu.Unlock()
}

// LocalAddr is this end's address.
func (c *conn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr is the peer's address.
func (c *conn) RemoteAddr() net.Addr { return c.raddr }

// --- the loop's side ---

// adopt makes an accepted descriptor a connection of this loop.
func (l *loop) adopt(fd int, sa unix.Sockaddr, ln *listener) {
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	laddr := ln.addr
	if ln.unspecified {
		if lsa, err := unix.Getsockname(fd); err == nil {
			laddr = sockaddrToTCP(lsa)
		}
	}
	l.newConn(fd, laddr, sockaddrToTCP(sa), ln.f, nil)
}

// newConn registers fd, builds its protocol and runs ConnectionMade. A nil
// protocol closes fd with no callback; so does a panicking BuildProtocol,
// except that a client factory then hears ClientConnectionFailed.
func (l *loop) newConn(fd int, laddr, raddr *net.TCPAddr, f reactor.Factory, d *dialer) {
	c := &conn{l: l, fd: fd, laddr: laddr, raddr: raddr, client: d, mask: unix.EPOLLIN}
	gen, err := l.register(fd, unix.EPOLLIN, item{c: c})
	if err != nil {
		unix.Close(fd)
		if d != nil {
			d.fail(err)
		}
		return
	}
	c.gen = gen
	c.readOn.Store(true)
	proto, err := safeBuild(f, raddr)
	if proto == nil {
		l.dropItem(fd, gen)
		c.closed = true
		unix.Close(fd)
		if d != nil {
			if err != nil {
				d.fail(err)
			} else {
				d.ended = true
			}
		}
		return
	}
	if d != nil {
		d.ended = true
	}
	c.proto = proto
	c.half, _ = proto.(reactor.HalfCloseableProtocol)
	l.connectionMade(c)
}

func safeBuild(f reactor.Factory, raddr net.Addr) (p reactor.Protocol, err error) {
	defer func() {
		if v := recover(); v != nil {
			p, err = nil, reactor.PanicError(v)
		}
	}()
	return f.BuildProtocol(raddr), nil
}

// Callback wrappers: cb is odd while the callback runs, a panic aborts the
// connection with reactor.PanicError, and what the callback asked for is
// done when it returns.

func (l *loop) connectionMade(c *conn) {
	c.cb.Add(1)
	defer l.endCallback(c)
	c.proto.ConnectionMade(c)
}

func (l *loop) dataReceived(c *conn, b []byte) {
	c.cb.Add(1)
	defer l.endCallback(c)
	c.proto.DataReceived(b)
}

func (l *loop) readConnectionLost(c *conn) {
	c.cb.Add(1)
	defer l.endCallback(c)
	c.half.ReadConnectionLost()
}

func (l *loop) endCallback(c *conn) {
	if v := recover(); v != nil {
		c.mu.Lock()
		c.abortLocked(reactor.PanicError(v))
		c.mu.Unlock()
	}
	c.cb.Add(1)
	if c.needService.Load() {
		l.service(c)
	}
}

// service does what Transport methods asked of the loop: flush the
// queue, shut the write side, close.
func (l *loop) service(c *conn) {
	c.mu.Lock()
	c.needService.Store(false)
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.out.n > 0 {
		l.flushLocked(c)
	}
	if c.out.n == 0 && c.shutWr && !c.wrShut {
		c.shutdownWriteLocked()
	}
	due := c.closeDueLocked()
	c.mu.Unlock()
	if due {
		l.closeConn(c, nil)
	}
}

// flushLocked writes the queue until it is empty or the socket is full,
// and asks for EPOLLOUT only while something is left.
func (l *loop) flushLocked(c *conn) {
	for c.out.n > 0 {
		var n, want int
		var err error
		if c.out.chunks() == 1 {
			b := c.out.bufs[c.out.head][c.out.off:]
			want = len(b)
			n, err = unix.Write(c.fd, b)
		} else {
			n, want, err = l.writev(c)
		}
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			c.failLocked("write", err)
			return
		}
		c.out.consume(n)
		if n < want {
			break // the socket is full: EAGAIN would be the next answer
		}
	}
	if want := c.out.n > 0; want != c.wantOut {
		c.wantOut = want
		c.applyMaskLocked()
	}
}

// writev sends up to maxIovecs queued chunks in one syscall.
func (l *loop) writev(c *conn) (n, want int, err error) {
	q := &c.out
	cnt := 0
	for i := q.head; i < len(q.bufs) && cnt < len(l.iov); i++ {
		b := q.bufs[i]
		if i == q.head {
			b = b[q.off:]
		}
		l.iov[cnt].Base = &b[0]
		l.iov[cnt].SetLen(len(b))
		want += len(b)
		cnt++
	}
	r, _, e := unix.Syscall(unix.SYS_WRITEV, uintptr(c.fd), uintptr(unsafe.Pointer(&l.iov[0])), uintptr(cnt))
	for i := range cnt {
		l.iov[i].Base = nil // do not keep the chunks alive
	}
	if e != 0 {
		return 0, want, e
	}
	return int(r), want, nil
}

// onConn handles readiness of a connection.
func (l *loop) onConn(c *conn, ev uint32) {
	if ev&unix.EPOLLOUT != 0 {
		l.service(c)
		if c.closed {
			return
		}
	}
	if ev&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
		return
	}
	if c.readOn.Load() {
		l.readConn(c)
		return
	}
	if ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		l.hangup(c, ev)
	}
	// A bare EPOLLIN while not reading was fetched before a pause: drop it.
}

// readConn reads into the loop's buffer and delivers, a bounded number of
// times so that one busy connection cannot starve the others.
func (l *loop) readConn(c *conn) {
	for range maxReadsPerEvent {
		n, err := unix.Read(c.fd, l.buf)
		if err != nil {
			if err == unix.EAGAIN {
				return
			}
			if err == unix.EINTR {
				continue
			}
			c.mu.Lock()
			if c.err == nil && !c.closed {
				c.err = c.opError("read", err)
			}
			c.mu.Unlock()
			l.closeConn(c, nil)
			return
		}
		if n == 0 {
			l.peerEOF(c)
			return
		}
		l.dataReceived(c, l.buf[:n])
		if n < len(l.buf) || c.closed || !c.readOn.Load() {
			return
		}
	}
}

// peerEOF handles the peer's FIN: a half-closeable protocol hears
// ReadConnectionLost and may go on writing; any other is closed cleanly
// once what it wrote is flushed.
func (l *loop) peerEOF(c *conn) {
	c.mu.Lock()
	c.eof = true
	if c.half == nil {
		c.losing = true
		c.writeDone = true
	}
	c.applyMaskLocked()
	c.needService.Store(true)
	c.mu.Unlock()
	if c.half != nil {
		l.readConnectionLost(c)
	} else {
		l.service(c)
	}
}

// hangup handles EPOLLERR/EPOLLHUP on a connection that is not reading.
// Paused, a bare hang-up takes the descriptor out of epoll (it cannot be
// masked and would spin) until ResumeReading reads what is left; an error
// closes the connection with it.
func (l *loop) hangup(c *conn, ev uint32) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if ev&unix.EPOLLERR == 0 && c.paused && !c.losing {
		unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
		c.unreg = true
		// Hang-up means both directions are down: what is queued can
		// never leave, and must not keep LoseConnection waiting.
		c.out.reset()
		c.wantOut = false
		c.mask = 0
		c.mu.Unlock()
		return
	}
	if c.err == nil && !(c.eof && c.half == nil) {
		soerr, _ := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case soerr != 0:
			c.err = c.opError("read", unix.Errno(soerr))
		case c.out.n > 0:
			c.err = c.opError("write", unix.EPIPE) // both ways down, bytes left
		}
	}
	c.mu.Unlock()
	l.closeConn(c, nil)
}

// closeConn closes c's descriptor and delivers ConnectionLost (and, for a
// client, ClientConnectionLost) with c's first recorded cause, or err.
func (l *loop) closeConn(c *conn, err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.writeDone = true
	if c.err == nil {
		c.err = err
	}
	reason := c.err
	c.out.reset()
	c.wantOut = false
	c.readOn.Store(false)
	fd := c.fd
	unix.Close(fd)
	c.mu.Unlock()
	l.dropItem(fd, c.gen)

	func() {
		defer func() { recover() }() // already lost: nothing left to abort
		c.proto.ConnectionLost(reason)
	}()
	if d := c.client; d != nil {
		func() {
			defer func() { recover() }()
			d.f.ClientConnectionLost(d.addr, reason)
		}()
	}
}
