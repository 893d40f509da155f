package reactortest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"

	"github.com/twistbench/twistbench/conformance"
	"github.com/twistbench/twistbench/impls/reactor"
)

// The cases of one connection's life: callbacks, addresses, writes, bytes,
// closing. Twisted's counterparts are named in each statement's comment.

func info(id, category string, level conformance.Level, statement string) conformance.Info {
	return conformance.Info{ID: id, Category: category, Level: level, Statement: statement}
}

// pattern returns n bytes that differ from any shift of themselves, so a
// lost, doubled or reordered chunk shows as a difference.
func pattern(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

var lifecycleCases = []testCase{
	{
		// connectionmixins: ConnectionTestsMixin, "makeConnection once".
		Info: info("RX-LIFE-001", "lifecycle", conformance.Must,
			"ConnectionMade is called exactly once per connection, before any DataReceived, on the accepting and on the connecting side."),
		run: func(e *env) {
			srv := e.newProto("server protocol")
			ln := e.listen(e.factory(srv))
			peer := e.dial(ln.Addr())
			e.send(peer, []byte("early bytes")) // before the server could have made the protocol
			srv.waitData(len("early bytes"))

			cli := e.newProto("client protocol")
			c := e.newClient(func(net.Addr) *proto { return cli })
			cpeer, _ := e.connect(c)
			e.send(cpeer, []byte("hello client"))
			cli.waitData(len("hello client"))
			for _, p := range []*proto{srv, cli} {
				if made, _ := p.counts(); made != 1 {
					e.t.Errorf("%s: ConnectionMade called %d times, want 1", p.name, made)
				}
			}
		},
	},
	{
		// test_tcp: TCPConnectionTestsBuilder, connectionLost after peer close.
		Info: info("RX-LIFE-002", "lifecycle", conformance.Must,
			"When the peer closes cleanly, ConnectionLost is called exactly once, after the last DataReceived, with a nil error."),
		run: func(e *env) {
			p := e.newProto("server protocol")
			var atLost atomic.Int64
			p.onLost = func(p *proto, err error) { atLost.Store(int64(len(p.received()))) }
			peer, _ := e.serve(p)
			want := pattern(256<<10, 2)
			e.send(peer, want)
			peer.Close()
			if err := p.waitLost(); err != nil {
				e.t.Errorf("ConnectionLost(%v) after the peer's clean close, want nil", err)
			}
			if n := atLost.Load(); n != int64(len(want)) {
				e.t.Errorf("ConnectionLost came after %d of the %d bytes the peer sent before closing", n, len(want))
			}
			if got := p.received(); !equalBytes(got, want) {
				e.t.Errorf("bytes delivered: %s", diffBytes(got, want))
			}
			e.afterShutdown(func() {
				if _, lost := p.counts(); lost != 1 {
					e.t.Errorf("ConnectionLost called %d times, want exactly 1", lost)
				}
			})
		},
	},
	{
		Info: info("RX-LIFE-003", "lifecycle", conformance.Must,
			"After the protocol's own LoseConnection, the peer reads the bytes written before it and a clean EOF, and ConnectionLost is called once with a nil error."),
		run: func(e *env) {
			p := e.newProto("server protocol")
			p.onMade = func(p *proto, t reactor.Transport) {
				t.Write([]byte("goodbye"))
				t.LoseConnection()
			}
			peer, _ := e.serve(p)
			e.expectEOF(peer, []byte("goodbye"), "bytes before LoseConnection")
			if err := p.waitLost(); err != nil {
				e.t.Errorf("ConnectionLost(%v) after LoseConnection, want nil", err)
			}
		},
	},
	{
		Info: info("RX-LIFE-004", "lifecycle", conformance.Must,
			"After AbortConnection, ConnectionLost is called once with an error matching reactor.ErrConnectionAborted."),
		run: func(e *env) {
			p := e.newProto("server protocol")
			peer, _ := e.serve(p)
			p.transport().AbortConnection()
			err := p.waitLost()
			if !errors.Is(err, reactor.ErrConnectionAborted) {
				e.t.Errorf("ConnectionLost(%v) after AbortConnection, want an error matching reactor.ErrConnectionAborted", err)
			}
			e.recvAll(peer, "the aborted connection") // it must end, however
		},
	},
	{
		// test_tcp: AbortConnectionMixin / the peer resets.
		Info: info("RX-LIFE-005", "lifecycle", conformance.Must,
			"When the peer resets the connection (RST), ConnectionLost is called once with a non-nil error."),
		run: func(e *env) {
			p := e.newProto("server protocol")
			peer, _ := e.serve(p)
			e.send(peer, []byte("x"))
			p.waitData(1)
			if err := peer.SetLinger(0); err != nil {
				e.t.Fatalf("referee SetLinger(0): %v", err)
			}
			peer.Close() // linger 0: the kernel sends RST
			if err := p.waitLost(); err == nil {
				e.t.Errorf("ConnectionLost(nil) after the peer reset the connection, want a non-nil error")
			}
		},
	},
	{
		// test_tcp: "buildProtocol receives the address of the peer".
		Info: info("RX-LIFE-006", "lifecycle", conformance.Must,
			"BuildProtocol receives the peer's address: the connecting side's local address on a server, the server's address on a client."),
		run: func(e *env) {
			srv := e.newProto("server protocol")
			peer, _ := e.serve(srv)
			srv.mu.Lock()
			got := srv.remote
			srv.mu.Unlock()
			if !sameAddr(got, peer.LocalAddr()) {
				e.t.Errorf("server BuildProtocol got %v, want the peer's address %v", got, peer.LocalAddr())
			}
			cli := e.newProto("client protocol")
			c := e.newClient(func(net.Addr) *proto { return cli })
			_, rln := e.connect(c)
			cli.waitMade()
			cli.mu.Lock()
			got = cli.remote
			cli.mu.Unlock()
			if !sameAddr(got, rln.Addr()) {
				e.t.Errorf("client BuildProtocol got %v, want the server's address %v", got, rln.Addr())
			}
		},
	},
	{
		// test_tcp: "a factory returning None from buildProtocol".
		Info: info("RX-LIFE-007", "lifecycle", conformance.Must,
			"When BuildProtocol returns nil, the connection is closed: the peer reads EOF and no protocol callback runs."),
		run: func(e *env) {
			var calls atomic.Int32
			ln := e.listen(reactor.FactoryFunc(func(remote net.Addr) reactor.Protocol {
				if e.fromReferee(remote) {
					calls.Add(1)
				}
				return nil
			}))
			for i := range 3 {
				peer := e.dial(ln.Addr())
				e.expectEOF(peer, nil, fmt.Sprintf("refused connection %d", i+1))
			}
			if n := calls.Load(); n != 3 {
				e.t.Errorf("BuildProtocol called %d times for 3 connections", n)
			}
		},
	},
}

func sameAddr(a, b net.Addr) bool {
	return a != nil && b != nil && a.String() == b.String()
}

var addressCases = []testCase{
	{
		// test_tcp: TCPPortTestsMixin getHost/getPeer.
		Info: info("RX-ADDR-001", "addresses", conformance.Must,
			"On both ends of a connection, the transport's LocalAddr and RemoteAddr are the peer's RemoteAddr and LocalAddr (Twisted's getHost and getPeer)."),
		run: func(e *env) {
			srv := e.newProto("server protocol")
			peer, _ := e.serve(srv)
			check := func(side string, t reactor.Transport, peer net.Conn) {
				if l, r := t.LocalAddr(), peer.RemoteAddr(); !sameAddr(l, r) {
					e.t.Errorf("%s: LocalAddr %v, want the peer's RemoteAddr %v", side, l, r)
				}
				if r, l := t.RemoteAddr(), peer.LocalAddr(); !sameAddr(r, l) {
					e.t.Errorf("%s: RemoteAddr %v, want the peer's LocalAddr %v", side, r, l)
				}
			}
			check("server side", srv.transport(), peer)
			cli := e.newProto("client protocol")
			c := e.newClient(func(net.Addr) *proto { return cli })
			cpeer, _ := e.connect(c)
			check("client side", cli.transport(), cpeer)
		},
	},
	{
		// test_tcp: "listening on port 0 reports the real port".
		Info: info("RX-ADDR-002", "addresses", conformance.Must,
			"A listener on port 0 reports the port it really bound, and connections to that address reach it."),
		run: func(e *env) {
			p := e.newProto("server protocol")
			ln := e.listen(e.factory(p))
			a, ok := ln.Addr().(*net.TCPAddr)
			if !ok {
				ap, err := net.ResolveTCPAddr("tcp", ln.Addr().String())
				if err != nil {
					e.t.Fatalf("Listener.Addr() = %v, not a TCP address: %v", ln.Addr(), err)
				}
				a = ap
			}
			if a.Port == 0 || !a.IP.IsLoopback() {
				e.t.Fatalf("Listener.Addr() = %v, want 127.0.0.1 and the real port", a)
			}
			e.dial(a)
			p.waitMade()
		},
	},
}

var writeCases = []testCase{
	{
		Info: info("RX-WRITE-001", "write", conformance.Must,
			"Many small writes arrive in the order they were made."),
		run: func(e *env) {
			const n = 20000
			var want bytes.Buffer
			for i := range n {
				binary.Write(&want, binary.BigEndian, uint32(i))
			}
			p := e.newProto("server protocol")
			p.onMade = func(p *proto, t reactor.Transport) {
				var b [4]byte
				for i := range n {
					binary.BigEndian.PutUint32(b[:], uint32(i))
					t.Write(b[:])
				}
				t.LoseConnection()
			}
			peer, _ := e.serve(p)
			e.expectEOF(peer, want.Bytes(), fmt.Sprintf("%d 4-byte writes", n))
		},
	},
	{
		Info: info("RX-WRITE-002", "write", conformance.Must,
			"WriteSequence delivers exactly the concatenation of its slices, in order, between the writes around it."),
		run: func(e *env) {
			var seq [][]byte
			for i := range 16 {
				seq = append(seq, bytes.Repeat([]byte{byte('a' + i)}, 1+i*37))
			}
			want := append([]byte("<"), bytes.Join(seq, nil)...)
			want = append(want, '>')
			p := e.newProto("server protocol")
			p.onMade = func(p *proto, t reactor.Transport) {
				t.Write([]byte("<"))
				t.WriteSequence(seq)
				t.Write([]byte(">"))
				t.LoseConnection()
			}
			peer, _ := e.serve(p)
			e.expectEOF(peer, want, "Write, WriteSequence of 16 slices, Write")
		},
	},
	{
		// test_tcp: "writing a large amount of data to a slow reader".
		Info: info("RX-WRITE-003", "write", conformance.Must,
			"A 64 MiB Write to a peer that is not reading returns before the peer has read anything, and all 64 MiB then arrive intact."),
		slow: true,
		run: func(e *env) {
			want := pattern(64<<20, 3)
			p := e.newProto("server protocol")
			peer, _ := e.serve(p)
			t := p.transport()
			returned := make(chan struct{})
			go func() {
				defer close(returned)
				t.Write(want)
			}()
			// The referee has not read a byte: if Write waits for the
			// network, it does not return and this wait fails.
			e.wait(returned, "Write(64 MiB) to return while the peer is not reading (Write must not block)")
			t.LoseConnection()
			e.expectEOF(peer, want, "the 64 MiB write")
		},
	},
	{
		// test_tcp: "write after loseConnection / connectionLost is ignored".
		Info: info("RX-WRITE-004", "write", conformance.Must,
			"Writes after LoseConnection or after the connection is lost are ignored: nothing more is sent, nothing panics."),
		run: func(e *env) {
			p := e.newProto("server protocol")
			p.onMade = func(p *proto, t reactor.Transport) {
				t.Write([]byte("before"))
				t.LoseConnection()
				t.Write([]byte("after"))
				t.WriteSequence([][]byte{[]byte("after"), []byte("too")})
			}
			peer, _ := e.serve(p)
			e.expectEOF(peer, []byte("before"), "bytes around LoseConnection")
			p.waitLost()
			t := p.transport()
			func() {
				defer func() {
					if v := recover(); v != nil {
						e.t.Errorf("transport call after ConnectionLost panicked: %v", v)
					}
				}()
				t.Write([]byte("late"))
				t.WriteSequence([][]byte{[]byte("late")})
				t.LoseConnection()
				t.AbortConnection()
				t.PauseReading()
				t.ResumeReading()
			}()
		},
	},
	{
		Info: info("RX-WRITE-005", "write", conformance.Must,
			"Write is safe from other goroutines: the messages of concurrent writers each arrive whole, all of them, and in each writer's order."),
		run: func(e *env) {
			const writers, msgs, size = 8, 400, 64
			p := e.newProto("server protocol")
			peer, _ := e.serve(p)
			t := p.transport()
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range msgs {
						m := make([]byte, size)
						m[0] = byte(w)
						binary.BigEndian.PutUint32(m[1:], uint32(i))
						for j := 5; j < size; j++ {
							m[j] = byte(w*31 + i)
						}
						t.Write(m)
					}
				}()
			}
			all := make(chan struct{})
			go func() { wg.Wait(); close(all) }()
			got := e.recvFull(peer, writers*msgs*size, "the concurrent writers' messages")
			e.wait(all, "the writers' goroutines to return")
			next := make([]int, writers)
			for off := 0; off < len(got); off += size {
				m := got[off : off+size]
				w, i := int(m[0]), int(binary.BigEndian.Uint32(m[1:]))
				if w >= writers || i != next[w] || !bytes.Equal(m[5:], bytes.Repeat([]byte{byte(w*31 + i)}, size-5)) {
					e.t.Fatalf("message at offset %d is torn or out of order: writer %d, index %d (expected index %d)", off, w, i, next[min(w, writers-1)])
				}
				next[w]++
			}
		},
	},
	{
		Info: info("RX-WRITE-006", "write", conformance.Must,
			"A zero-length Write or WriteSequence sends nothing and leaves the stream and the connection as they were."),
		run: func(e *env) {
			p := e.newProto("server protocol")
			p.onMade = func(p *proto, t reactor.Transport) {
				t.Write(nil)
				t.Write([]byte{})
				t.Write([]byte("a"))
				t.WriteSequence(nil)
				t.WriteSequence([][]byte{{}, []byte("b"), nil})
				t.Write([]byte{})
				t.Write([]byte("c"))
			}
			peer, _ := e.serve(p)
			got := e.recvFull(peer, 3, "bytes around empty writes")
			if string(got) != "abc" {
				e.t.Errorf("got %q, want \"abc\"", got)
			}
			p.transport().Write(nil)
			e.send(peer, []byte("still open"))
			p.waitData(len("still open"))
			p.transport().LoseConnection()
			e.expectEOF(peer, nil, "the rest of the stream")
		},
	},
	{
		Info: info("RX-WRITE-007", "write", conformance.Must,
			"The caller may reuse the slice given to Write or WriteSequence as soon as the call returns."),
		run: func(e *env) {
			const size = 1 << 20
			p := e.newProto("server protocol")
			peer, _ := e.serve(p)
			t := p.transport()
			var want []byte
			buf := make([]byte, size)
			// The referee is not reading, so most of this is still pending
			// in the transport when the buffer is overwritten.
			for i := range 8 {
				for j := range buf { // two halves that differ, so a swap shows
					buf[j] = byte('A' + i + 32*(2*j/size))
				}
				want = append(want, buf...)
				if i%2 == 0 {
					t.Write(buf)
				} else {
					t.WriteSequence([][]byte{buf[:size/2], buf[size/2:]})
				}
			}
			for j := range buf {
				buf[j] = 'z'
			}
			t.LoseConnection()
			e.expectEOF(peer, want, "8 writes of one reused buffer")
		},
	},
}

