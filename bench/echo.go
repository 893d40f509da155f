package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// EchoConfig describes an echo load: Conns connections to Addr, each sending
// messages of Size bytes and checking that every byte comes back.
type EchoConfig struct {
	Window
	// Addr is the echo server's TCP address.
	Addr string
	// Conns is the number of connections, each with its own goroutine.
	Conns int
	// Size is the message size in bytes.
	Size int
	// Depth is the closed loop's pipelining depth: each connection
	// writes Depth messages before reading their echoes. 0 means 1.
	Depth int
	// Rate, when positive, makes the load an open loop: Rate messages per
	// second in total, spread evenly over the connections, with latency
	// measured from each message's intended send time, not from when it
	// could be sent (the coordinated-omission correction of wrk2): a
	// server that stalls makes the messages queued behind the stall late,
	// and their lateness shows in the high percentiles. Depth is ignored.
	Rate float64
	// DialTimeout bounds each connection attempt; 0 means 5 s.
	DialTimeout time.Duration
}

// maxBatch bounds the bytes a pipelined connection has in flight, well
// inside the default socket buffers of both ends.
const maxBatch = 256 << 10

// Grace is how long after the window closes a generator waits for
// operations in flight before it abandons them; a server that never
// answers costs the run at most this much.
const Grace = 2 * time.Second

func (c *EchoConfig) check() error {
	switch {
	case c.Addr == "":
		return errors.New("echo: no address")
	case c.Conns < 1:
		return fmt.Errorf("echo: %d connections, need at least 1", c.Conns)
	case c.Size < 1:
		return fmt.Errorf("echo: message size %d, need at least 1", c.Size)
	case c.Depth < 0:
		return fmt.Errorf("echo: pipelining depth %d is negative", c.Depth)
	case c.Rate < 0:
		return fmt.Errorf("echo: rate %v is negative", c.Rate)
	case c.Duration <= 0:
		return fmt.Errorf("echo: duration %v, need a positive window", c.Duration)
	case c.Warmup < 0:
		return fmt.Errorf("echo: warm-up %v is negative", c.Warmup)
	case c.Depth*c.Size > maxBatch:
		// The client writes the whole batch before it reads: past the
		// socket buffers, both sides would block on writes for ever.
		return fmt.Errorf("echo: depth %d x size %d is more than %d bytes in flight per connection", c.Depth, c.Size, maxBatch)
	case c.Rate > 0 && float64(c.Conns)/c.Rate < 1e-6:
		return fmt.Errorf("echo: rate %v is above 1 message per microsecond per connection; add connections", c.Rate)
	}
	return nil
}

// Echo runs the echo load and returns what it measured. Connection
// failures, short reads and wrong bytes are counted as errors in the
// measurement, never returned: the error result is for a configuration
// that cannot run at all, or a cancelled ctx.
func Echo(ctx context.Context, cfg EchoConfig) (Measurement, error) {
	if err := cfg.check(); err != nil {
		return Measurement{}, err
	}
	if cfg.Depth == 0 {
		cfg.Depth = 1
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	conns := dialAll(ctx, cfg.Addr, cfg.Conns, cfg.DialTimeout)
	t := newTally(cfg.Conns, cfg.Observer)
	sched := newSchedule(cfg.Window)
	cpu := sampleCPU(ctx, cfg.CPU, sched)
	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(cfg.Conns) / cfg.Rate)
	}

	var wg sync.WaitGroup
	for i, c := range conns {
		w := &echoWorker{cfg: &cfg, id: i, conn: c, t: t, sched: sched}
		if c == nil {
			t.fail(i) // could not connect: one error per connection
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if interval > 0 {
				// Stagger the connections across one interval, so the
				// rate is even rather than in bursts of Conns.
				w.open(ctx, interval, sched.start.Add(interval*time.Duration(i)/time.Duration(cfg.Conns)))
			} else {
				w.closed(ctx)
			}
		}()
	}
	stop := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	wg.Wait()
	stop()
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	if err := ctx.Err(); err != nil {
		return Measurement{}, err
	}
	m := t.measurement(cfg.Duration)
	cpu(&m)
	return m, nil
}

