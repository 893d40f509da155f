package echo_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twistbench/twistbench/impls/echo"
	"github.com/twistbench/twistbench/impls/reactor"
	"github.com/twistbench/twistbench/impls/reactor/epoll"
	"github.com/twistbench/twistbench/impls/reactor/gnet"
	"github.com/twistbench/twistbench/impls/reactor/netpoll"
	"github.com/twistbench/twistbench/impls/reactor/stdnet"
)

// backends is every reactor back-end; the interop tests run on each.
var backends = []struct {
	name string
	new  reactor.New
}{
	{name: "stdnet", new: stdnet.New},
	{name: "netpoll", new: netpoll.New},
	{name: "epoll", new: epoll.New},
	{name: "gnet", new: gnet.New},
}

// startReactor builds a reactor and shuts it down when the test ends.
func startReactor(t *testing.T, newReactor reactor.New) reactor.Reactor {
	t.Helper()
	r, err := newReactor()
	if err != nil {
		t.Fatalf("new reactor: %v", err)
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

// TestTwistedClientAgainstOurServer runs the tutorial's EchoClient against
// our echo server on every back-end: it must print the message back and end
// with a lost connection, not a failed one.
func TestTwistedClientAgainstOurServer(t *testing.T) {
	twistedPython(t)
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			r := startReactor(t, b.new)
			ln, err := r.Listen("127.0.0.1:0", echo.ServerFactory)
			if err != nil {
				t.Fatal(err)
			}
			_, port, _ := net.SplitHostPort(ln.Addr().String())
			out := runTwisted(t, "testdata/echoclient.py", port)
			for _, want := range []string{"Server said: hello alex!\n", "connection lost\n", "Connection lost - goodbye!\n"} {
				if !strings.Contains(out, want) {
					t.Errorf("EchoClient output lacks %q; it printed:\n%s", want, out)
				}
			}
			if strings.Contains(out, "Connection failed") {
				t.Errorf("EchoClient could not connect; it printed:\n%s", out)
			}
		})
	}
}

// TestOurClientAgainstTwistedServer runs our echo client on every back-end
// against the tutorial's EchoServer, from the tutorial's message to a
// megabyte that Twisted reads and writes in many chunks.
func TestOurClientAgainstTwistedServer(t *testing.T) {
	port := startTwisted(t, regexp.MustCompile(`listening on 127\.0\.0\.1:(\d+)\n`), "testdata/echoserv.py", "0")
	addr := net.JoinHostPort("127.0.0.1", port)
	big := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			r := startReactor(t, b.new)
			for _, msg := range [][]byte{[]byte("hello alex!"), big} {
				ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
				got, err := echo.Roundtrip(ctx, r, addr, msg)
				cancel()
				if err != nil {
					t.Fatalf("%d-byte message: %v", len(msg), err)
				}
				if !bytes.Equal(got, msg) {
					t.Fatalf("%d-byte message: Twisted echoed %d different bytes", len(msg), len(got))
				}
			}
		})
	}
}
