package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/twistbench/twistbench/impls/reactor/gnet"
	"github.com/twistbench/twistbench/impls/reactor/netpoll"
)

// noLeaks checks, after every cleanup of t (servers included), that no
// goroutine started during t is left, apart from those that netpoll and gnet
// run for the whole process once used (their back-ends name them).
func noLeaks(t *testing.T) {
	opts := []goleak.Option{goleak.IgnoreCurrent()}
	for _, f := range append(netpoll.EngineGoroutines(), gnet.EngineGoroutines()...) {
		opts = append(opts, goleak.IgnoreAnyFunction(f))
	}
	t.Cleanup(func() { goleak.VerifyNone(t, opts...) })
}

// watcher is a command's stdout in tests: it keeps everything and hands over
// the first submatch of re as soon as a write completes it.
type watcher struct {
	re    *regexp.Regexp
	mu    sync.Mutex
	buf   bytes.Buffer
	found chan string
	sent  bool
}

func newWatcher(re string) *watcher {
	return &watcher{re: regexp.MustCompile(re), found: make(chan string, 1)}
}

func (w *watcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if m := w.re.FindSubmatch(w.buf.Bytes()); m != nil && !w.sent {
		w.sent = true
		w.found <- string(m[1])
	}
	return len(p), nil
}

func (w *watcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// syncBuffer is a stderr that a running command and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServe runs `harness serve ...` in the background, returns the
// address it printed, and when the test ends cancels its context (as SIGINT
// would) and checks that it shut down cleanly with exit code 0.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := newWatcher(`^listening on (127\.0\.0\.1:\d+)\n`)
	var stderr syncBuffer
	code := make(chan int, 1)
	go func() { code <- run(ctx, append([]string{"serve"}, args...), out, &stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case c := <-code:
			if c != 0 {
				t.Errorf("serve %v: exit %d after interrupt, want 0; stderr: %s", args, c, stderr.String())
			}
		case <-time.After(20 * time.Second):
			t.Errorf("serve %v did not stop within 20s of the interrupt", args)
		}
	})
	select {
	case addr := <-out.found:
		return addr
	case c := <-code:
		code <- c
		t.Fatalf("serve %v exited %d before listening; stdout %q, stderr %q", args, c, out.String(), stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("serve %v printed no address in 20s; stdout %q", args, out.String())
	}
	return ""
}

// harness runs the CLI to completion and returns its exit code and output.
func harness(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var o, e bytes.Buffer
	code = run(ctx, args, &o, &e)
	return code, o.String(), e.String()
}

func writePoem(t *testing.T, poem string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "poem.txt")
	if err := os.WriteFile(path, []byte(poem), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestServeRefuses covers the bad input of serve: each is refused with exit
// code 2 and one line that names what was wrong.
func TestServeRefuses(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{name: "unknown reactor", args: []string{"serve", "echo", "--reactor", "twisted"}, want: `unknown reactor "twisted"`},
		{name: "several reactors", args: []string{"serve", "echo", "--reactor", "stdnet,epoll"}, want: `--reactor takes one back-end`},
		{name: "all reactors", args: []string{"serve", "echo", "--reactor", "all"}, want: `--reactor takes one back-end`},
		{name: "bad listen address", args: []string{"serve", "echo", "--reactor", "stdnet", "--listen", "127.0.0.1:notaport"}, want: `listen on 127.0.0.1:notaport`},
		{name: "missing poem", args: []string{"serve", "poetry", "--reactor", "stdnet", "/nonexistent/poem.txt"}, want: `/nonexistent/poem.txt`},
		{name: "no poem", args: []string{"serve", "poetry"}, want: `accepts 1 arg`},
		{name: "echo takes no file", args: []string{"serve", "echo", "extra"}, want: `unknown command "extra"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := harness(t, tc.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr %q, want one line containing %q", stderr, tc.want)
			}
		})
	}
}
