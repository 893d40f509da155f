package bench

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/twistbench/twistbench/bench/results"
	"github.com/twistbench/twistbench/impls/reactor"
)

// Protocols builds the server side of the network scenarios on a reactor.
// The CLI fills it from impls/echo and impls/poetry; tests may use their own.
type Protocols struct {
	// Echo serves the echo protocol.
	Echo reactor.Factory
	// Poetry returns a factory that serves poem to every client and closes.
	Poetry func(poem []byte) reactor.Factory
}

// ServerSpec says which server a trial needs.
type ServerSpec struct {
	// Proto is "echo" or "poetry".
	Proto string
	// Backend is the reactor's registry name.
	Backend string
	// Listeners is how many ports to serve on (poetry's K); 0 means 1.
	Listeners int
	// PoemSize is the size of the poem (see Poem) for "poetry".
	PoemSize int
}

func (s ServerSpec) listeners() int { return max(s.Listeners, 1) }

// Args renders s as the flags of the child server command.
func (s ServerSpec) Args() []string {
	return []string{"--proto", s.Proto, "--reactor", s.Backend,
		"--listeners", strconv.Itoa(s.listeners()), "--poem-size", strconv.Itoa(s.PoemSize)}
}

// Server is a running server under test.
type Server interface {
	// Addrs are its listening addresses, one per ServerSpec.Listeners.
	Addrs() []string
	// CPU returns the CPU time the server has used so far; ok is false
	// when it cannot be told apart from the generator's (in-process) or
	// cannot be seen at all (--target).
	CPU() (cpu time.Duration, ok bool)
	// Close stops the server and releases what it holds.
	Close() error
}

// Launcher starts a fresh server for each trial.
type Launcher interface {
	Launch(ctx context.Context, spec ServerSpec) (Server, error)
}

// Serve is the server side of a launch: it starts newReactor, listens on
// spec.listeners() loopback ports with the spec's protocol, writes one
// "listen ADDR" line per port and then "ready" to w, and serves until ctx
// ends. The child process of Child runs it.
func Serve(ctx context.Context, spec ServerSpec, newReactor reactor.New, p Protocols, w io.Writer) error {
	r, addrs, err := start(spec, newReactor, p)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		fmt.Fprintf(w, "listen %s\n", a)
	}
	fmt.Fprintln(w, "ready")
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return r.Shutdown(sctx)
}

func start(spec ServerSpec, newReactor reactor.New, p Protocols) (reactor.Reactor, []string, error) {
	var f reactor.Factory
	switch spec.Proto {
	case "echo":
		f = p.Echo
	case "poetry":
		if spec.PoemSize < 1 {
			return nil, nil, fmt.Errorf("poetry server: poem size %d, need at least 1", spec.PoemSize)
		}
		if p.Poetry != nil {
			f = p.Poetry(Poem(spec.PoemSize))
		}
	default:
		return nil, nil, fmt.Errorf("unknown protocol %q (known: echo, poetry)", spec.Proto)
	}
	if f == nil {
		return nil, nil, fmt.Errorf("no %s protocol wired in", spec.Proto)
	}
	r, err := newReactor()
	if err != nil {
		return nil, nil, fmt.Errorf("reactor %s: %w", spec.Backend, err)
	}
	var addrs []string
	for range spec.listeners() {
		ln, err := r.Listen("127.0.0.1:0", f)
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return nil, nil, errors.Join(fmt.Errorf("reactor %s: listen: %w", spec.Backend, err), r.Shutdown(ctx))
		}
		addrs = append(addrs, ln.Addr().String())
	}
	return r, addrs, nil
}

// InProcess launches servers inside this process. Their CPU cannot be told
// apart from the generator's, so it is reported as not measured; prefer
// Child for figures, InProcess for tests and go test -bench.
type InProcess struct {
	Reactors  map[string]reactor.New
	Protocols Protocols
}

// Launch implements Launcher.
func (l InProcess) Launch(_ context.Context, spec ServerSpec) (Server, error) {
	nr, ok := l.Reactors[spec.Backend]
	if !ok {
		return nil, fmt.Errorf("unknown reactor %q", spec.Backend)
	}
	r, addrs, err := start(spec, nr, l.Protocols)
	if err != nil {
		return nil, err
	}
	return &inProcess{r: r, addrs: addrs}, nil
}

type inProcess struct {
	r     reactor.Reactor
	addrs []string
}

func (s *inProcess) Addrs() []string            { return s.addrs }
func (s *inProcess) CPU() (time.Duration, bool) { return 0, false }
func (s *inProcess) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.r.Shutdown(ctx)
}