var dataCases = []testCase{
	{
		// test_tcp: "all byte values".
		Info: info("RX-DATA-001", "data", conformance.Must,
			"All 256 byte values pass intact in both directions."),
		run: func(e *env) {
			p := e.echoProto("echo protocol")
			peer, _ := e.serve(p)
			var want []byte
			for range 4 {
				for b := range 256 {
					want = append(want, byte(b))
				}
			}
			e.send(peer, want)
			got := e.recvFull(peer, len(want), "the echo of all byte values")
			if !equalBytes(got, want) {
				e.t.Errorf("echo of bytes 0..255: %s", diffBytes(got, want))
			}
		},
	},
	{
		Info: info("RX-DATA-002", "data", conformance.Must,
			"A stream written one byte at a time arrives intact in both directions, however it is fragmented."),
		run: func(e *env) {
			const n = 2048
			want := pattern(n, 4)
			p := e.newProto("server protocol")
			peer, _ := e.serve(p)
			peer.SetNoDelay(true)
			for i := range want {
				e.send(peer, want[i:i+1])
			}
			if got := p.waitData(n); !equalBytes(got, want) {
				e.t.Errorf("%d one-byte writes from the peer: %s", n, diffBytes(got, want))
			}
			t := p.transport()
			for i := range want {
				t.Write(want[i : i+1])
			}
			t.LoseConnection()
			e.expectEOF(peer, want, fmt.Sprintf("%d one-byte writes from the transport", n))
		},
	},
}

