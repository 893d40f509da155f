package poetry_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twistbench/twistbench/impls/poetry"
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

// poemFiles are the poems in testdata, served by both sides.
var poemFiles = []string{"testdata/sonnet18.txt", "testdata/deathbenotproud.txt", "testdata/sickrose.txt"}

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

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOurClientAgainstTwistedServers downloads, on every back-end, from
// three Twisted Fast Poetry Servers at once with a refused address among
// them: the three poems arrive whole, in the order given, and the refused
// address fails alone.
func TestOurClientAgainstTwistedServers(t *testing.T) {
	servedOn := regexp.MustCompile(`Serving .* on IPv4Address\(type='TCP', host='127\.0\.0\.1', port=(\d+)\)\.\n`)
	var addrs []string
	var poems [][]byte
	for _, f := range poemFiles {
		port := startTwisted(t, servedOn, "testdata/fastpoetry.py", f)
		addrs = append(addrs, net.JoinHostPort("127.0.0.1", port))
		poems = append(poems, readFile(t, f))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	addrs = []string{addrs[0], refused, addrs[1], addrs[2]}
	poems = [][]byte{poems[0], nil, poems[1], poems[2]}

	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			r := startReactor(t, b.new)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			results := poetry.Get(ctx, r, addrs)
			if len(results) != len(addrs) {
				t.Fatalf("%d results for %d addresses", len(results), len(addrs))
			}
			for i, res := range results {
				if res.Addr != addrs[i] {
					t.Errorf("result %d is for %s, want %s", i, res.Addr, addrs[i])
				}
				if addrs[i] == refused {
					if !errors.Is(res.Err, syscall.ECONNREFUSED) {
						t.Errorf("%s (refused): err %v, want ECONNREFUSED", res.Addr, res.Err)
					}
					continue
				}
				if res.Err != nil {
					t.Errorf("%s: %v", res.Addr, res.Err)
				} else if !bytes.Equal(res.Poem, poems[i]) {
					t.Errorf("%s: got %q, want %q", res.Addr, res.Poem, poems[i])
				}
			}
		})
	}
}

// TestTwistedClientAgainstOurServers runs the tutorial's Get Poetry Now!
// client against three of our poetry servers on every back-end. The original
// stops only once every poem has arrived, so a server that does not close
// after the poem makes it time out; it prints the poems in the order they
// finished, so the test looks for each.
func TestTwistedClientAgainstOurServers(t *testing.T) {
	twistedPython(t)
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			r := startReactor(t, b.new)
			var args []string
			var poems []string
			for _, f := range poemFiles {
				poem := readFile(t, f)
				ln, err := r.Listen("127.0.0.1:0", poetry.NewServerFactory(poem))
				if err != nil {
					t.Fatal(err)
				}
				args = append(args, ln.Addr().String())
				poems = append(poems, string(poem))
			}
			out := runTwisted(t, "testdata/get-poetry.py", args...)
			total := 0
			for _, p := range poems {
				// print() adds a newline after each poem.
				if !strings.Contains(out, p+"\n") {
					t.Errorf("get-poetry output lacks the poem %q; it printed:\n%s", firstLine(p), out)
				}
				total += len(p) + 1
			}
			if len(out) != total {
				t.Errorf("get-poetry printed %d bytes, want %d (three poems, each and a newline):\n%s", len(out), total, out)
			}
		})
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
