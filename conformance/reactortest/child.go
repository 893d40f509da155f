package reactortest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/twistbench/twistbench/impls/reactor"
)

// A case that changes the whole process (RX-RES-001 lowers RLIMIT_NOFILE)
// runs its body in a child process: the program re-executes itself with
// childCaseEnv naming the case, and the child, on reaching Run or Record
// again, runs only that case's child side and prints one verdict line that
// the parent reads.
//
//   - Under go test (Run), the child is the test binary itself, run with
//     -test.run anchored to the case's subtest, so it reaches the same
//     Run(t, newReactor) call with the same back-end.
//   - Under Record, in a program that is not a test binary (the harness), the
//     child is the same program with the same arguments, plus
//     childBackendEnv naming the back-end: its Record call for that back-end
//     runs the child side and exits the process; its other Record calls
//     return nothing. A program that calls Record must therefore reach the
//     same Record calls when run again with the same arguments, and must
//     check InChild before writing any output of its own.
//   - Under Record inside a test binary there is no way to reach the same
//     call again, and the case skips, saying so.
const (
	childCaseEnv     = "TWISTBENCH_REACTORTEST_CHILD"
	childBackendEnv  = "TWISTBENCH_REACTORTEST_BACKEND"
	childDeadlineEnv = "TWISTBENCH_REACTORTEST_CHILD_BUDGET"
	childVerdict     = "reactortest child verdict"
)

// testBinaryChildArgs, when set (by this package's own tests only), gives
// the arguments that make this test binary reach the same Record call for
// backend again, so that Record's child cases run inside a test binary too.
var testBinaryChildArgs func(backend string) []string

// childCase is the case this process is the child of, or "".
func childCase() string { return os.Getenv(childCaseEnv) }

// InChild reports whether this process is a child re-executed by a case of
// the suite. A program that calls Record checks it, and writes no output of
// its own when it is true: the child's Record calls exit the process, so
// getting past them means the child found no case to run.
func InChild() bool { return childCase() != "" }

// childBodies are the child sides of the cases that need a process.
var childBodies = map[string]func(newReactor reactor.New, deadline time.Time) error{
	"RX-RES-001": exhaustDescriptors,
}

func childDeadline() time.Time {
	d, err := time.ParseDuration(os.Getenv(childDeadlineEnv))
	if err != nil || d <= 0 {
		d = time.Minute
	}
	return time.Now().Add(d)
}

func childBody(id string, newReactor reactor.New) error {
	body, ok := childBodies[id]
	if !ok {
		return fmt.Errorf("no child side for case %q", id)
	}
	return body(newReactor, childDeadline())
}

