package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const testContainerID = "4f3c2b1a00112233445566778899aabbccddeeff00112233445566778899aabb"

// TestContainerCgroupCPU lays out each cgroup layout Docker produces in a
// temporary root and checks that the reader finds the file and parses it.
func TestContainerCgroupCPU(t *testing.T) {
	id := testContainerID
	for _, tc := range []struct {
		name, path, content string
		want                time.Duration
	}{
		{name: "v1 cgroupfs, cpu,cpuacct", path: "cpu,cpuacct/docker/" + id + "/cpuacct.usage", content: "1234567890\n", want: 1234567890},
		{name: "v1 cgroupfs, cpuacct alone", path: "cpuacct/docker/" + id + "/cpuacct.usage", content: "42\n", want: 42},
		{name: "v1 systemd", path: "cpu,cpuacct/system.slice/docker-" + id + ".scope/cpuacct.usage", content: "7", want: 7},
		{name: "v2 systemd", path: "system.slice/docker-" + id + ".scope/cpu.stat",
			content: "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 0\n", want: 2500 * time.Millisecond},
		{name: "v2 cgroupfs", path: "docker/" + id + "/cpu.stat",
			content: "user_usec 1\nusage_usec 3\nsystem_usec 2\n", want: 3 * time.Microsecond},
		{name: "hybrid, unified only", path: "unified/docker/" + id + "/cpu.stat", content: "usage_usec 10\n", want: 10 * time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DOCKER_HOST", "")
			root := t.TempDir()
			file := filepath.Join(root, tc.path)
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := ContainerCgroupCPU(root, id)
			if err != nil {
				t.Fatal(err)
			}
			if c.Path != file {
				t.Errorf("path = %s, want %s", c.Path, file)
			}
			got, ok := c.CPU()
			if !ok || got != tc.want {
				t.Errorf("CPU() = %v, %v; want %v, true", got, ok, tc.want)
			}
		})
	}
}

// TestCgroupCPUFollowsTheFile checks that every Read reads the file anew.
func TestCgroupCPUFollowsTheFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "cpuacct.usage")
	c := CgroupCPU{Path: file}
	for _, ns := range []string{"100", "250"} {
		if err := os.WriteFile(file, []byte(ns+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := c.Read()
		if err != nil || got.String() != ns+"ns" {
			t.Errorf("after writing %s: Read() = %v, %v", ns, got, err)
		}
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.CPU(); ok {
		t.Error("CPU() of a removed cgroup file is ok, want not ok")
	}
}

func TestContainerCgroupCPUErrors(t *testing.T) {
	id := testContainerID
	write := func(t *testing.T, root, path, content string) {
		t.Helper()
		file := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, id, dockerHost string
		files                map[string]string
		want                 string
	}{
		{name: "no ID", want: "no container ID"},
		{name: "not an ID", id: "../../etc", want: "is not an ID"},
		{name: "remote engine", id: id, dockerHost: "tcp://10.0.0.1:2376", want: "remote"},
		{name: "no file", id: id, want: "no cgroup CPU file for container 4f3c2b1a0011"},
		{name: "v1 garbage", id: id, files: map[string]string{"cpuacct/docker/" + id + "/cpuacct.usage": "lots\n"},
			want: `"lots" is not a count of nanoseconds`},
		{name: "v1 negative", id: id, files: map[string]string{"cpuacct/docker/" + id + "/cpuacct.usage": "-5\n"},
			want: "is not a count of nanoseconds"},
		{name: "v2 without usage", id: id, files: map[string]string{"docker/" + id + "/cpu.stat": "user_usec 1\nsystem_usec 2\n"},
			want: "no usage_usec line"},
		{name: "v2 garbage", id: id, files: map[string]string{"docker/" + id + "/cpu.stat": "usage_usec many\n"},
			want: `usage_usec "many" is not a count`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DOCKER_HOST", tc.dockerHost)
			root := t.TempDir()
			for p, c := range tc.files {
				write(t, root, p, c)
			}
			c, err := ContainerCgroupCPU(root, tc.id)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ContainerCgroupCPU = %+v, %v; want an error with %q", c, err, tc.want)
			}
		})
	}
}

func TestContainerCgroupCPUPrefersV1(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
	root := t.TempDir()
	for path, content := range map[string]string{
		"cpuacct/docker/" + testContainerID + "/cpuacct.usage": "1500\n",
		"unified/docker/" + testContainerID + "/cpu.stat":      "usage_usec 1\n",
	} {
		file := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := ContainerCgroupCPU(root, testContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := c.CPU(); got != 1500 {
		t.Errorf("read %v from %s, want the v1 file's 1.5µs (nanosecond resolution)", got, c.Path)
	}
}