// Fixed is a server started elsewhere (--target host:port): every trial
// uses the same addresses, and its CPU is not seen.
type Fixed []string

// Launch implements Launcher.
func (f Fixed) Launch(context.Context, ServerSpec) (Server, error) { return fixed(f), nil }

type fixed []string

func (f fixed) Addrs() []string            { return f }
func (f fixed) CPU() (time.Duration, bool) { return 0, false }
func (f fixed) Close() error               { return nil }

// Child launches each server as a child process running Serve: Command
// followed by ServerSpec.Args (for the harness, its own executable and
// "bench server"). The child's CPU is read from /proc/PID/stat, so the
// server's CPU per operation is measured apart from the generator's; and
// with CPUs set, the child runs on those CPUs only.
type Child struct {
	Command []string
	// CPUs, if set, pins the child (and so its every thread) to these.
	CPUs []int
	// Stderr receives the child's standard error; nil discards it.
	Stderr io.Writer
	// Env, if set, is the child's environment (nil inherits this one's).
	Env []string
}

// Launch implements Launcher. The child exits when its standard input
// closes, so it cannot outlive the harness.
func (l Child) Launch(ctx context.Context, spec ServerSpec) (Server, error) {
	if len(l.Command) == 0 {
		return nil, errors.New("child server: no command")
	}
	args := append(append([]string(nil), l.Command[1:]...), spec.Args()...)
	cmd := exec.Command(l.Command[0], args...)
	cmd.Stderr = l.Stderr
	cmd.Env = l.Env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := startPinned(cmd, l.CPUs); err != nil {
		return nil, fmt.Errorf("child server: %w", err)
	}
	c := &child{cmd: cmd, stdin: stdin}
	lines := make(chan string)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, errors.Join(ctx.Err(), c.close(readDone, lines))
		case <-timer.C:
			return nil, errors.Join(fmt.Errorf("child server %s %s: not ready after 30s", spec.Proto, spec.Backend), c.close(readDone, lines))
		case line, ok := <-lines:
			switch {
			case !ok:
				return nil, errors.Join(fmt.Errorf("child server %s %s exited before it was ready", spec.Proto, spec.Backend), c.close(readDone, lines))
			case line == "ready":
				// Drain the rest of stdout in the background until exit.
				go func() {
					for range lines {
					}
				}()
				c.readDone = readDone
				return c, nil
			case strings.HasPrefix(line, "listen "):
				c.addrs = append(c.addrs, strings.TrimPrefix(line, "listen "))
			}
		}
	}
}

type child struct {
	cmd      *exec.Cmd
	stdin    io.Closer
	addrs    []string
	readDone chan struct{}
	once     sync.Once
	err      error
}

func (c *child) Addrs() []string { return c.addrs }

func (c *child) CPU() (time.Duration, bool) {
	_, ticks, err := results.ReadProcCPU(c.cmd.Process.Pid)
	if err != nil {
		return 0, false
	}
	return time.Duration(ticks) * time.Second / results.ClockTicks, true
}

func (c *child) Close() error {
	c.once.Do(func() { c.err = c.close(c.readDone, nil) })
	return c.err
}

// close asks the child to stop (stdin EOF), kills it if it has not exited
// within 15 s, and reaps it.
func (c *child) close(readDone chan struct{}, lines chan string) error {
	c.stdin.Close()
	if lines != nil {
		go func() {
			for range lines {
			}
		}()
	}
	exited := make(chan error, 1)
	go func() {
		<-readDone // stdout at EOF: Wait may now close the pipe
		exited <- c.cmd.Wait()
	}()
	t := time.NewTimer(15 * time.Second)
	defer t.Stop()
	select {
	case err := <-exited:
		if err != nil {
			return fmt.Errorf("child server: %w", err)
		}
		return nil
	case <-t.C:
		c.cmd.Process.Kill()
		<-exited
		return errors.New("child server: did not exit within 15s of being asked; killed")
	}
}

// startPinned starts cmd restricted to cpus: the child inherits the CPU
// mask of the thread that forks it, so that thread is pinned for the
// duration of Start and restored after.
func startPinned(cmd *exec.Cmd, cpus []int) error {
	if len(cpus) == 0 {
		return cmd.Start()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return fmt.Errorf("reading CPU affinity: %w", err)
	}
	if err := unix.SchedSetaffinity(0, cpuSet(cpus)); err != nil {
		return fmt.Errorf("pinning to CPUs %v: %w", cpus, err)
	}
	err := cmd.Start()
	if rerr := unix.SchedSetaffinity(0, &old); rerr != nil && err == nil {
		err = fmt.Errorf("restoring CPU affinity: %w", rerr)
	}
	return err
}

