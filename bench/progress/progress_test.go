package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/twistbench/twistbench/bench"
	"github.com/twistbench/twistbench/bench/results"
)

func TestLines(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := &Lines{W: &buf, Now: func() time.Time { return now }}
	c := &bench.Case{Suite: "reactor", Scenario: "echo-closed", Backend: "epoll", Params: []results.Param{{Key: "conns", Value: "64"}}}
	l.Begin(4, 40*time.Second)
	l.Trial(c, 1, 2)
	now = now.Add(20 * time.Second) // the first trial took twice its estimate
	l.Trial(c, 2, 2)
	l.Note("skipped something: why")
	l.End()
	want := `benchmarks: 4 trials, about 40s
[1/4] EchoClosed/backend=epoll/conns=64  repeat 1/2  ~40s left
[2/4] EchoClosed/backend=epoll/conns=64  repeat 2/2  ~1m0s left
skipped something: why
benchmarks: done in 20s
`
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestNewOnAPipeIsPlain(t *testing.T) {
	var buf bytes.Buffer
	if _, ok := New(&buf).(*Lines); !ok {
		t.Error("a non-terminal writer got the bar")
	}
}

func TestBarDoesNotPanic(t *testing.T) {
	var buf bytes.Buffer
	b := &bar{w: &buf}
	c := &bench.Case{Suite: "store", Scenario: "host_by_name", Backend: "gorm"}
	b.Begin(2, 2*time.Second)
	b.Trial(c, 1, 2)
	b.Note("note")
	b.Trial(c, 2, 2)
	b.End()
	if !strings.Contains(buf.String(), "note") || !strings.Contains(buf.String(), "done in") {
		t.Errorf("bar output: %q", buf.String())
	}
}
