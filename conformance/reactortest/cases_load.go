package reactortest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/twistbench/twistbench/conformance"
	"github.com/twistbench/twistbench/impls/reactor"
)

// errList collects the first few errors of many goroutines.
type errList struct {
	mu   sync.Mutex
	n    int
	errs []string
}

func (l *errList) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if len(l.errs) < 5 {
		l.errs = append(l.errs, fmt.Sprintf(format, args...))
	}
}

func (l *errList) report(e *env, what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n > 0 {
		e.t.Errorf("%d of %s failed; first: %s", l.n, what, strings.Join(l.errs, "; "))
	}
}

// needFDs fails the case when the process may not open n more descriptors.
func needFDs(e *env, n uint64) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if lim.Cur < n+uint64(len(openFDs()))+64 {
		e.t.Fatalf("RLIMIT_NOFILE is %d: this case needs about %d descriptors (raise it with ulimit -n)", lim.Cur, n)
	}
}

var loadCases = []testCase{
	{
		Info: info("RX-LOAD-001", "load", conformance.Must,
			"1000 clients connected at the same time to an echo server each get back exactly what they sent."),
		slow: true,
		run: func(e *env) {
			const clients, size = 1000, 1024
			needFDs(e, 2*clients)
			ln := e.listen(e.manyFactory(func() *proto { return e.echoProto("echo protocol") }))
			var errs errList
			var connected, wg sync.WaitGroup
			start := make(chan struct{})
			connected.Add(clients)
			dialSem := make(chan struct{}, 64) // a SYN burst of 1000 would overflow the backlog
			for i := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					dialSem <- struct{}{}
					d := net.Dialer{Deadline: e.deadline}
					c, err := d.DialContext(e.ctx, "tcp", ln.Addr().String())
					<-dialSem
					connected.Done()
					if err != nil {
						errs.add("client %d: dial: %v", i, err)
						return
					}
					defer c.Close()
					c.SetDeadline(e.deadline)
					select { // every client holds its connection until all are open
					case <-start:
					case <-e.ctx.Done():
						errs.add("client %d: timed out waiting for the others to connect", i)
						return
					}
					msg := pattern(size, uint64(i)+100)
					if _, err := c.Write(msg); err != nil {
						errs.add("client %d: write: %v", i, err)
						return
					}
					got := make([]byte, size)
					if _, err := io.ReadFull(c, got); err != nil {
						errs.add("client %d: read: %v", i, err)
						return
					}
					if !equalBytes(got, msg) {
						errs.add("client %d: echo differs: %s", i, diffBytes(got, msg))
					}
				}()
			}
			allConnected := make(chan struct{})
			go func() { connected.Wait(); close(allConnected) }()
			e.wait(allConnected, "%d clients to connect", clients)
			close(start)
			finished := make(chan struct{})
			go func() { wg.Wait(); close(finished) }()
			e.wait(finished, "%d echo clients to finish", clients)
			errs.report(e, fmt.Sprintf("%d concurrent echo clients", clients))
		},
	},
	{
		Info: info("RX-LOAD-002", "load", conformance.Must,
			"100 clients made with Connect to the reactor's own echo server, all at once, each get back exactly what they sent."),
		slow: true,
		run: func(e *env) {
			const clients, size = 100, 4096
			ln := e.listen(e.manyFactory(func() *proto { return e.echoProto("echo protocol") }))
			var errs errList
			var done sync.WaitGroup
			done.Add(clients)
			for i := range clients {
				msg := pattern(size, uint64(i)+5000)
				var once sync.Once
				finish := func() { once.Do(done.Done) }
				p := e.newProto(fmt.Sprintf("client protocol %d", i))
				p.onMade = func(p *proto, t reactor.Transport) { t.Write(msg) }
				p.onData = func(p *proto, b []byte) {
					if got := p.received(); len(got) >= size {
						if !equalBytes(got, msg) {
							errs.add("client %d: echo differs: %s", i, diffBytes(got, msg))
						}
						p.transport().LoseConnection()
					}
				}
				p.onLost = func(p *proto, err error) {
					if err != nil {
						errs.add("client %d: ConnectionLost(%v)", i, err)
					}
					finish()
				}
				e.r.Connect(e.ctx, ln.Addr().String(), reactor.ClientFuncs{
					Build: func(remote net.Addr) reactor.Protocol {
						p.setRemote(remote)
						return p
					},
					Failed: func(addr string, err error) {
						errs.add("client %d: ClientConnectionFailed(%s, %v)", i, addr, err)
						finish()
					},
				})
			}
			all := make(chan struct{})
			go func() { done.Wait(); close(all) }()
			e.wait(all, "%d reactor clients to finish", clients)
			errs.report(e, fmt.Sprintf("%d reactor echo clients", clients))
		},
	},
}

