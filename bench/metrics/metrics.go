// Package metrics exports twistbench's live figures to Prometheus: the load
// generator's latency, operations, bytes and errors while `harness bench`
// runs, and a reactor's own connections and bytes while `harness serve`
// runs. Every constructor takes the prometheus.Registerer to register on;
// nothing here touches the global registry (prometheus/doc.go's advice for
// library code), so tests and several runs in one process do not collide.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/push"
	dto "github.com/prometheus/client_model/go"

	"github.com/twistbench/twistbench/bench"
)

// Labels of the generator's metrics, in order.
var labels = []string{"suite", "scenario", "backend", "dialect", "run_id"}

// DurationBuckets are the classic buckets of
// twistbench_request_duration_seconds: 10 µs to ~10 s, doubling, which
// covers a loopback echo and a slow SQL query alike. Servers that scrape
// native histograms get the finer native buckets instead.
var DurationBuckets = prometheus.ExponentialBuckets(10e-6, 2, 21)

// Recorder holds the load generator's metrics.
type Recorder struct {
	runID    string
	duration *prometheus.HistogramVec
	ops      *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	errors   *prometheus.CounterVec
}

// NewRecorder registers the generator's metrics on reg, labelled with
// runID (the results file's run_id).
func NewRecorder(reg prometheus.Registerer, runID string) (*Recorder, error) {
	r := &Recorder{
		runID: runID,
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "twistbench_request_duration_seconds",
			Help:    "Latency of each measured operation (echo round trip, poem download, store call), as the load generator saw it.",
			Buckets: DurationBuckets,
			// Native buckets at most 10% wide, bounded in number so a
			// long run cannot grow them without limit.
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  160,
			NativeHistogramMinResetDuration: time.Hour,
		}, labels),
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twistbench_operations_total",
			Help: "Measured operations that succeeded.",
		}, labels),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twistbench_bytes_total",
			Help: "Payload bytes received and checked by the load generator.",
		}, labels),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twistbench_errors_total",
			Help: "Measured operations that failed (wrong byte, short poem, I/O or store error).",
		}, labels),
	}
	for _, c := range []prometheus.Collector{r.duration, r.ops, r.bytes, r.errors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
	}
	return r, nil
}

// Observer returns the bench.Observer of one benchmark point.
func (r *Recorder) Observer(suite, scenario, backend, dialect string) bench.Observer {
	l := prometheus.Labels{"suite": suite, "scenario": scenario, "backend": backend, "dialect": dialect, "run_id": r.runID}
	return &observer{
		duration: r.duration.With(l),
		ops:      r.ops.With(l),
		bytes:    r.bytes.With(l),
		errors:   r.errors.With(l),
	}
}

type observer struct {
	duration           prometheus.Observer
	ops, bytes, errors prometheus.Counter
}

func (o *observer) Op(lat time.Duration, bytes int) {
	o.duration.Observe(lat.Seconds())
	o.ops.Inc()
	if bytes > 0 {
		o.bytes.Add(float64(bytes))
	}
}

func (o *observer) Error() { o.errors.Inc() }

// Serve serves g's metrics on /metrics at addr until ctx ends. An address
// without a host ("":9464") binds the loopback interface only: exposing
// the figures beyond this machine must be asked for by naming the host
// ("0.0.0.0:9464"). It returns the bound address and a channel that yields
// the server's end.
func Serve(ctx context.Context, addr string, g prometheus.Gatherer) (string, <-chan error, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", nil, fmt.Errorf("metrics address %q: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return "", nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	return ln.Addr().String(), done, nil
}

// Push pushes g's metrics to the Pushgateway at url under the grouping key
// {job, run_id}, replacing what that group held (a PUT), so that a run's
// final figures outlive the process.
//
// The Pushgateway refuses metrics that carry a grouping label themselves
// (it adds the group's labels on the way out), so run_id is taken off each
// metric before the push; scraped from the gateway they have it again.
func Push(ctx context.Context, url, job, runID string, g prometheus.Gatherer) error {
	strip := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := g.Gather()
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				m.Label = slices.DeleteFunc(m.Label, func(l *dto.LabelPair) bool { return l.GetName() == "run_id" })
			}
		}
		return mfs, err
	})
	err := push.New(url, job).Grouping("run_id", runID).Gatherer(strip).PushContext(ctx)
	if err != nil {
		return fmt.Errorf("pushing metrics to %s: %w", url, err)
	}
	return nil
}
