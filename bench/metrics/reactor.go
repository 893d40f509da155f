package metrics

import (
	"context"
	"fmt"
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twistbench/twistbench/impls/reactor"
)

// ReactorMetrics are a reactor's own figures, as `harness serve
// --metrics-addr` exports them: connections open and made, and bytes in
// and out, labelled by back-end.
type ReactorMetrics struct {
	open     *prometheus.GaugeVec
	accepted *prometheus.CounterVec
	in, out  *prometheus.CounterVec
}

// NewReactorMetrics registers the reactor metrics on reg.
func NewReactorMetrics(reg prometheus.Registerer) (*ReactorMetrics, error) {
	m := &ReactorMetrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "twistbench_reactor_open_connections",
			Help: "Connections whose protocol has been made and not yet lost.",
		}, []string{"backend"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twistbench_reactor_connections_total",
			Help: "Connections made (accepted or connected).",
		}, []string{"backend"}),
		in: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twistbench_reactor_received_bytes_total",
			Help: "Bytes delivered to protocols by DataReceived.",
		}, []string{"backend"}),
		out: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twistbench_reactor_sent_bytes_total",
			Help: "Bytes protocols handed to Write and WriteSequence.",
		}, []string{"backend"}),
	}
	for _, c := range []prometheus.Collector{m.open, m.accepted, m.in, m.out} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering reactor metrics: %w", err)
		}
	}
	return m, nil
}

// Wrap returns r with every factory it is given wrapped so that its
// connections are counted under backend. The wrapper keeps the optional
// upgrades (HalfCloseableProtocol, HalfCloser) of what it wraps, so a
// wrapped reactor behaves as the bare one does.
func (m *ReactorMetrics) Wrap(r reactor.Reactor, backend string) reactor.Reactor {
	return &wrapped{Reactor: r, c: m.counters(backend)}
}

type counters struct {
	open          prometheus.Gauge
	made, in, out prometheus.Counter
}

func (m *ReactorMetrics) counters(backend string) *counters {
	return &counters{
		open: m.open.WithLabelValues(backend), made: m.accepted.WithLabelValues(backend),
		in: m.in.WithLabelValues(backend), out: m.out.WithLabelValues(backend),
	}
}

type wrapped struct {
	reactor.Reactor
	c *counters
}

func (w *wrapped) Listen(addr string, f reactor.Factory) (reactor.Listener, error) {
	return w.Reactor.Listen(addr, w.factory(f))
}

func (w *wrapped) Serve(ln net.Listener, f reactor.Factory) (reactor.Listener, error) {
	return w.Reactor.Serve(ln, w.factory(f))
}

func (w *wrapped) Connect(ctx context.Context, addr string, f reactor.ClientFactory) {
	w.Reactor.Connect(ctx, addr, clientFactory{ClientFactory: f, c: w.c})
}

func (w *wrapped) factory(f reactor.Factory) reactor.Factory {
	return reactor.FactoryFunc(func(remote net.Addr) reactor.Protocol { return w.c.protocol(f.BuildProtocol(remote)) })
}

type clientFactory struct {
	reactor.ClientFactory
	c *counters
}

func (f clientFactory) BuildProtocol(remote net.Addr) reactor.Protocol {
	return f.c.protocol(f.ClientFactory.BuildProtocol(remote))
}

// protocol wraps p; nil stays nil (a refused connection).
func (c *counters) protocol(p reactor.Protocol) reactor.Protocol {
	if p == nil {
		return nil
	}
	cp := &countingProtocol{p: p, c: c}
	if hp, ok := p.(reactor.HalfCloseableProtocol); ok {
		return &halfCloseableProtocol{countingProtocol: cp, h: hp}
	}
	return cp
}

type countingProtocol struct {
	p reactor.Protocol
	c *counters
}

func (p *countingProtocol) ConnectionMade(t reactor.Transport) {
	p.c.made.Inc()
	p.c.open.Inc()
	var ct reactor.Transport = &countingTransport{Transport: t, c: p.c}
	if hc, ok := t.(reactor.HalfCloser); ok {
		ct = &halfCloserTransport{countingTransport: ct.(*countingTransport), h: hc}
	}
	p.p.ConnectionMade(ct)
}

func (p *countingProtocol) DataReceived(b []byte) {
	p.c.in.Add(float64(len(b)))
	p.p.DataReceived(b)
}

func (p *countingProtocol) ConnectionLost(err error) {
	p.c.open.Dec()
	p.p.ConnectionLost(err)
}

type halfCloseableProtocol struct {
	*countingProtocol
	h reactor.HalfCloseableProtocol
}

func (p *halfCloseableProtocol) ReadConnectionLost() { p.h.ReadConnectionLost() }

type countingTransport struct {
	reactor.Transport
	c *counters
}

func (t *countingTransport) Write(b []byte) {
	t.c.out.Add(float64(len(b)))
	t.Transport.Write(b)
}

func (t *countingTransport) WriteSequence(bs [][]byte) {
	n := 0
	for _, b := range bs {
		n += len(b)
	}
	t.c.out.Add(float64(n))
	t.Transport.WriteSequence(bs)
}

type halfCloserTransport struct {
	*countingTransport
	h reactor.HalfCloser
}

func (t *halfCloserTransport) LoseWriteConnection() { t.h.LoseWriteConnection() }