func cpuSet(cpus []int) *unix.CPUSet {
	var s unix.CPUSet
	for _, c := range cpus {
		s.Set(c)
	}
	return &s
}

// PinProcess restricts every thread of this process to cpus (new threads
// inherit the mask of the thread that creates them) and returns a function
// that restores the previous mask.
func PinProcess(cpus []int) (restore func() error, err error) {
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return nil, fmt.Errorf("reading CPU affinity: %w", err)
	}
	set := func(s *unix.CPUSet) error {
		tids, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		var errs []error
		for _, d := range tids {
			tid, err := strconv.Atoi(d.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, s); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("thread %d: %w", tid, err))
			}
		}
		return errors.Join(errs...)
	}
	if err := set(cpuSet(cpus)); err != nil {
		return nil, errors.Join(fmt.Errorf("pinning to CPUs %v: %w", cpus, err), set(&old))
	}
	return func() error { return set(&old) }, nil
}

// AvailableCPUs returns how many CPUs this process may run on.
func AvailableCPUs() int {
	var s unix.CPUSet
	if err := unix.SchedGetaffinity(0, &s); err != nil {
		return runtime.NumCPU()
	}
	return s.Count()
}

// ProcessCPU is the CPU time (user + system) this process has used.
func ProcessCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ServerCPU is the default CPUSampler of a trial: this process's CPU as
// the generator's, and srv's as the server's.
type ServerCPU struct{ Server Server }

// Sample implements CPUSampler.
func (s ServerCPU) Sample() CPUSample {
	out := CPUSample{Client: ProcessCPU()}
	if s.Server != nil {
		out.Server, out.ServerOK = s.Server.CPU()
	}
	out.HostBusy, out.HostOK = HostBusy()
	return out
}

// HostBusy returns the CPU time the whole machine has spent busy (every
// state of /proc/stat's "cpu" line but idle and iowait), summed over CPUs.
func HostBusy() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, false
	}
	var busy int64
	// user nice system idle iowait irq softirq steal (guest and
	// guest_nice are already inside user and nice).
	for i, v := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, false
		}
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / results.ClockTicks, true
}

// ParseServerSpec parses the flags ServerSpec.Args renders; the child
// server command calls it on its arguments.
func ParseServerSpec(args []string) (ServerSpec, error) {
	fs := flag.NewFlagSet("bench server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var s ServerSpec
	fs.StringVar(&s.Proto, "proto", "", "echo or poetry")
	fs.StringVar(&s.Backend, "reactor", "", "reactor back-end")
	fs.IntVar(&s.Listeners, "listeners", 1, "ports to listen on")
	fs.IntVar(&s.PoemSize, "poem-size", 0, "poem size in bytes")
	if err := fs.Parse(args); err != nil {
		return ServerSpec{}, fmt.Errorf("bench server: %w", err)
	}
	if fs.NArg() > 0 {
		return ServerSpec{}, fmt.Errorf("bench server: unexpected argument %q", fs.Arg(0))
	}
	if s.Proto == "" || s.Backend == "" {
		return ServerSpec{}, errors.New("bench server: --proto and --reactor are required")
	}
	if s.Listeners < 1 || s.Listeners > 64 {
		return ServerSpec{}, fmt.Errorf("bench server: --listeners %d is outside 1-64", s.Listeners)
	}
	return s, nil
}

// UntilEOF returns a context that ends when r reaches EOF (or fails): a
// child server reads its standard input with it, so that it stops when the
// parent closes the pipe or dies.
func UntilEOF(ctx context.Context, r io.Reader) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		_, _ = io.Copy(io.Discard, r)
		cancel()
	}()
	return ctx, cancel
}

// SplitCPUs picks, from the CPUs this process may use, one for the server
// and the others for the generator; ok is false with fewer than two.
func SplitCPUs() (server, generator []int, ok bool) {
	var s unix.CPUSet
	if err := unix.SchedGetaffinity(0, &s); err != nil {
		return nil, nil, false
	}
	var cpus []int
	for i := 0; i < len(s)*64 && len(cpus) < s.Count(); i++ {
		if s.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	if len(cpus) < 2 {
		return nil, nil, false
	}
	return cpus[:1], cpus[1:], true
}