func printVerdict(id string, err error) {
	if err != nil {
		fmt.Printf("%s %s: fail: %s\n", childVerdict, id, strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	fmt.Printf("%s %s: ok\n", childVerdict, id)
}

// runChild is the child side under go test.
func runChild(t *testing.T, id string, newReactor reactor.New) {
	err := childBody(id, newReactor)
	printVerdict(id, err)
	if err != nil {
		t.Error(err)
	}
}

// recordChild is the child side under Record; it returns the exit code.
func recordChild(id string, newReactor reactor.New) int {
	err := childBody(id, newReactor)
	printVerdict(id, err)
	if err != nil {
		return 1
	}
	return 0
}

// runExhaustionParent starts the child for e's case and reads its verdict.
func runExhaustionParent(e *env) {
	exe, err := os.Executable()
	if err != nil {
		e.t.Fatalf("cannot find this program to re-execute it: %v", err)
	}
	var args []string
	env := append(os.Environ(), childCaseEnv+"="+e.id,
		childDeadlineEnv+"="+(time.Until(e.deadline)*8/10).String())
	switch {
	case e.mode.test:
		args = []string{"-test.run=" + anchoredRun(e.t.Name()), "-test.count=1",
			"-test.timeout=" + time.Until(e.deadline).String()}
	case testing.Testing() && testBinaryChildArgs != nil:
		args = testBinaryChildArgs(e.mode.backend)
		env = append(env, childBackendEnv+"="+e.mode.backend)
	case testing.Testing():
		e.t.Skipf("this case needs a child process: it runs under reactortest.Run (go test) and from the harness binary, not from Record inside a test binary")
	default:
		args = os.Args[1:]
		env = append(env, childBackendEnv+"="+e.mode.backend)
	}
	cmd := exec.CommandContext(e.ctx, exe, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = time.Second
	runErr := cmd.Run()
	prefix := childVerdict + " " + e.id + ": "
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, prefix); i >= 0 {
			verdict := line[i+len(prefix):]
			e.t.Logf("child process (%s %s): %s", exe, strings.Join(args, " "), line[i:])
			if verdict == "ok" {
				return
			}
			e.t.Errorf("child process: %s", strings.TrimPrefix(verdict, "fail: "))
			return
		}
	}
	e.t.Errorf("child process (%s %s) gave no verdict: %v; output:\n%s", exe, strings.Join(args, " "), runErr, tail(out.String(), 4000))
}

// anchoredRun turns a test name ("TestX/RX-RES-001") into a -test.run
// pattern that selects exactly that subtest.
func anchoredRun(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// childEcho is the child side's echo protocol (the child has no env).
type childEcho struct{ t reactor.Transport }

func (p *childEcho) ConnectionMade(t reactor.Transport) { p.t = t }
func (p *childEcho) DataReceived(b []byte)              { p.t.Write(b) }
func (p *childEcho) ConnectionLost(error)               {}

// exhaustDescriptors is the child side of RX-RES-001. With an echo server
// running, it lowers RLIMIT_NOFILE to a little above what is open, opens
// connections until the process runs out of descriptors (both ends live in
// this process, so the reactor's accepts fail with EMFILE too), checks that
// a connection made before still echoes, frees the descriptors, and checks
// that a new connection is accepted and echoes: the reactor recovered.
func exhaustDescriptors(newReactor reactor.New, deadline time.Time) (err error) {
	r, err := newReactor()
	if err != nil {
		return fmt.Errorf("newReactor: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(5*time.Second))
		defer cancel()
		if serr := r.Shutdown(ctx); serr != nil && err == nil {
			err = fmt.Errorf("Shutdown after recovering: %w", serr)
		}
	}()
	ln, err := r.Listen("127.0.0.1:0", reactor.FactoryFunc(func(net.Addr) reactor.Protocol { return &childEcho{} }))
	if err != nil {
		return fmt.Errorf("Listen: %w", err)
	}
	addr := ln.Addr().String()
	dial := func() (net.Conn, error) {
		d := net.Dialer{Deadline: deadline}
		c, err := d.Dial("tcp", addr)
		if err == nil {
			c.SetDeadline(deadline)
		}
		return c, err
	}
	echo := func(c net.Conn, msg string) error {
		if _, err := c.Write([]byte(msg)); err != nil {
			return err
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil {
			return err
		}
		if string(got) != msg {
			return fmt.Errorf("echo %q came back as %q", msg, got)
		}
		return nil
	}
	keep, err := dial()
	if err != nil {
		return fmt.Errorf("dial before exhaustion: %w", err)
	}
	defer keep.Close()
	if err := echo(keep, "before"); err != nil {
		return fmt.Errorf("echo before exhaustion: %w", err)
	}

	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	open := len(openFDs())
	if open == 0 {
		open = 64
	}
	low := lim
	low.Cur = uint64(open) + 40
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		return fmt.Errorf("setrlimit(%d): %w", low.Cur, err)
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	exhausted := false
	for i := 0; i < 4*int(low.Cur) && !exhausted; i++ {
		c, err := dial()
		switch {
		case err == nil:
			conns = append(conns, c)
		case errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE):
			exhausted = true
		case errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET):
			// Refused, or reset while queued: the listening socket
			// was closed.
			return fmt.Errorf("the reactor stopped listening when descriptors ran out (dial %d, limit %d): %w", i+1, low.Cur, err)
		default:
			return fmt.Errorf("dial %d while exhausting descriptors (limit %d): %w", i+1, low.Cur, err)
		}
	}
	if !exhausted {
		return fmt.Errorf("%d connections under RLIMIT_NOFILE %d never ran out of descriptors", len(conns), low.Cur)
	}
	if err := echo(keep, "during"); err != nil {
		return fmt.Errorf("an established connection stopped working while descriptors ran out: %w", err)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	c, err := dial()
	if err != nil {
		return fmt.Errorf("a new connection after descriptors were freed failed, the reactor stopped listening and did not recover: %w", err)
	}
	defer c.Close()
	if err := echo(c, "after"); err != nil {
		return fmt.Errorf("a new connection after descriptors were freed got no echo (the reactor did not recover): %w", err)
	}
	if err := echo(keep, "still"); err != nil {
		return fmt.Errorf("the established connection after recovery: %w", err)
	}
	return nil
}
