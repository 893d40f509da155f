package bench

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// synthServer is a plain-Go echo server whose behaviour a test controls: it
// reads size-byte messages and hands each to reply, which returns what to
// write back. It serves on 127.0.0.1:0 until the test ends.
func synthServer(t *testing.T, size int, reply func(n int, msg []byte) []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	var count int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, size)
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					mu.Lock()
					n := count
					count++
					mu.Unlock()
					if _, err := c.Write(reply(n, buf)); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// delayed echoes every message after d: a server whose latency is known.
func delayed(d time.Duration) func(int, []byte) []byte {
	return func(_ int, msg []byte) []byte {
		time.Sleep(d) // the synthetic service time under test, not synchronisation
		return msg
	}
}

// corrupting echoes every message, flipping one byte of every k-th.
func corrupting(k int) func(int, []byte) []byte {
	return func(n int, msg []byte) []byte {
		if n%k == k-1 {
			out := append([]byte(nil), msg...)
			out[len(out)/2] ^= 0xff
			return out
		}
		return msg
	}
}

// stallOnce echoes at once, except that message number at waits d first.
func stallOnce(at int, d time.Duration) func(int, []byte) []byte {
	return func(n int, msg []byte) []byte {
		if n == at {
			time.Sleep(d) // the stall under test
		}
		return msg
	}
}

// fakeCPU is a CPUSampler whose client clock runs at rate CPU-seconds per
// wall second and whose server clock, if any, at serverRate.
type fakeCPU struct {
	start      time.Time
	rate       float64
	serverRate float64
	hostRate   float64 // the whole machine's busy CPU, if positive
}

func (f *fakeCPU) Sample() CPUSample {
	el := time.Since(f.start)
	s := CPUSample{Client: time.Duration(float64(el) * f.rate)}
	if f.serverRate > 0 {
		s.Server, s.ServerOK = time.Duration(float64(el)*f.serverRate), true
	}
	if f.hostRate > 0 {
		s.HostBusy, s.HostOK = time.Duration(float64(el)*f.hostRate), true
	}
	return s
}

// closedPort returns an address nobody listens on: bound, noted, closed.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
