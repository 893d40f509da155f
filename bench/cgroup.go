package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// CgroupRoot is where the cgroup file systems are mounted on Linux.
const CgroupRoot = "/sys/fs/cgroup"

// CgroupCPU reads the CPU time used so far by every process of one cgroup:
// for a database in a Docker container, the server's CPU, which getrusage
// and /proc/PID/stat of the harness cannot see (the server is not its
// child). The kernel accounts it whatever the container does (forks,
// background workers, vacuum), which a per-process reading would miss.
type CgroupCPU struct {
	// Path is the file read: a v1 cpuacct.usage (nanoseconds) or a v2
	// cpu.stat (its usage_usec line).
	Path string
}

// ContainerCgroupCPU finds the CPU accounting file of the Docker container
// id (the full 64-hex ID) under root (CgroupRoot outside tests). It knows
// the layouts of both cgroup versions and both Docker cgroup drivers:
//
//	v1, cgroupfs:  <root>/cpu,cpuacct/docker/<id>/cpuacct.usage (or cpuacct/)
//	v1, systemd:   <root>/cpu,cpuacct/system.slice/docker-<id>.scope/cpuacct.usage
//	v2, systemd:   <root>/system.slice/docker-<id>.scope/cpu.stat (GitHub's runners)
//	v2, cgroupfs:  <root>/docker/<id>/cpu.stat
//
// v1 is tried first, for its nanosecond resolution (v2 counts
// microseconds); on a hybrid host the unified hierarchy (<root>/unified) is
// the last resort. The error says why no file could be read: an empty id,
// a remote engine (DOCKER_HOST not unix://, whose containers live on
// another kernel), or no readable file.
func ContainerCgroupCPU(root, id string) (CgroupCPU, error) {
	if id == "" {
		return CgroupCPU{}, errors.New("no container ID (the server is not a container this harness started)")
	}
	if strings.ContainsAny(id, "/.") {
		return CgroupCPU{}, fmt.Errorf("container ID %q is not an ID", id)
	}
	if h := os.Getenv("DOCKER_HOST"); h != "" && !strings.HasPrefix(h, "unix://") {
		return CgroupCPU{}, fmt.Errorf("the Docker engine is remote (DOCKER_HOST=%s): its containers' cgroups are not on this machine", h)
	}
	var candidates []string
	for _, ctl := range []string{"cpu,cpuacct", "cpuacct", "cpuacct,cpu"} {
		candidates = append(candidates,
			filepath.Join(root, ctl, "docker", id, "cpuacct.usage"),
			filepath.Join(root, ctl, "system.slice", "docker-"+id+".scope", "cpuacct.usage"))
	}
	for _, base := range []string{root, filepath.Join(root, "unified")} {
		candidates = append(candidates,
			filepath.Join(base, "system.slice", "docker-"+id+".scope", "cpu.stat"),
			filepath.Join(base, "docker", id, "cpu.stat"))
	}
	var errs []error
	for _, path := range candidates {
		c := CgroupCPU{Path: path}
		_, err := c.Read()
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err) // there, but unreadable: say so
		}
	}
	if len(errs) > 0 {
		return CgroupCPU{}, errors.Join(errs...)
	}
	return CgroupCPU{}, fmt.Errorf("no cgroup CPU file for container %.12s under %s (looked for v1 cpuacct.usage and v2 cpu.stat, docker/ and system.slice/ layouts)", id, root)
}

// Read returns the cgroup's CPU time so far.
func (c CgroupCPU) Read() (time.Duration, error) {
	b, err := os.ReadFile(c.Path)
	if err != nil {
		return 0, err
	}
	var d time.Duration
	if filepath.Base(c.Path) == "cpu.stat" {
		d, err = parseCPUStat(b)
	} else {
		d, err = parseCPUAcctUsage(b)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", c.Path, err)
	}
	return d, nil
}

// CPU is Read for a CPUSample: ok is false when the file cannot be read
// (the container is gone).
func (c CgroupCPU) CPU() (time.Duration, bool) {
	d, err := c.Read()
	return d, err == nil
}

// parseCPUAcctUsage parses cgroup v1's cpuacct.usage: one decimal count of
// nanoseconds.
func parseCPUAcctUsage(b []byte) (time.Duration, error) {
	s := string(bytes.TrimSpace(b))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("cpuacct.usage %q is not a count of nanoseconds", s)
	}
	return time.Duration(n), nil
}

// parseCPUStat parses the usage_usec line of cgroup v2's cpu.stat
// ("usage_usec 123456", among user_usec, system_usec, ...).
func parseCPUStat(b []byte) (time.Duration, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || key != "usage_usec" {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("cpu.stat usage_usec %q is not a count of microseconds", val)
		}
		return time.Duration(n) * time.Microsecond, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("cpu.stat has no usage_usec line")
}
