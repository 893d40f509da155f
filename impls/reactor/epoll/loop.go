package epoll

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/twistbench/twistbench/impls/reactor"
)

// wakeBytes is what a wake-up writes to a loop's eventfd: the 8-byte
// counter increment 1. It is only ever read by the kernel.
var wakeBytes = []byte{1, 0, 0, 0, 0, 0, 0, 0}

// item is one registered descriptor in a loop's table, indexed by fd. Its
// generation travels in the epoll event (EpollEvent.Pad), so that an event
// fetched for a descriptor that was closed, and whose number was reused,
// within the same epoll_wait batch is recognised as stale and dropped.
type item struct {
	gen uint32
	c   *conn
	d   *dialer
	ln  *listener
}

type taskKind uint8

const (
	taskListen     taskKind = iota // register ln
	taskAdopt                      // take accepted fd from ln
	taskDial                       // start dialing d
	taskDialCancel                 // d's context ended
	taskConn                       // c needs the loop (close, flush)
	taskStop                       // Shutdown
)

// task is work handed to a loop by another goroutine (or by itself).
type task struct {
	kind taskKind
	fd   int
	sa   unix.Sockaddr
	ln   *listener
	d    *dialer
	c    *conn
}

// loop is one event loop: a goroutine, its epoll and eventfd descriptors,
// and the descriptors registered with it.
type loop struct {
	r      *Reactor
	id     int
	epfd   int
	efd    int
	events []unix.EpollEvent
	buf    []byte        // read buffer shared by the loop's connections
	iov    []unix.Iovec  // writev scratch
	efdBuf [8]byte       // eventfd read scratch
	items  []item        // by fd; loop goroutine only
	gen    uint32        // last generation handed out
	retry  []*listener   // listeners waiting out an accept backoff
	accept []task        // accept scratch
	stop   bool          // a taskStop was seen
	mu     sync.Mutex    // guards tasks, spare, stopped, and the eventfd write
	tasks  []task        //
	spare  []task        //
	closed bool          // no more tasks are taken
	queued atomic.Bool   // tasks is not empty
	asleep atomic.Bool   // the loop is (about to be) in epoll_wait
	woken  atomic.Bool   // a wake-up was written and not yet read
	goid   atomic.Uint64 // the loop goroutine's id, for Shutdown
	done   chan struct{} // closed when the loop has exited

	// Parking on the Go netpoller (see Options.BlockInEpollWait).
	pf      *os.File        // epfd, registered with the runtime's poller
	rc      syscall.RawConn // pf's raw access
	waitFn  func(uintptr) bool
	nready  int
	waitErr error
	dl      bool // a read deadline is set on pf
}

func newLoop(r *Reactor, id int, o Options) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: loop %d: %w", id, os.NewSyscallError("epoll_create1", err))
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("epoll: loop %d: %w", id, os.NewSyscallError("eventfd", err))
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(efd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &ev); err != nil {
		unix.Close(efd)
		unix.Close(epfd)
		return nil, fmt.Errorf("epoll: loop %d: %w", id, os.NewSyscallError("epoll_ctl", err))
	}
	l := &loop{
		r:      r,
		id:     id,
		epfd:   epfd,
		efd:    efd,
		events: make([]unix.EpollEvent, o.MaxEvents),
		buf:    make([]byte, o.ReadBufferSize),
		iov:    make([]unix.Iovec, maxIovecs),
		done:   make(chan struct{}),
	}
	if !o.BlockInEpollWait {
		l.park()
	}
	return l, nil
}

// park hands the epoll descriptor to the Go runtime's poller, so that an
// idle loop parks its goroutine (freeing its thread and P) instead of
// blocking a thread in epoll_wait: an epoll descriptor is itself readable
// while it has events ready. When the runtime cannot poll it, the loop
// blocks in epoll_wait as before.
func (l *loop) park() {
	if err := unix.SetNonblock(l.epfd, true); err != nil {
		return
	}
	// From here pf owns epfd (and closes it in closeFDs).
	l.pf = os.NewFile(uintptr(l.epfd), "epoll")
	if l.pf.SetReadDeadline(time.Time{}) != nil {
		return // not pollable by the runtime: block in epoll_wait
	}
	rc, err := l.pf.SyscallConn()
	if err != nil {
		return
	}
	l.rc = rc
	l.waitFn = func(fd uintptr) bool {
		l.nready, l.waitErr = unix.EpollWait(int(fd), l.events, 0)
		if l.waitErr == unix.EINTR {
			l.nready, l.waitErr = 0, nil
		}
		return l.nready > 0 || l.waitErr != nil
	}
}

// wait fetches ready events, waiting up to timeout ms (-1: forever).
func (l *loop) wait(timeout int) (int, error) {
	if l.rc == nil || timeout == 0 {
		return unix.EpollWait(l.epfd, l.events, timeout)
	}
	if timeout > 0 {
		l.pf.SetReadDeadline(time.Now().Add(time.Duration(timeout) * time.Millisecond))
		l.dl = true
	} else if l.dl {
		l.pf.SetReadDeadline(time.Time{})
		l.dl = false
	}
	if err := l.rc.Read(l.waitFn); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, nil
		}
		return 0, err
	}
	return l.nready, l.waitErr
}

func (l *loop) closeFDs() {
	unix.Close(l.efd)
	if l.pf != nil {
		l.pf.Close()
	} else {
		unix.Close(l.epfd)
	}
}

// post hands t to the loop and wakes it if it sleeps. It reports false,
// without queueing, once the loop has stopped taking tasks. The eventfd is
// written under mu, so that it cannot be closed (and its number reused)
// between the check and the write.
func (l *loop) post(t task) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.tasks = append(l.tasks, t)
	l.queued.Store(true)
	if l.asleep.Load() && l.woken.CompareAndSwap(false, true) {
		for {
			_, err := unix.Write(l.efd, wakeBytes)
			if err != unix.EINTR {
				break // EAGAIN means the counter is already non-zero: awake anyway
			}
		}
	}
	return true
}

