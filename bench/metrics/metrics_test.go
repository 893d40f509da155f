package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/twistbench/twistbench/impls/reactor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const labelsEcho = `backend="epoll",dialect="",run_id="r1",scenario="echo-closed",suite="reactor"`

func TestRecorder(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	rec, err := NewRecorder(reg, "r1")
	if err != nil {
		t.Fatal(err)
	}
	o := rec.Observer("reactor", "echo-closed", "epoll", "")
	o.Op(15*time.Microsecond, 64)  // bucket le=2e-05
	o.Op(3*time.Millisecond, 64)   // bucket le=0.00512
	o.Op(300*time.Millisecond, 64) // bucket le=0.32768
	o.Error()
	rec.Observer("store", "host_by_name", "gorm", "sqlite").Op(time.Millisecond, 0)

	want := `
# HELP twistbench_operations_total Measured operations that succeeded.
# TYPE twistbench_operations_total counter
twistbench_operations_total{` + labelsEcho + `} 3
twistbench_operations_total{backend="gorm",dialect="sqlite",run_id="r1",scenario="host_by_name",suite="store"} 1
# HELP twistbench_bytes_total Payload bytes received and checked by the load generator.
# TYPE twistbench_bytes_total counter
twistbench_bytes_total{` + labelsEcho + `} 192
twistbench_bytes_total{backend="gorm",dialect="sqlite",run_id="r1",scenario="host_by_name",suite="store"} 0
# HELP twistbench_errors_total Measured operations that failed (wrong byte, short poem, I/O or store error).
# TYPE twistbench_errors_total counter
twistbench_errors_total{` + labelsEcho + `} 1
twistbench_errors_total{backend="gorm",dialect="sqlite",run_id="r1",scenario="host_by_name",suite="store"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"twistbench_operations_total", "twistbench_bytes_total", "twistbench_errors_total"); err != nil {
		t.Error(err)
	}

	// The classic buckets, cumulative, for the echo series only.
	var buckets strings.Builder
	counts := map[string]int{"2e-05": 1, "0.00512": 2, "0.32768": 3}
	c := 0
	for _, b := range DurationBuckets {
		s := strconv.FormatFloat(b, 'g', -1, 64) // as expfmt writes bounds
		if n, ok := counts[s]; ok {
			c = n
		}
		buckets.WriteString(`twistbench_request_duration_seconds_bucket{` + labelsEcho + `,le="` + s + `"} ` + strconv.Itoa(c) + "\n")
	}
	wantHist := `
# HELP twistbench_request_duration_seconds Latency of each measured operation (echo round trip, poem download, store call), as the load generator saw it.
# TYPE twistbench_request_duration_seconds histogram
` + buckets.String() + `twistbench_request_duration_seconds_bucket{` + labelsEcho + `,le="+Inf"} 3
twistbench_request_duration_seconds_sum{` + labelsEcho + `} 0.303015
twistbench_request_duration_seconds_count{` + labelsEcho + `} 3
`
	// Compare the echo series alone: drop the store series first.
	h := rec.duration
	h.DeleteLabelValues("store", "host_by_name", "gorm", "sqlite", "r1")
	if err := testutil.CollectAndCompare(h, strings.NewReader(wantHist)); err != nil {
		t.Error(err)
	}

	// Native buckets are there too (they do not show in the text format).
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	native := false
	for _, mf := range mfs {
		if mf.GetName() == "twistbench_request_duration_seconds" {
			hm := mf.GetMetric()[0].GetHistogram()
			native = hm.Schema != nil && len(hm.GetPositiveSpan()) > 0 && len(hm.GetBucket()) == len(DurationBuckets)
		}
	}
	if !native {
		t.Error("the duration histogram lacks native buckets or classic ones")
	}
}

func TestRecorderRefusesDoubleRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewRecorder(reg, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := NewRecorder(reg, "b"); err == nil || !strings.Contains(err.Error(), "registering metrics") {
		t.Errorf("second recorder on one registry: err = %v", err)
	}
}

func TestServe(t *testing.T) {
	reg := prometheus.NewRegistry()
	rec, err := NewRecorder(reg, "r1")
	if err != nil {
		t.Fatal(err)
	}
	rec.Observer("reactor", "echo-closed", "epoll", "").Op(time.Millisecond, 8)
	ctx, cancel := context.WithCancel(t.Context())
	addr, done, err := Serve(ctx, ":0", reg)
	if err != nil {
		t.Fatal(err)
	}
	if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.1" {
		t.Errorf("no host given, bound %s: want loopback only", addr)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `twistbench_operations_total{`+labelsEcho+`} 1`) {
		t.Errorf("/metrics lacks the counter:\n%s", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("server ended with %v", err)
	}
	if _, _, err := Serve(t.Context(), "nonsense", reg); err == nil || !strings.Contains(err.Error(), `"nonsense"`) {
		t.Errorf("bad address: err = %v", err)
	}
}

func TestPush(t *testing.T) {
	var method, path, body string
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		method, path, body = r.Method, r.URL.Path, string(b)
		w.WriteHeader(http.StatusOK)
	}))
	defer gw.Close()
	reg := prometheus.NewRegistry()
	rec, err := NewRecorder(reg, "r1")
	if err != nil {
		t.Fatal(err)
	}
	rec.Observer("reactor", "echo-closed", "epoll", "").Op(time.Millisecond, 8)
	if err := Push(t.Context(), gw.URL, "twistbench", "r1", reg); err != nil {
		t.Fatal(err)
	}
	if method != http.MethodPut || path != "/metrics/job/twistbench/run_id/r1" {
		t.Errorf("pushed %s %s, want PUT /metrics/job/twistbench/run_id/r1", method, path)
	}
	if !strings.Contains(body, "twistbench_operations_total") || strings.Contains(body, "r1") {
		t.Errorf("push body lacks the operations counter or still carries run_id (the grouping key's):\n%q", body)
	}
	gw.Close()
	if err := Push(t.Context(), gw.URL, "twistbench", "r1", reg); err == nil || !strings.Contains(err.Error(), "pushing metrics to") {
		t.Errorf("push to a closed gateway: err = %v", err)
	}
}

// fakeReactor keeps the factory it is given, so the test can drive a
// connection's callbacks by hand.
type fakeReactor struct{ f reactor.Factory }

func (r *fakeReactor) Listen(string, reactor.Factory) (reactor.Listener, error) { return nil, nil }
func (r *fakeReactor) Serve(_ net.Listener, f reactor.Factory) (reactor.Listener, error) {
	r.f = f
	return nil, nil
}
func (r *fakeReactor) Connect(context.Context, string, reactor.ClientFactory) {}
func (r *fakeReactor) Shutdown(context.Context) error                         { return nil }

type fakeTransport struct {
	reactor.Transport
	wrote    int
	halfShut bool
}

func (t *fakeTransport) Write(b []byte) { t.wrote += len(b) }
func (t *fakeTransport) WriteSequence(bs [][]byte) {
	for _, b := range bs {
		t.wrote += len(b)
	}
}
func (t *fakeTransport) LoseWriteConnection() { t.halfShut = true }

type echoProto struct {
	t        reactor.Transport
	halfLost bool
}

func (p *echoProto) ConnectionMade(t reactor.Transport) { p.t = t }
func (p *echoProto) DataReceived(b []byte)              { p.t.WriteSequence([][]byte{b, b}) }
func (p *echoProto) ConnectionLost(error)               {}
func (p *echoProto) ReadConnectionLost()                { p.halfLost = true }

func TestReactorMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := NewReactorMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	fr := &fakeReactor{}
	r := m.Wrap(fr, "epoll")
	var proto *echoProto
	r.Serve(nil, reactor.FactoryFunc(func(net.Addr) reactor.Protocol {
		proto = &echoProto{}
		return proto
	}))
	p1, p2 := fr.f.BuildProtocol(nil), fr.f.BuildProtocol(nil)
	t1 := &fakeTransport{}
	p1.ConnectionMade(t1)
	p2.ConnectionMade(&fakeTransport{})
	p1.DataReceived([]byte("hello"))
	p1.ConnectionLost(nil)
	// The optional upgrades survive the wrapping.
	hp, ok := p2.(reactor.HalfCloseableProtocol)
	if !ok {
		t.Fatal("wrapped protocol lost HalfCloseableProtocol")
	}
	hp.ReadConnectionLost()
	if !proto.halfLost {
		t.Error("ReadConnectionLost not passed through")
	}
	hc, ok := proto.t.(reactor.HalfCloser)
	if !ok {
		t.Fatal("wrapped transport lost HalfCloser")
	}
	hc.LoseWriteConnection()
	if t1.wrote != 10 {
		t.Errorf("transport got %d bytes, want 10", t1.wrote)
	}
	want := `
# HELP twistbench_reactor_connections_total Connections made (accepted or connected).
# TYPE twistbench_reactor_connections_total counter
twistbench_reactor_connections_total{backend="epoll"} 2
# HELP twistbench_reactor_open_connections Connections whose protocol has been made and not yet lost.
# TYPE twistbench_reactor_open_connections gauge
twistbench_reactor_open_connections{backend="epoll"} 1
# HELP twistbench_reactor_received_bytes_total Bytes delivered to protocols by DataReceived.
# TYPE twistbench_reactor_received_bytes_total counter
twistbench_reactor_received_bytes_total{backend="epoll"} 5
# HELP twistbench_reactor_sent_bytes_total Bytes protocols handed to Write and WriteSequence.
# TYPE twistbench_reactor_sent_bytes_total counter
twistbench_reactor_sent_bytes_total{backend="epoll"} 10
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if fr.f.BuildProtocol(nil) == nil {
		t.Error("non-nil protocol became nil")
	}
	refuse := &fakeReactor{}
	m.Wrap(refuse, "epoll").Serve(nil, reactor.FactoryFunc(func(net.Addr) reactor.Protocol { return nil }))
	if refuse.f.BuildProtocol(nil) != nil {
		t.Error("a refused connection (nil protocol) was wrapped into a non-nil one")
	}
}
