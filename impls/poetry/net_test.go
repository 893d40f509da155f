package poetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/twistbench/twistbench/impls/reactor"
	"github.com/twistbench/twistbench/impls/reactor/stdnet"
)

// These tests run the protocols over real connections on the stdnet
// back-end, the known-good baseline; interop_test.go runs every back-end
// against the original Twisted programs.

func newReactor(t *testing.T) reactor.Reactor {
	t.Helper()
	r, err := stdnet.New()
	if err != nil {
		t.Fatalf("stdnet.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return r
}

func readPoem(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// refusedAddr returns an address nothing listens on: a port just bound and
// released, so the kernel refuses connections to it.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// rawServer serves every connection with serve on a standard-library
// listener, so a test can play a misbehaving poetry server.
func rawServer(t *testing.T, serve func(c *net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			serve(c.(*net.TCPConn))
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// TestGet downloads from good servers and bad ones at once: every address
// gets its own result, in the order given, and the failures do not disturb
// the others.
func TestGet(t *testing.T) {
	r := newReactor(t)
	poems := [][]byte{readPoem(t, "sonnet18.txt"), readPoem(t, "deathbenotproud.txt"), bytes.Repeat([]byte("a long poem\n"), 200_000)}
	var good []string
	for _, p := range poems {
		ln, err := r.Listen("127.0.0.1:0", NewServerFactory(p))
		if err != nil {
			t.Fatal(err)
		}
		good = append(good, ln.Addr().String())
	}
	reset := rawServer(t, func(c *net.TCPConn) {
		c.Write([]byte("O Rose"))
		c.SetLinger(0) // close with RST: the poem is cut
	})

	addrs := []string{good[0], refusedAddr(t), good[1], reset, good[2], "no-port"}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	got := Get(ctx, r, addrs)
	if len(got) != len(addrs) {
		t.Fatalf("Get returned %d results for %d addresses", len(got), len(addrs))
	}
	want := []struct {
		poem []byte
		err  error // nil: success; otherwise errors.Is must hold
	}{
		{poem: poems[0]},
		{err: syscall.ECONNREFUSED},
		{poem: poems[1]},
		{err: syscall.ECONNRESET}, // what came before the RST may be dropped by the kernel
		{poem: poems[2]},
		{err: ErrBadAddress},
	}
	for i, w := range want {
		res := got[i]
		if res.Addr != addrs[i] {
			t.Errorf("result %d is for %s, want %s (results must keep the order given)", i, res.Addr, addrs[i])
		}
		if w.err == nil && res.Err != nil {
			t.Errorf("%s: %v, want the poem", res.Addr, res.Err)
		}
		if w.err != nil && !errors.Is(res.Err, w.err) {
			t.Errorf("%s: err %v, want one matching %v", res.Addr, res.Err, w.err)
		}
		if w.poem != nil && !bytes.Equal(res.Poem, w.poem) {
			t.Errorf("%s: got %d bytes, want %d", res.Addr, len(res.Poem), len(w.poem))
		}
	}
}

// TestGetTimeout has a server that never ends its poem beside one that
// does: the context's end fails the first alone.
func TestGetTimeout(t *testing.T) {
	r := newReactor(t)
	poem := readPoem(t, "sickrose.txt")
	ln, err := r.Listen("127.0.0.1:0", NewServerFactory(poem))
	if err != nil {
		t.Fatal(err)
	}
	silent := rawServer(t, func(c *net.TCPConn) {
		c.Write([]byte("O Rose"))
		io.Copy(io.Discard, c) // until the client gives up
	})
	// The good download finishes first: fetched alone, then both at once
	// under a short deadline that only the silent server runs into.
	if res := Get(t.Context(), r, []string{ln.Addr().String()}); res[0].Err != nil {
		t.Fatalf("%s: %v", res[0].Addr, res[0].Err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	got := Get(ctx, r, []string{silent, ln.Addr().String()})
	if !errors.Is(got[0].Err, context.DeadlineExceeded) {
		t.Errorf("%s (never closes): err %v, want context.DeadlineExceeded", got[0].Addr, got[0].Err)
	}
	if string(got[0].Poem) != "O Rose" {
		t.Errorf("%s (never closes): partial poem %q, want what arrived, %q", got[0].Addr, got[0].Poem, "O Rose")
	}
	if got[1].Err != nil || !bytes.Equal(got[1].Poem, poem) {
		t.Errorf("%s: %q, %v; want the whole poem", got[1].Addr, got[1].Poem, got[1].Err)
	}
}

func ExampleGet() {
	r, err := stdnet.New()
	if err != nil {
		panic(err)
	}
	defer r.Shutdown(context.Background())
	ln, err := r.Listen("127.0.0.1:0", NewServerFactory([]byte("O Rose thou art sick.")))
	if err != nil {
		panic(err)
	}
	for _, res := range Get(context.Background(), r, []string{ln.Addr().String()}) {
		fmt.Printf("%s (err %v)\n", res.Poem, res.Err)
	}
	// Output: O Rose thou art sick. (err <nil>)
}