// run is the loop goroutine.
func (l *loop) run() {
	defer close(l.done)
	l.goid.Store(goroutineID())
	for !l.stop {
		timeout := l.timeout()
		if timeout != 0 {
			// Dekker with post: post stores queued then loads asleep; we
			// store asleep then load queued, so one of us sees the other.
			l.asleep.Store(true)
			if l.queued.Load() {
				timeout = 0
			}
		}
		n, err := l.wait(timeout)
		l.asleep.Store(false)
		if err != nil && err != unix.EINTR {
			// Only a programming error (EBADF, EFAULT, EINVAL) gets here.
			l.closeAll(fmt.Errorf("epoll: loop %d: %w", l.id, os.NewSyscallError("epoll_wait", err)))
			break
		}
		for i := 0; i < n; i++ {
			l.dispatch(&l.events[i])
		}
		if l.queued.Load() {
			l.runTasks()
		}
		if len(l.retry) > 0 {
			l.retryAccepts(time.Now())
		}
	}
	l.exit()
}

// timeout is the epoll_wait timeout in milliseconds: until the earliest
// accept retry, or forever.
func (l *loop) timeout() int {
	if len(l.retry) == 0 {
		return -1
	}
	next := l.retry[0].retryAt
	for _, ln := range l.retry[1:] {
		if ln.retryAt.Before(next) {
			next = ln.retryAt
		}
	}
	d := time.Until(next)
	if d <= 0 {
		return 0
	}
	return int((d + time.Millisecond - 1) / time.Millisecond)
}

func (l *loop) dispatch(ev *unix.EpollEvent) {
	fd := int(ev.Fd)
	if fd == l.efd {
		unix.Read(l.efd, l.efdBuf[:])
		l.woken.Store(false)
		return
	}
	if fd < 0 || fd >= len(l.items) {
		return
	}
	it := &l.items[fd]
	if it.gen != uint32(ev.Pad) || it.gen == 0 {
		return // stale: the descriptor was closed in this batch
	}
	switch {
	case it.c != nil:
		l.onConn(it.c, ev.Events)
	case it.d != nil:
		l.onDial(it.d)
	case it.ln != nil:
		l.onAccept(it.ln)
	}
}

func (l *loop) runTasks() {
	l.mu.Lock()
	ts := l.tasks
	l.tasks = l.spare[:0]
	l.queued.Store(false)
	l.mu.Unlock()
	for i := range ts {
		l.handle(&ts[i])
		ts[i] = task{}
	}
	l.spare = ts[:0]
}

// handle runs one task. After Stop, nothing new is registered: adopted
// descriptors are closed and dials fail with ErrShutdown.
func (l *loop) handle(t *task) {
	switch t.kind {
	case taskListen:
		if !l.stop {
			l.startListening(t.ln)
		}
	case taskAdopt:
		if l.stop {
			unix.Close(t.fd)
			return
		}
		l.adopt(t.fd, t.sa, t.ln)
	case taskDial:
		if l.stop {
			t.d.fail(reactor.ErrShutdown)
			return
		}
		l.startDial(t.d)
	case taskDialCancel:
		l.cancelDial(t.d)
	case taskConn:
		t.c.queued.Store(false)
		l.service(t.c)
	case taskStop:
		l.stop = true
		l.closeAll(reactor.ErrShutdown)
	}
}

// register adds fd to epoll under a new generation and records it.
func (l *loop) register(fd int, events uint32, it item) (uint32, error) {
	l.gen++
	if l.gen == 0 {
		l.gen = 1
	}
	it.gen = l.gen
	ev := unix.EpollEvent{Events: events, Fd: int32(fd), Pad: int32(it.gen)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return 0, os.NewSyscallError("epoll_ctl", err)
	}
	l.setItem(fd, it)
	return it.gen, nil
}

func (l *loop) setItem(fd int, it item) {
	if fd >= len(l.items) {
		n := 2 * len(l.items)
		if n <= fd {
			n = fd + 64
		}
		items := make([]item, n)
		copy(items, l.items)
		l.items = items
	}
	l.items[fd] = it
}

// dropItem forgets fd if it is still registered under gen.
func (l *loop) dropItem(fd int, gen uint32) {
	if fd >= 0 && fd < len(l.items) && l.items[fd].gen == gen {
		l.items[fd] = item{}
	}
}

// closeAll ends everything registered with the loop with err: connections
// hear ConnectionLost(err) and dials fail. Callbacks may register nothing
// new, since l.stop is set first.
func (l *loop) closeAll(err error) {
	l.stop = true
	for fd := range l.items {
		it := l.items[fd]
		switch {
		case it.c != nil:
			l.closeConn(it.c, err)
		case it.d != nil:
			l.abandonDial(it.d, err)
		case it.ln != nil:
			l.items[fd] = item{}
			it.ln.Close()
		}
	}
	for _, ln := range l.retry {
		ln.Close()
	}
	l.retry = nil
}

// exit stops taking tasks, settles the ones left, and closes the loop's
// descriptors.
func (l *loop) exit() {
	for {
		l.mu.Lock()
		ts := l.tasks
		l.tasks = nil
		if len(ts) == 0 {
			l.closed = true
		}
		l.mu.Unlock()
		if len(ts) == 0 {
			break
		}
		for i := range ts {
			l.handle(&ts[i])
		}
	}
	// Anything a last callback registered is closed too (nothing can be:
	// l.stop refuses it; this is a guard, not a path).
	l.closeAll(reactor.ErrShutdown)
	l.closeFDs()
}
