package epoll

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/twistbench/twistbench/impls/reactor"
)

type echoProto struct{ t reactor.Transport }

func (e *echoProto) ConnectionMade(t reactor.Transport) { e.t = t }
func (e *echoProto) DataReceived(b []byte)              { e.t.Write(b) }
func (e *echoProto) ConnectionLost(error)               {}

// TestAcceptBacksOffOnEMFILE runs the process out of descriptors: the
// listener must back off (a bounded number of accept retries in a window,
// where a busy loop would retry thousands of times), keep its socket open,
// and accept again once descriptors are free.
func TestAcceptBacksOffOnEMFILE(t *testing.T) {
	r, err := NewWithOptions(Options{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(context.Background())
	rl, err := r.Listen("127.0.0.1:0", reactor.FactoryFunc(func(net.Addr) reactor.Protocol { return &echoProto{} }))
	if err != nil {
		t.Fatal(err)
	}
	ln := rl.(*listener)
	addr := ln.Addr().String()

	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = uint64(len(ents)) + 16
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
				t.Errorf("restoring RLIMIT_NOFILE: %v", err)
			}
		}
	}
	defer restore()

	// Fill every free descriptor, then free one for a client: its
	// connection waits in the backlog and the reactor's accept fails.
	var dummies []int
	defer func() {
		for _, fd := range dummies {
			unix.Close(fd)
		}
	}()
	for range low.Cur {
		fd, err := unix.Dup(0)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				t.Fatalf("dup: %v", err)
			}
			break
		}
		dummies = append(dummies, fd)
	}
	unix.Close(dummies[len(dummies)-1])
	dummies = dummies[:len(dummies)-1]
	queued, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial with one descriptor free: %v", err)
	}
	defer queued.Close()
	waitUntil(t, "an accept to fail for want of descriptors", func() bool { return ln.backoffs.Load() > 0 })

	// Observation window: backoff starts at 10 ms and doubles, so a few
	// retries fit in it; a loop retrying at once would make thousands.
	before := ln.backoffs.Load()
	time.Sleep(300 * time.Millisecond)
	if n := ln.backoffs.Load() - before; n > 10 {
		t.Errorf("%d accept retries in 300 ms while out of descriptors: the loop spins", n)
	}

	for _, fd := range dummies {
		unix.Close(fd)
	}
	dummies = nil
	restore()
	// The queued connection is accepted now, and new ones too.
	queued.SetDeadline(time.Now().Add(20 * time.Second))
	queued.Write([]byte("late"))
	got := make([]byte, 4)
	if _, err := io.ReadFull(queued, got); err != nil || string(got) != "late" {
		t.Fatalf("echo on the connection queued while out of descriptors = %q, %v", got, err)
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial after descriptors were freed: %v (the listener did not survive)", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	c.Write([]byte("back"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "back" {
		t.Fatalf("echo after recovery = %q, %v", got, err)
	}
}

// waitUntil polls cond (bounded in time) for state no callback signals.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