var closeCases = []testCase{
	{
		// test_tcp: "loseConnection flushes pending writes".
		Info: info("RX-CLOSE-001", "close", conformance.Must,
			"LoseConnection sends everything written before it, however much is still pending, then closes cleanly."),
		slow: true,
		run: func(e *env) {
			want := pattern(32<<20, 5)
			done := make(chan struct{})
			p := e.newProto("server protocol")
			p.onMade = func(p *proto, t reactor.Transport) {
				defer close(done)
				for off := 0; off < len(want); off += 1 << 20 {
					t.Write(want[off : off+1<<20])
				}
				t.LoseConnection()
			}
			peer, _ := e.serve(p)
			// The referee starts reading only now: nearly all 32 MiB are
			// pending in the transport when LoseConnection is called.
			e.wait(done, "ConnectionMade to return after writing 32 MiB")
			e.expectEOF(peer, want, "32 MiB written before LoseConnection")
			if err := p.waitLost(); err != nil {
				e.t.Errorf("ConnectionLost(%v) after LoseConnection, want nil", err)
			}
		},
	},
	{
		Info: info("RX-CLOSE-002", "close", conformance.Must,
			"LoseConnection called twice is harmless: the pending bytes are sent once and ConnectionLost is called once, with nil."),
		run: func(e *env) {
			want := pattern(1<<20, 6)
			p := e.newProto("server protocol")
			p.onMade = func(p *proto, t reactor.Transport) {
				t.Write(want)
				t.LoseConnection()
				t.LoseConnection()
			}
			peer, _ := e.serve(p)
			e.expectEOF(peer, want, "1 MiB then LoseConnection twice")
			if err := p.waitLost(); err != nil {
				e.t.Errorf("ConnectionLost(%v), want nil", err)
			}
		},
	},
	{
		Info: info("RX-CLOSE-003", "close", conformance.Must,
			"AbortConnection called twice is harmless: ConnectionLost is called once, with an error matching ErrConnectionAborted."),
		run: func(e *env) {
			p := e.newProto("server protocol")
			peer, _ := e.serve(p)
			t := p.transport()
			t.AbortConnection()
			t.AbortConnection()
			if err := p.waitLost(); !errors.Is(err, reactor.ErrConnectionAborted) {
				e.t.Errorf("ConnectionLost(%v), want an error matching ErrConnectionAborted", err)
			}
			e.recvAll(peer, "the aborted connection")
		},
	},
	{
		// test_tcp: AbortConnectionMixin "abortConnection then loseConnection".
		Info: info("RX-CLOSE-004", "close", conformance.Must,
			"AbortConnection then LoseConnection gives one ConnectionLost, with an error matching ErrConnectionAborted."),
		run: func(e *env) {
			p := e.newProto("server protocol")
			p.onMade = func(p *proto, t reactor.Transport) {
				t.Write([]byte("dropped"))
				t.AbortConnection()
				t.LoseConnection()
			}
			ln := e.listen(e.factory(p))
			peer := e.dialRacing(ln.Addr())
			if err := p.waitLost(); !errors.Is(err, reactor.ErrConnectionAborted) {
				e.t.Errorf("ConnectionLost(%v), want an error matching ErrConnectionAborted", err)
			}
			if peer != nil {
				e.recvAll(peer, "the aborted connection")
			}
		},
	},
	{
		Info: info("RX-CLOSE-005", "close", conformance.Must,
			"AbortConnection drops what is pending: ConnectionLost comes without waiting for a peer that is not reading, and that peer does not get everything."),
		slow: true,
		run: func(e *env) {
			const total = 32 << 20
			p := e.newProto("server protocol")
			peer, _ := e.serve(p)
			t := p.transport()
			t.Write(pattern(total, 7))
			t.AbortConnection()
			if err := p.waitLost(); err == nil {
				e.t.Errorf("ConnectionLost(nil) after AbortConnection, want an error")
			}
			got, _ := e.recvAll(peer, "the aborted connection")
			if len(got) >= total {
				e.t.Errorf("the peer read all %d bytes: AbortConnection flushed instead of dropping", total)
			}
		},
	},
}