var resourceCases = []testCase{
	{
		// test_tcp: "the reactor keeps running when accept fails with EMFILE".
		Info: info("RX-RES-001", "resources", conformance.Must,
			"Running out of file descriptors (a low RLIMIT_NOFILE, in a child process) does not stop the reactor: established connections keep working, and new ones are accepted once descriptors are free again."),
		slow: true,
		run:  runExhaustionParent,
	},
	{
		Info: info("RX-RES-002", "resources", conformance.Must,
			"Shutdown closes every connection: each protocol hears ConnectionLost with an error matching ErrShutdown, client factories hear ClientConnectionLost, peers see the end of the stream, and Listen and Connect then fail with ErrShutdown."),
		run: func(e *env) {
			var servers []*proto
			for i := range 3 {
				servers = append(servers, e.newProto(fmt.Sprintf("server protocol %d", i)))
			}
			ln := e.listen(e.factory(servers...))
			var peers []net.Conn
			for _, p := range servers {
				peers = append(peers, e.dial(ln.Addr()))
				p.waitMade()
			}
			var clients []*client
			var cprotos []*proto
			for i := range 2 {
				cp := e.newProto(fmt.Sprintf("client protocol %d", i))
				c := e.newClient(func(net.Addr) *proto { return cp })
				peer, _ := e.connect(c)
				cp.waitMade()
				peers = append(peers, peer)
				clients = append(clients, c)
				cprotos = append(cprotos, cp)
			}
			if err := e.r.Shutdown(e.ctx); err != nil {
				e.t.Fatalf("Shutdown: %v", err)
			}
			for _, p := range append(servers, cprotos...) {
				if !p.isLost() {
					e.t.Errorf("%s: ConnectionLost not called by the time Shutdown returned", p.name)
					continue
				}
				if err := p.waitLost(); !errors.Is(err, reactor.ErrShutdown) {
					e.t.Errorf("%s: ConnectionLost(%v) on Shutdown, want an error matching ErrShutdown", p.name, err)
				}
			}
			for i, c := range clients {
				c.mu.Lock()
				n := len(c.lost)
				c.mu.Unlock()
				if n != 1 {
					e.t.Errorf("client %d: ClientConnectionLost called %d times by the time Shutdown returned, want 1", i, n)
				}
			}
			for i, peer := range peers {
				e.recvAll(peer, fmt.Sprintf("peer %d after Shutdown", i))
			}
			if ln, err := e.r.Listen("127.0.0.1:0", e.factory()); !errors.Is(err, reactor.ErrShutdown) {
				if ln != nil {
					ln.Close()
				}
				e.t.Errorf("Listen after Shutdown: %v, want ErrShutdown", err)
			}
			c := e.newClient(nil)
			e.r.Connect(e.ctx, ln.Addr().String(), c)
			c.waitUntil("ClientConnectionFailed for a Connect after Shutdown", func() bool { return len(c.failed) > 0 })
			c.mu.Lock()
			err := c.failed[0]
			c.mu.Unlock()
			if !errors.Is(err, reactor.ErrShutdown) {
				e.t.Errorf("Connect after Shutdown: ClientConnectionFailed(%v), want ErrShutdown", err)
			}
			if err := e.r.Shutdown(e.ctx); err != nil {
				e.t.Errorf("second Shutdown: %v, want the first result (nil)", err)
			}
		},
	},
	{
		Info: info("RX-RES-003", "resources", conformance.Must,
			"After Shutdown returns, none of the reactor's goroutines and none of its file descriptors remain, however many connections it served."),
		warmUp: true,
		run: func(e *env) {
			ln := e.listen(e.manyFactory(func() *proto { return e.echoProto("echo protocol") }))
			// Connections that come and go, and some still open at Shutdown.
			for i := range 20 {
				peer := e.dial(ln.Addr())
				echo(e, peer, fmt.Sprintf("connection %d", i))
				if i%4 != 0 {
					peer.Close()
				}
			}
			for i := range 4 {
				cp := e.echoProto(fmt.Sprintf("client protocol %d", i))
				e.r.Connect(e.ctx, ln.Addr().String(), e.newClient(func(net.Addr) *proto { return cp }))
				cp.waitMade()
			}
			if err := e.r.Shutdown(e.ctx); err != nil {
				e.t.Fatalf("Shutdown: %v", err)
			}
			e.closePeers() // the referee's own descriptors
			if err := goleak.Find(e.goroutinesBefore); err != nil {
				e.t.Errorf("goroutines left after Shutdown returned: %v", err)
			}
			if e.fdsBefore == nil {
				e.t.Logf("/proc/self/fd is not readable here: descriptors not checked")
				return
			}
			if left := newFDs(e.fdsBefore); len(left) > 0 {
				e.t.Errorf("descriptors left open after Shutdown returned: %s", strings.Join(left, ", "))
			}
		},
	},
}

