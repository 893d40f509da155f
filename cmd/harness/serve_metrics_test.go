package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// startServeMetrics runs `harness serve ARGS --metrics-addr 127.0.0.1:0`
// in the background and returns the address it serves on and the URL of
// its metrics; when the test ends it interrupts it and checks the clean
// exit, as startServe does.
func startServeMetrics(t *testing.T, args ...string) (addr, metricsURL string) {
	t.Helper()
	args = append(append([]string{"serve"}, args...), "--metrics-addr", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	out := newWatcher(`^(listening on 127\.0\.0\.1:\d+\nmetrics on http://127\.0\.0\.1:\d+/metrics)\n`)
	var stderr syncBuffer
	code := make(chan int, 1)
	go func() { code <- run(ctx, args, out, &stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case c := <-code:
			if c != 0 {
				t.Errorf("%v: exit %d after interrupt, want 0; stderr: %s", args, c, stderr.String())
			}
		case <-time.After(20 * time.Second):
			t.Errorf("%v did not stop within 20s of the interrupt", args)
		}
	})
	select {
	case lines := <-out.found:
		if _, err := fmt.Sscanf(lines, "listening on %s\nmetrics on %s", &addr, &metricsURL); err != nil {
			t.Fatalf("parsing %q: %v", lines, err)
		}
		return addr, metricsURL
	case c := <-code:
		code <- c
		t.Fatalf("%v exited %d before listening; stdout %q, stderr %q", args, c, out.String(), stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("%v printed no addresses in 20s; stdout %q", args, out.String())
	}
	return "", ""
}

// scrape fetches url once, over a connection it does not keep, and parses
// the text exposition into a Gatherer that testutil can compare.
func scrape(t *testing.T, url string) prometheus.Gatherer {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the metrics of %s: %v", url, err)
	}
	// A Gatherer hands over its families sorted by name, as testutil
	// expects; the parser gives a map.
	sorted := slices.SortedFunc(maps.Values(mfs), func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return sorted, nil })
}

// reactorMetricsText is the expected exposition of the reactor metrics of
// backend with open connections open, made connections made, and n bytes
// each way (an echo server sends back exactly what it receives).
func reactorMetricsText(backend string, open, made, n int) string {
	return fmt.Sprintf(`
# HELP twistbench_reactor_open_connections Connections whose protocol has been made and not yet lost.
# TYPE twistbench_reactor_open_connections gauge
twistbench_reactor_open_connections{backend=%[1]q} %[2]d
# HELP twistbench_reactor_connections_total Connections made (accepted or connected).
# TYPE twistbench_reactor_connections_total counter
twistbench_reactor_connections_total{backend=%[1]q} %[3]d
# HELP twistbench_reactor_received_bytes_total Bytes delivered to protocols by DataReceived.
# TYPE twistbench_reactor_received_bytes_total counter
twistbench_reactor_received_bytes_total{backend=%[1]q} %[4]d
# HELP twistbench_reactor_sent_bytes_total Bytes protocols handed to Write and WriteSequence.
# TYPE twistbench_reactor_sent_bytes_total counter
twistbench_reactor_sent_bytes_total{backend=%[1]q} %[4]d
`, backend, open, made, n)
}

var reactorMetricNames = []string{
	"twistbench_reactor_open_connections", "twistbench_reactor_connections_total",
	"twistbench_reactor_received_bytes_total", "twistbench_reactor_sent_bytes_total",
}

