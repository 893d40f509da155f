package results

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Environment says where and how a run happened, so that a reader (and the
// baseline comparison) can tell whether two results are comparable.
type Environment struct {
	GoVersion  string `json:"go_version"`
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	CPUModel   string `json:"cpu_model"`
	Cores      int    `json:"cores"` // logical CPUs online
	GOMAXPROCS int    `json:"gomaxprocs"`
	Kernel     string `json:"kernel"` // uname -srm
	Hostname   string `json:"hostname,omitempty"`
	// Commit is the twistbench commit measured ("" when unknown);
	// Modified says the working tree had uncommitted changes.
	Commit   string `json:"commit,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	// Databases are the servers the store suite ran against.
	Databases []Database `json:"databases,omitempty"`
	// Args is the command line; Flags the effective value of every flag.
	Args  []string          `json:"args,omitempty"`
	Flags map[string]string `json:"flags,omitempty"`
	// Pinning says which CPUs the server and the load generator were
	// restricted to ("" when not pinned).
	ServerCPUs    []int `json:"server_cpus,omitempty"`
	GeneratorCPUs []int `json:"generator_cpus,omitempty"`
	// LoadAverage is /proc/loadavg's 1, 5 and 15 minute figures at start,
	// and TopProcesses the busiest other processes then: what else was
	// competing for the CPUs.
	LoadAverage []float64 `json:"load_average,omitempty"`
	// ConntrackMax and ConntrackCount are netfilter's connection-tracking
	// table size and use at start, where the module is loaded (a Docker
	// host): loopback connections are tracked too, and a full table drops
	// SYNs, which stalls connection-churn scenarios (poetry) for seconds.
	ConntrackMax   int64     `json:"conntrack_max,omitempty"`
	ConntrackCount int64     `json:"conntrack_count,omitempty"`
	TopProcesses   []Process `json:"top_processes,omitempty"`
}

// Database is one database server a store benchmark used.
type Database struct {
	Dialect string `json:"dialect"`
	// Flavor is store.DB.Flavor: the product and version the server
	// reported ("PostgreSQL 17.2", "SQLite 3.46.1").
	Flavor string `json:"flavor"`
	// Image is the container image, empty for SQLite or a given DSN.
	Image string `json:"image,omitempty"`
}

// Process is one process's CPU use over a short sampling window.
type Process struct {
	PID        int     `json:"pid"`
	Command    string  `json:"command"`
	CPUPercent float64 `json:"cpu_percent"` // of one CPU
}

// CollectEnvironment fills in what the harness can find out by itself;
// callers add Databases, Args, Flags and the pinning. sample is how long
// process CPU use is sampled for TopProcesses (0 skips it).
func CollectEnvironment(ctx context.Context, sample time.Duration) Environment {
	env := Environment{
		GoVersion:  runtime.Version(),
		GOOS:       runtime.GOOS,
		GOARCH:     runtime.GOARCH,
		CPUModel:   cpuModel(),
		Cores:      runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		Kernel:     kernel(),
	}
	env.Hostname, _ = os.Hostname()
	env.Commit, env.Modified = commit(ctx)
	env.LoadAverage = loadAverage()
	env.ConntrackMax = readInt("/proc/sys/net/netfilter/nf_conntrack_max")
	env.ConntrackCount = readInt("/proc/sys/net/netfilter/nf_conntrack_count")
	if sample > 0 {
		env.TopProcesses = topProcesses(ctx, sample, 5)
	}
	return env
}

// readInt reads a /proc number, or 0 when the file is absent.
func readInt(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func kernel() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return strings.Join([]string{unix.ByteSliceToString(u.Sysname[:]),
		unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Machine[:])}, " ")
}

// commit prefers the VCS stamp of the binary (go build in a clone), then
// asks git about the working directory (go run, go test).
func commit(ctx context.Context) (string, bool) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev string
		var mod bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				mod = s.Value == "true"
			}
		}
		if rev != "" {
			return rev, mod
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "", false
	}
	st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output()
	return strings.TrimSpace(string(out)), err == nil && len(bytes.TrimSpace(st)) > 0
}

func loadAverage() []float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil
	}
	f := strings.Fields(string(b))
	var out []float64
	for i := 0; i < 3 && i < len(f); i++ {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return nil
		}
		out = append(out, v)
	}
	return out
}

// topProcesses samples every process's CPU ticks twice, sample apart, and
// returns the n busiest other than this one.
func topProcesses(ctx context.Context, sample time.Duration, n int) []Process {
	before := procTicks()
	t := time.NewTimer(sample)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil
	case <-t.C:
	}
	after := procTicks()
	self := os.Getpid()
	var out []Process
	for pid, a := range after {
		b, ok := before[pid]
		if !ok || pid == self || a.ticks <= b.ticks {
			continue
		}
		pct := float64(a.ticks-b.ticks) / ClockTicks / sample.Seconds() * 100
		out = append(out, Process{PID: pid, Command: a.comm, CPUPercent: float64(int(pct*10)) / 10})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CPUPercent > out[j].CPUPercent })
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// ClockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat; Linux
// fixes it at 100 for user space on every architecture.
const ClockTicks = 100

type procStat struct {
	comm  string
	ticks int64
}

func procTicks() map[int]procStat {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	out := make(map[int]procStat, len(dirs))
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		comm, ticks, err := ReadProcCPU(pid)
		if err != nil {
			continue // the process ended meanwhile
		}
		out[pid] = procStat{comm, ticks}
	}
	return out
}

// ReadProcCPU returns the command name and the user+system CPU time, in
// clock ticks (ClockTicks per second), of process pid from /proc/PID/stat.
func ReadProcCPU(pid int) (comm string, ticks int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, err
	}
	return parseProcStat(b)
}

// parseProcStat reads fields 2 (comm, in parentheses, may hold spaces and
// parentheses itself), 14 (utime) and 15 (stime) of a /proc/PID/stat line.
func parseProcStat(b []byte) (string, int64, error) {
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", 0, fmt.Errorf("malformed /proc stat line %q", s)
	}
	comm := s[open+1 : end]
	f := strings.Fields(s[end+1:])
	// f[0] is field 3 (state), so utime (14) is f[11] and stime (15) f[12].
	if len(f) < 13 {
		return "", 0, fmt.Errorf("short /proc stat line %q", s)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return "", 0, fmt.Errorf("malformed CPU times in /proc stat line %q", s)
	}
	return comm, u + st, nil
}
