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

// PoetryConfig describes a poetry load: Clients clients, each downloading
// from every server in Addrs at once, again and again, on a new connection
// per poem (the poetry protocol writes the poem and closes).
type PoetryConfig struct {
	Window
	// Addrs are the K poetry servers.
	Addrs []string
	// Clients is N, the number of clients.
	Clients int
	// Poem is what every server sends; each download is compared to it
	// byte for byte. A download that differs, is short or is long is an
	// error.
	Poem []byte
	// DialTimeout bounds each connection attempt; 0 means 5 s.
	DialTimeout time.Duration
}

// Poetry runs the poetry load. An operation is one poem: connect, read to
// EOF, compare. The measurement's Extra holds poems_per_sec and
// connections_per_sec (attempts, failed or not, that started in the window:
// the connection churn the server sustained).
func Poetry(ctx context.Context, cfg PoetryConfig) (Measurement, error) {
	switch {
	case len(cfg.Addrs) == 0:
		return Measurement{}, errors.New("poetry: no server addresses")
	case cfg.Clients < 1:
		return Measurement{}, fmt.Errorf("poetry: %d clients, need at least 1", cfg.Clients)
	case len(cfg.Poem) == 0:
		return Measurement{}, errors.New("poetry: empty poem")
	case cfg.Duration <= 0:
		return Measurement{}, fmt.Errorf("poetry: duration %v, need a positive window", cfg.Duration)
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := cfg.Clients * len(cfg.Addrs)
	t := newTally(workers, cfg.Observer)
	sched := newSchedule(cfg.Window)
	cpu := sampleCPU(ctx, cfg.CPU, sched)
	counts := make([]int64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		addr := cfg.Addrs[w%len(cfg.Addrs)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[w] = fetchLoop(ctx, &cfg, addr, w, t, sched)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Measurement{}, err
	}
	m := t.measurement(cfg.Duration)
	cpu(&m)
	var conns int64
	for _, c := range counts {
		conns += c
	}
	m.Extra = map[string]float64{
		"poems_per_sec":       float64(m.Ops) / cfg.Duration.Seconds(),
		"connections_per_sec": float64(conns) / cfg.Duration.Seconds(),
	}
	return m, nil
}

// fetchLoop downloads poems from addr until the window closes and returns
// how many connections it attempted inside the window.
func fetchLoop(ctx context.Context, cfg *PoetryConfig, addr string, w int, t *tally, sched schedule) int64 {
	var attempts int64
	buf := make([]byte, 64<<10)
	d := net.Dialer{Timeout: cfg.DialTimeout}
	for ctx.Err() == nil && time.Now().Before(sched.close) {
		begin := time.Now()
		inWindow := !begin.Before(sched.open)
		if inWindow {
			attempts++
		}
		n, ok := fetch(ctx, &d, addr, cfg.Poem, buf, sched.close.Add(Grace))
		end := time.Now()
		if ctx.Err() != nil {
			return attempts
		}
		switch {
		case ok && sched.counts(begin, end):
			t.op(w, end.Sub(begin), n)
		case !ok && inWindow:
			// A fetch that began in the window and failed counts even
			// if it ended after the window: a connect stalled past the
			// close (a dropped SYN waits a second or more for its
			// retransmit) must show as an error, not vanish and leave
			// an empty window that looks like a quiet one.
			t.fail(w)
		}
	}
	return attempts
}

// fetch downloads one poem and reports its size and whether it matched.
func fetch(ctx context.Context, d *net.Dialer, addr string, poem, buf []byte, deadline time.Time) (int, bool) {
	dctx, cancel := context.WithDeadline(ctx, deadline)
	c, err := d.DialContext(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return 0, false
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	c.SetDeadline(deadline)
	got, match := 0, true
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if got+n > len(poem) || !bytes.Equal(buf[:n], poem[got:got+n]) {
				match = false
			}
			got += n
		}
		if err == io.EOF {
			return got, match && got == len(poem)
		}
		if err != nil {
			return got, false
		}
	}
}

// Poem returns a poem of size bytes: lines of verse, repeated and cut to
// size, the same for a given size in every process (so a client can check
// what a server in another process sent).
func Poem(size int) []byte {
	const verse = "Once upon a midnight dreary, while I pondered, weak and weary,\n" +
		"Over many a quaint and curious volume of forgotten lore-\n"
	p := make([]byte, size)
	for i := range p {
		p[i] = verse[i%len(verse)]
	}
	if size > 0 {
		p[size-1] = '\n'
	}
	return p
}