var concurrencyCases = []testCase{
	{
		Info: info("RX-CONC-001", "concurrency", conformance.Must,
			"Callbacks of one connection never run at the same time, even under heavy traffic in both directions with writes from another goroutine."),
		slow: true,
		run: func(e *env) {
			const in, out, chunk = 8 << 20, 8 << 20, 4 << 10
			var received int64
			var mu sync.Mutex
			p := e.newProto("server protocol")
			p.onData = func(p *proto, b []byte) {
				mu.Lock()
				received += int64(len(b))
				mu.Unlock()
			}
			peer, _ := e.serve(p)
			t := p.transport()
			writerDone := make(chan struct{})
			go func() {
				defer close(writerDone)
				buf := pattern(chunk, 11)
				for off := 0; off < out; off += chunk {
					t.Write(buf)
				}
			}()
			sent := make(chan error, 1)
			go func() {
				buf := pattern(chunk, 12)
				for off := 0; off < in; off += chunk {
					if _, err := peer.Write(buf); err != nil {
						sent <- err
						return
					}
				}
				sent <- nil
			}()
			if got := e.recvFull(peer, out, "the transport's writes"); !equalBytes(got[:chunk], pattern(chunk, 11)) {
				e.t.Errorf("the transport's writes arrived corrupted")
			}
			select {
			case err := <-sent:
				if err != nil {
					e.t.Fatalf("referee write: %v", err)
				}
			case <-e.ctx.Done():
				e.t.Fatalf("timed out waiting for the referee to send %d bytes", in)
			}
			e.wait(writerDone, "the writing goroutine")
			p.waitData(in)
			peer.Close()
			if err := p.waitLost(); err != nil {
				e.t.Errorf("ConnectionLost(%v) after the peer's close, want nil", err)
			}
			mu.Lock()
			n := received
			mu.Unlock()
			if n != in {
				e.t.Errorf("received %d bytes, want %d", n, in)
			}
			p.mu.Lock()
			v := append([]string(nil), p.violations...)
			p.mu.Unlock()
			for _, msg := range v {
				if strings.Contains(msg, "while another callback") {
					e.t.Errorf("callbacks overlapped: %s", msg)
					break
				}
			}
		},
	},
}
