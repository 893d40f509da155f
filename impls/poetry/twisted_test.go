package poetry_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// This file runs the original Twisted programs (ported to Python 3 in
// testdata/) for the interop tests. The same helpers live in
// impls/echo/twisted_test.go: test files cannot share code across
// packages without an importable package, and these are small.

// requireTwistedEnv, when "1", turns a missing Twisted into a failure: CI
// sets it so that the interop tests cannot silently skip there.
const requireTwistedEnv = "TWISTBENCH_REQUIRE_TWISTED"

var (
	pythonOnce sync.Once
	pythonPath string
	pythonErr  string
)

// twistedPython returns a Python 3 interpreter that imports twisted, or
// skips the test (fails it under TWISTBENCH_REQUIRE_TWISTED=1). It takes
// $TWISTBENCH_PYTHON when set, and otherwise tries python3 from PATH, then
// /usr/bin/python3: a pyenv or venv python3 first in PATH does not see
// Debian's packages.
func twistedPython(t *testing.T) string {
	t.Helper()
	pythonOnce.Do(func() {
		candidates := []string{"python3", "/usr/bin/python3"}
		if p := os.Getenv("TWISTBENCH_PYTHON"); p != "" {
			candidates = []string{p}
		}
		var tried []string
		for _, p := range candidates {
			path, err := exec.LookPath(p)
			if err != nil {
				tried = append(tried, p+" (not found)")
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err = exec.CommandContext(ctx, path, "-c", "import twisted.internet.reactor").Run()
			cancel()
			if err == nil {
				pythonPath = path
				return
			}
			tried = append(tried, path)
		}
		pythonErr = fmt.Sprintf("no Python 3 with Twisted (tried %v): install the Debian package python3-twisted (apt-get install python3-twisted) or set TWISTBENCH_PYTHON", tried)
	})
	if pythonPath == "" {
		if os.Getenv(requireTwistedEnv) == "1" {
			t.Fatalf("%s (%s=1)", pythonErr, requireTwistedEnv)
		}
		t.Skip(pythonErr)
	}
	return pythonPath
}

// lineWatcher is a process's stdout: it keeps everything and signals when
// a line matching re has been written, with the first submatch.
type lineWatcher struct {
	re    *regexp.Regexp
	mu    sync.Mutex
	buf   bytes.Buffer
	found chan string // receives once
	sent  bool
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.sent {
		if m := w.re.FindSubmatch(w.buf.Bytes()); m != nil {
			w.sent = true
			w.found <- string(m[1])
		}
	}
	return len(p), nil
}

func (w *lineWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// startTwisted starts a Twisted server script and returns the first
// submatch of re in its output (its port). The server is stopped with
// SIGTERM (Twisted's reactor stops cleanly on it) when the test ends.
func startTwisted(t *testing.T, re *regexp.Regexp, script string, args ...string) string {
	t.Helper()
	py := twistedPython(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, py, append([]string{script}, args...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second // then SIGKILL
	out := &lineWatcher{re: re, found: make(chan string, 1)}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = out, &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", script, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-exited // bounded by WaitDelay
	})
	select {
	case m := <-out.found:
		return m
	case err := <-exited:
		exited <- err // for the cleanup
		t.Fatalf("%s exited before listening (%v); stdout:\n%s\nstderr:\n%s", script, err, out, &stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s printed no address in 30s; stdout:\n%s", script, out)
	}
	return ""
}

// runTwisted runs a Twisted client script to completion (at most 30s) and
// returns its standard output.
func runTwisted(t *testing.T, script string, args ...string) string {
	t.Helper()
	py := twistedPython(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, append([]string{script}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v (ctx: %v); stdout:\n%s\nstderr:\n%s", script, args, err, ctx.Err(), &stdout, &stderr)
	}
	return stdout.String()
}