var callbackCases = []testCase{
	{
		Info: info("RX-CB-001", "callbacks", conformance.Must,
			"Write and LoseConnection called from inside DataReceived deliver the reply, then a clean close."),
		run: func(e *env) {
			p := e.newProto("server protocol")
			p.onData = func(p *proto, b []byte) {
				if bytes.HasSuffix(p.received(), []byte("ping\n")) {
					p.transport().Write([]byte("pong\n"))
					p.transport().LoseConnection()
				}
			}
			peer, _ := e.serve(p)
			e.send(peer, []byte("ping\n"))
			e.expectEOF(peer, []byte("pong\n"), "the reply written from DataReceived")
			if err := p.waitLost(); err != nil {
				e.t.Errorf("ConnectionLost(%v), want nil", err)
			}
		},
	},
	{
		Info: info("RX-CB-002", "callbacks", conformance.Must,
			"AbortConnection called from inside DataReceived ends the connection with ConnectionLost(ErrConnectionAborted)."),
		run: func(e *env) {
			p := e.newProto("server protocol")
			p.onData = func(p *proto, b []byte) { p.transport().AbortConnection() }
			peer, _ := e.serve(p)
			e.send(peer, []byte("abort me"))
			if err := p.waitLost(); !errors.Is(err, reactor.ErrConnectionAborted) {
				e.t.Errorf("ConnectionLost(%v), want an error matching ErrConnectionAborted", err)
			}
			e.recvAll(peer, "the aborted connection")
		},
	},
	{
		Info: info("RX-CB-003", "callbacks", conformance.Must,
			"AbortConnection called from inside ConnectionMade ends the connection before any DataReceived, with ConnectionLost(ErrConnectionAborted)."),
		run: func(e *env) {
			p := e.newProto("server protocol")
			p.onMade = func(p *proto, t reactor.Transport) { t.AbortConnection() }
			ln := e.listen(e.factory(p))
			if peer := e.dialRacing(ln.Addr()); peer != nil {
				peer.Write([]byte("data that must not be delivered")) // may fail: the reactor may have reset already
			}
			if err := p.waitLost(); !errors.Is(err, reactor.ErrConnectionAborted) {
				e.t.Errorf("ConnectionLost(%v), want an error matching ErrConnectionAborted", err)
			}
			if got := p.received(); len(got) > 0 {
				e.t.Errorf("DataReceived delivered %d bytes after AbortConnection in ConnectionMade", len(got))
			}
		},
	},
	{
		Info: info("RX-CB-004", "callbacks", conformance.Must,
			"Write, LoseConnection and AbortConnection called from inside ConnectionLost return without effect, panic or deadlock."),
		run: func(e *env) {
			returned := make(chan struct{})
			p := e.newProto("server protocol")
			p.onLost = func(p *proto, err error) {
				defer close(returned)
				p.transport().Write([]byte("late"))
				p.transport().LoseConnection()
				p.transport().AbortConnection()
			}
			peer, _ := e.serve(p)
			peer.Close()
			e.wait(returned, "the transport calls made inside ConnectionLost to return")
		},
	},
}
