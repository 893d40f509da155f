package bench

import (
	"net"
	"sync"
	"testing"
	"time"
)

// poetServer serves poem to every connection and closes; it serves on
// 127.0.0.1:0 until the test ends.
func poetServer(t *testing.T, poem []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.Write(poem)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

func TestPoetryCountsPoemsAndBadOnes(t *testing.T) {
	poem := Poem(10000)
	bad := append([]byte(nil), poem...)
	bad[5000] = '#'
	long := append(append([]byte(nil), poem...), 'x')
	for _, tc := range []struct {
		name     string
		served   [][]byte // one server per poem
		wantOps  bool     // some downloads succeed
		wantErrs bool     // some fail
	}{
		{"good", [][]byte{poem, poem}, true, false},
		{"short", [][]byte{poem[:9000]}, false, true},
		{"long", [][]byte{long}, false, true},
		{"wrong byte", [][]byte{bad}, false, true},
		{"one good one bad", [][]byte{poem, bad}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var addrs []string
			for _, p := range tc.served {
				addrs = append(addrs, poetServer(t, p))
			}
			m, err := Poetry(t.Context(), PoetryConfig{
				Window: Window{Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond},
				Addrs:  addrs, Clients: 2, Poem: poem,
			})
			if err != nil {
				t.Fatal(err)
			}
			if m.Ops+m.Errors < 10 {
				t.Fatalf("only %d downloads", m.Ops+m.Errors)
			}
			if (m.Ops > 0) != tc.wantOps || (m.Errors > 0) != tc.wantErrs {
				t.Errorf("ops %d errors %d; want ops %v, errors %v", m.Ops, m.Errors, tc.wantOps, tc.wantErrs)
			}
			if m.Bytes != m.Ops*int64(len(poem)) {
				t.Errorf("bytes %d, want poems x size = %d", m.Bytes, m.Ops*int64(len(poem)))
			}
			want := float64(m.Ops) / m.Duration.Seconds()
			if got := m.Extra["poems_per_sec"]; got != want {
				t.Errorf("poems/s = %v, want %v", got, want)
			}
			if cps := m.Extra["connections_per_sec"]; cps < float64(m.Ops+m.Errors)/m.Duration.Seconds() {
				t.Errorf("connections/s %v below downloads/s", cps)
			}
		})
	}
}

func TestPoem(t *testing.T) {
	p := Poem(1000)
	if len(p) != 1000 || p[999] != '\n' || string(Poem(1000)) != string(p) {
		t.Error("Poem is not a deterministic newline-terminated text of the size asked")
	}
}