// TestServeEchoMetrics serves echo with metrics, makes round trips of known
// sizes on connections it keeps open, and checks the scraped figures: every
// connection open and counted, and every byte counted in and out. Then it
// closes connections and waits (bounded) for the gauge to follow.
func TestServeEchoMetrics(t *testing.T) {
	noLeaks(t)
	const backend = "stdnet"
	addr, url := startServeMetrics(t, "echo", "--reactor", backend)

	sizes := []int{5, 100, 4096}
	var conns []net.Conn
	total := 0
	for i, n := range sizes {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		msg := bytes.Repeat([]byte{byte('a' + i)}, n)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, n)
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("round trip %d: %v", i, err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("round trip %d: echo differs", i)
		}
		total += n
	}
	// The echo server counts the bytes in before it writes them back, and
	// back before they can arrive here: once every echo is read, the
	// counters are final.
	if err := testutil.GatherAndCompare(scrape(t, url),
		strings.NewReader(reactorMetricsText(backend, len(sizes), len(sizes), total)), reactorMetricNames...); err != nil {
		t.Errorf("with %d connections open:\n%v", len(sizes), err)
	}

	g := scrape(t, url)
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "process_open_fds"} {
		if n, err := testutil.GatherAndCount(g, name); err != nil || n == 0 {
			t.Errorf("%s: %d series (err %v), want the Go and process collectors' figures", name, n, err)
		}
	}

	// Closing is seen by the server some time later: poll, bounded in
	// count and time.
	for _, c := range conns[1:] {
		c.Close()
	}
	want := reactorMetricsText(backend, 1, len(sizes), total)
	var err error
	for i, deadline := 0, time.Now().Add(10*time.Second); i < 500 && time.Now().Before(deadline); i++ {
		if err = testutil.GatherAndCompare(scrape(t, url), strings.NewReader(want), reactorMetricNames...); err == nil {
			break
		}
		<-time.After(20 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("10s after closing all connections but one:\n%v", err)
	}
}

// TestServeMetricsRefuses covers the bad metrics flags: each is refused
// with exit code 2 and one line that names what was wrong.
func TestServeMetricsRefuses(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{name: "all interfaces", args: []string{"--metrics-addr", "0.0.0.0:0"}, want: `--metrics-addr "0.0.0.0:0" is not a loopback address`},
		{name: "a host name", args: []string{"--metrics-addr", "example.com:9464"}, want: `add --metrics-public`},
		{name: "no port", args: []string{"--metrics-addr", "127.0.0.1"}, want: `--metrics-addr "127.0.0.1"`},
		{name: "bad port", args: []string{"--metrics-addr", "127.0.0.1:notaport"}, want: `metrics`},
		{name: "public without address", args: []string{"--metrics-public"}, want: `--metrics-public needs --metrics-addr`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			code, stdout, stderr := harness(t, append([]string{"serve", "echo", "--reactor", "stdnet"}, tc.args...)...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing: a server that did not start announces no address", stdout)
			}
			if !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr %q, want one line containing %q", stderr, tc.want)
			}
		})
	}
}

// TestMetricsFlagsCheck covers the addresses accepted without
// --metrics-public (loopback only) and with it (any).
func TestMetricsFlagsCheck(t *testing.T) {
	cases := []struct {
		addr   string
		public bool
		ok     bool
	}{
		{addr: "", ok: true},
		{addr: ":9464", ok: true}, // metrics.Serve binds loopback
		{addr: "127.0.0.1:9464", ok: true},
		{addr: "127.1.2.3:9464", ok: true},
		{addr: "[::1]:9464", ok: true},
		{addr: "localhost:9464", ok: true},
		{addr: "0.0.0.0:9464"},
		{addr: "[::]:9464"},
		{addr: "192.0.2.1:9464"},
		{addr: "example.com:9464"},
		{addr: "0.0.0.0:9464", public: true, ok: true},
		{addr: "192.0.2.1:9464", public: true, ok: true},
		{addr: "9464", public: true},
		{addr: "", public: true},
	}
	for _, tc := range cases {
		err := metricsFlags{addr: tc.addr, public: tc.public}.check()
		if (err == nil) != tc.ok {
			t.Errorf("--metrics-addr %q --metrics-public=%v: err %v, want ok=%v", tc.addr, tc.public, err, tc.ok)
		}
	}
}

// TestServeHelpNamesMetricsPublic checks that --help says how to expose the
// metrics beyond loopback.
func TestServeHelpNamesMetricsPublic(t *testing.T) {
	for _, proto := range []string{"echo", "poetry"} {
		code, stdout, _ := harness(t, "serve", proto, "--help")
		if code != 0 {
			t.Errorf("serve %s --help: exit %d", proto, code)
		}
		for _, want := range []string{"--metrics-addr", "--metrics-public", "loopback"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("serve %s --help does not mention %q:\n%s", proto, want, stdout)
			}
		}
	}
}
