package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/twistbench/twistbench/conformance"
	"github.com/twistbench/twistbench/impls/reactor"
	"github.com/twistbench/twistbench/impls/reactor/stdnet"
)

// TestConformanceCommand runs a few reactor cases on stdnet and checks the
// three outputs: the matrix on stdout, progress on stderr, conformance.json.
func TestConformanceCommand(t *testing.T) {
	noLeaks(t)
	for _, suite := range []string{"reactor", "all"} {
		t.Run(suite, func(t *testing.T) {
			out := t.TempDir()
			code, stdout, stderr := harness(t, "conformance", "--suite", suite, "--backends", "stdnet",
				"--run", "^RX-(LIFE-00[12]|HALF-001)$", "--out", out)
			if code != 0 {
				t.Fatalf("exit %d; stderr:\n%s", code, stderr)
			}
			for _, want := range []string{"case", "level", "stdnet", "RX-LIFE-001", "RX-HALF-001", "3 pass 0 fail"} {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			if !regexp.MustCompile(`(?m)^conformance: reactor/stdnet RX-LIFE-002 pass \(`).MatchString(stderr) {
				t.Errorf("stderr lacks a progress line for RX-LIFE-002:\n%s", stderr)
			}
			m, err := conformance.ReadMatrix(filepath.Join(out, "conformance.json"))
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Cases) != 3 || len(m.Results) != 3 {
				t.Fatalf("matrix has %d cases and %d results, want 3 and 3", len(m.Cases), len(m.Results))
			}
			for _, r := range m.Results {
				if r.Suite != "reactor" || r.Backend != "stdnet" || r.Verdict != conformance.Pass {
					t.Errorf("result %+v, want reactor/stdnet pass", r)
				}
			}
			storeSkipped := strings.Contains(strings.Join(m.Skipped, "\n"), "store suite: no store back-end selected")
			if storeSkipped != (suite == "all") {
				t.Errorf("--suite %s: skipped = %q", suite, m.Skipped)
			}
		})
	}
}

// brokenListen is stdnet with a Listen that always fails.
type brokenListen struct{ reactor.Reactor }

func (brokenListen) Listen(string, reactor.Factory) (reactor.Listener, error) {
	return nil, errors.New("planted: listen disabled")
}

// TestConformanceCommandFindings: a failing case gives exit 1, a FAIL cell
// and the case named on stderr; a back-end that cannot start is named too.
func TestConformanceCommandFindings(t *testing.T) {
	noLeaks(t)
	saved, savedOrder := reactors, reactorOrder
	t.Cleanup(func() { reactors, reactorOrder = saved, savedOrder })
	reactors = map[string]reactor.New{
		"stdnet": stdnet.New,
		"broken": func() (reactor.Reactor, error) {
			r, err := stdnet.New()
			return brokenListen{r}, err
		},
		"absent": func() (reactor.Reactor, error) { return nil, errors.New("planted: no engine") },
	}
	reactorOrder = []string{"stdnet", "broken", "absent"}

	out := t.TempDir()
	code, stdout, stderr := harness(t, "conformance", "--suite", "reactor", "--backends", "stdnet,broken,absent",
		"--run", "^RX-ADDR-002$", "--out", out)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (findings); stderr:\n%s", code, stderr)
	}
	if !regexp.MustCompile(`RX-ADDR-002\s+MUST\s+pass\s+FAIL`).MatchString(stdout) {
		t.Errorf("matrix lacks the row RX-ADDR-002 MUST pass FAIL:\n%s", stdout)
	}
	for _, want := range []string{"broken/RX-ADDR-002", "planted: listen disabled", "reactor/absent: cannot start: planted: no engine"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	m, err := conformance.ReadMatrix(filepath.Join(out, "conformance.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Results) != 2 || m.Results[1].Verdict != conformance.Fail || len(m.Skipped) != 1 {
		t.Errorf("matrix results %+v, skipped %q; want stdnet pass, broken fail, absent skipped", m.Results, m.Skipped)
	}
}

func TestConformanceCommandUsage(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown suite", []string{"--suite", "nosuch", "--out", dir}, `unknown suite "nosuch"`},
		{"unknown back-end", []string{"--suite", "reactor", "--backends", "stdnet,nope", "--out", dir}, `unknown reactor back-end "nope"`},
		{"unknown back-end in all", []string{"--backends", "nope", "--out", dir}, `unknown back-end "nope"`},
		{"unknown dialect", []string{"--suite", "store", "--dialects", "oracle", "--out", dir}, `--dialects: unknown dialect "oracle"`},
		{"no out", []string{"--suite", "reactor"}, `"out" not set`},
		{"zero timeout", []string{"--timeout", "0s", "--out", dir}, "--timeout must be positive"},
		{"bad run", []string{"--run", "(", "--out", dir}, `--run "("`},
		{"a store back-end in the reactor suite", []string{"--suite", "reactor", "--backends", "gorm", "--out", dir}, `unknown reactor back-end "gorm"`},
		{"out is a file", []string{"--suite", "reactor", "--backends", "stdnet", "--out", "conformance_test.go"}, "--out: mkdir conformance_test.go"},
		{"run matches nothing", []string{"--suite", "reactor", "--backends", "stdnet", "--run", "^NOPE$", "--out", dir}, "matches no case"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := harness(t, append([]string{"conformance"}, tc.args...)...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, stderr, tc.want)
			}
		})
	}
}

// TestConformanceCommandInterrupted: an interrupt (the context main cancels
// on SIGINT) stops the run before the next case, with exit 2 and no matrix.
func TestConformanceCommandInterrupted(t *testing.T) {
	noLeaks(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"conformance", "--suite", "reactor", "--backends", "stdnet", "--out", out}, &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "conformance interrupted before reactor/stdnet: context canceled") {
		t.Fatalf("exit %d, stderr %q; want exit 2 naming where it stopped", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(out, "conformance.json")); !os.IsNotExist(err) {
		t.Errorf("conformance.json written after an interrupt (stat: %v)", err)
	}
}
