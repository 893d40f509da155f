package echo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/twistbench/twistbench/impls/reactor"
	"github.com/twistbench/twistbench/impls/reactor/stdnet"
)

// These tests run the protocols over real connections on the stdnet
// back-end, the known-good baseline; interop_test.go runs every back-end
// against the original Twisted programs, and the reactor suite runs the echo
// cases on every back-end too.

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

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRoundtrip(t *testing.T) {
	r := newReactor(t)
	ln, err := r.Listen("127.0.0.1:0", ServerFactory)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 11, 4 << 10, 1 << 20} {
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte(rng.Uint32())
		}
		got, err := Roundtrip(testCtx(t), r, ln.Addr().String(), msg)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("size %d: echoed %d bytes that differ from the message", size, len(got))
		}
	}
}

// rawServer accepts one connection with the standard library and hands it to
// serve, so a test can play a misbehaving echo server.
func rawServer(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		serve(c)
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func TestRoundtripFailures(t *testing.T) {
	refused := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}
	cases := []struct {
		name    string
		server  func(t *testing.T) string
		timeout time.Duration
		want    error
	}{
		{name: "refused", server: refused, want: syscall.ECONNREFUSED},
		{name: "wrong byte", want: ErrMismatch, server: func(t *testing.T) string {
			return rawServer(t, func(c net.Conn) {
				buf := make([]byte, 5)
				io.ReadFull(c, buf)
				buf[3] ^= 0xff
				c.Write(buf)
				io.Copy(io.Discard, c) // until the client aborts
			})
		}},
		{name: "closed early", want: ErrShort, server: func(t *testing.T) string {
			return rawServer(t, func(c net.Conn) {
				buf := make([]byte, 5)
				io.ReadFull(c, buf)
				c.Write(buf[:2])
			})
		}},
		{name: "never answers", timeout: 200 * time.Millisecond, want: context.DeadlineExceeded, server: func(t *testing.T) string {
			return rawServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newReactor(t)
			addr := tc.server(t)
			ctx := testCtx(t)
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			_, err := Roundtrip(ctx, r, addr, []byte("hello"))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Roundtrip: %v, want an error matching %v", err, tc.want)
			}
		})
	}
}

func ExampleRoundtrip() {
	r, err := stdnet.New()
	if err != nil {
		panic(err)
	}
	defer r.Shutdown(context.Background())
	ln, err := r.Listen("127.0.0.1:0", ServerFactory)
	if err != nil {
		panic(err)
	}
	echoed, err := Roundtrip(context.Background(), r, ln.Addr().String(), []byte("hello alex!"))
	if err != nil {
		panic(err)
	}
	fmt.Printf("Server said: %s\n", echoed)
	// Output: Server said: hello alex!
}