// dialAll opens n connections, at most 128 dials at a time (a burst of
// thousands overflows the listen backlog and turns into retransmits that
// measure the kernel, not the server). A failed dial leaves a nil slot.
func dialAll(ctx context.Context, addr string, n int, timeout time.Duration) []net.Conn {
	conns := make([]net.Conn, n)
	sem := make(chan struct{}, 128)
	var wg sync.WaitGroup
	d := net.Dialer{Timeout: timeout}
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := d.DialContext(ctx, "tcp", addr)
			if err == nil {
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	return conns
}

type echoWorker struct {
	cfg   *EchoConfig
	id    int
	conn  net.Conn
	t     *tally
	sched schedule
	seq   uint64
}

// fill writes message seq of connection id into p. Every message differs
// from its neighbours, so a byte dropped, repeated or reordered by the
// server shows up as a mismatch rather than as a coincidental match.
func fill(p []byte, id int, seq uint64) {
	x := uint32(id)*2654435761 + uint32(seq)*40503
	for i := range p {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		p[i] = byte(x)
	}
}

// closed runs the closed loop: write Depth messages, read their echoes,
// check them, repeat until the window closes.
func (w *echoWorker) closed(ctx context.Context) {
	size, depth := w.cfg.Size, w.cfg.Depth
	out := make([]byte, size*depth)
	want := make([]byte, size)
	in := make([]byte, size)
	w.conn.SetDeadline(w.sched.close.Add(Grace))
	for ctx.Err() == nil && time.Now().Before(w.sched.close) {
		first := w.seq
		for k := 0; k < depth; k++ {
			fill(out[k*size:(k+1)*size], w.id, w.seq)
			w.seq++
		}
		sent := time.Now()
		if _, err := w.conn.Write(out); err != nil {
			w.ioError(ctx, sent, depth)
			return
		}
		for k := 0; k < depth; k++ {
			if _, err := io.ReadFull(w.conn, in); err != nil {
				w.ioError(ctx, sent, depth-k)
				return
			}
			done := time.Now()
			fill(want, w.id, first+uint64(k))
			w.record(sent, done, bytes.Equal(in, want))
		}
	}
}

// open runs the open loop: message k is due at first+k*interval; it is sent
// then or, if the previous echo came late, as soon as that echo is in, and
// its latency counts from when it was due.
func (w *echoWorker) open(ctx context.Context, interval time.Duration, first time.Time) {
	size := w.cfg.Size
	out, in := make([]byte, size), make([]byte, size)
	w.conn.SetDeadline(w.sched.close.Add(Grace))
	due := first
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for ctx.Err() == nil && due.Before(w.sched.close) {
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		fill(out, w.id, w.seq)
		w.seq++
		if _, err := w.conn.Write(out); err != nil {
			w.ioError(ctx, due, 1)
			return
		}
		if _, err := io.ReadFull(w.conn, in); err != nil {
			w.ioError(ctx, due, 1)
			return
		}
		done := time.Now()
		w.record(due, done, bytes.Equal(in, out))
		due = due.Add(interval)
	}
}

// record counts one message that went out at begin and whose echo was
// complete at end; ok is false when a byte was wrong.
func (w *echoWorker) record(begin, end time.Time, ok bool) {
	if !w.sched.counts(begin, end) {
		return
	}
	if ok {
		w.t.op(w.id, end.Sub(begin), w.cfg.Size)
	} else {
		w.t.fail(w.id)
	}
}

// ioError counts n messages in flight as failed when the connection broke
// inside the window. The stream is then out of step, so the worker stops:
// its connection's remaining time is lost, which the throughput shows.
func (w *echoWorker) ioError(ctx context.Context, begin time.Time, n int) {
	if ctx.Err() != nil || begin.Before(w.sched.open) || begin.After(w.sched.close) {
		return
	}
	for range n {
		w.t.fail(w.id)
	}
}
