package poetry

import (
	"errors"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/twistbench/twistbench/impls/reactor/gnet"
	"github.com/twistbench/twistbench/impls/reactor/netpoll"
)

// TestMain checks that no test leaves a goroutine behind. The interop
// tests link every back-end, and netpoll and gnet run goroutines of their
// own for the whole process, which no Shutdown can end: their back-ends
// name them.
func TestMain(m *testing.M) {
	var opts []goleak.Option
	for _, f := range append(netpoll.EngineGoroutines(), gnet.EngineGoroutines()...) {
		opts = append(opts, goleak.IgnoreAnyFunction(f))
	}
	goleak.VerifyTestMain(m, opts...)
}

func TestServerWritesPoemThenLoses(t *testing.T) {
	poem := []byte("This is the poem.\nIt has two lines.\n")
	p := NewServerFactory(poem).BuildProtocol(nil)
	var ft fakeTransport
	p.ConnectionMade(&ft)
	p.DataReceived([]byte("ignored"))
	p.ConnectionLost(nil)
	got, lost, aborted := ft.snapshot()
	if string(got) != string(poem) {
		t.Errorf("server wrote %q, want the poem %q", got, poem)
	}
	if lost != 1 || aborted != 0 {
		t.Errorf("LoseConnection x%d, AbortConnection x%d; want one LoseConnection (flush, then close)", lost, aborted)
	}
}

// TestClient drives the client protocol through scripted connections: the
// end of the connection is the end of the poem, and only a clean end makes
// it whole.
func TestClient(t *testing.T) {
	reset := syscall.ECONNRESET
	cases := []struct {
		name     string
		chunks   []string
		lostErr  error
		wantErr  error
		wantPoem string
	}{
		{name: "one chunk", chunks: []string{"roses are red"}, wantPoem: "roses are red"},
		{name: "many chunks", chunks: []string{"ro", "ses ", "", "are red"}, wantPoem: "roses are red"},
		{name: "empty poem", wantPoem: ""},
		{name: "reset keeps the partial poem and reports the error", chunks: []string{"roses"}, lostErr: reset, wantErr: reset, wantPoem: "roses"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var (
				calls int
				poem  []byte
				err   error
			)
			c := NewClient(func(p []byte, e error) { calls++; poem, err = p, e })
			var ft fakeTransport
			c.ConnectionMade(&ft)
			for _, ch := range tc.chunks {
				buf := []byte(ch)
				c.DataReceived(buf)
				clear(buf) // the reactor may reuse the slice after the call
			}
			c.ConnectionLost(tc.lostErr)
			if calls != 1 {
				t.Fatalf("done called %d times, want once", calls)
			}
			if string(poem) != tc.wantPoem {
				t.Errorf("poem = %q, want %q", poem, tc.wantPoem)
			}
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if _, lost, aborted := ft.snapshot(); lost != 0 || aborted != 0 {
				t.Errorf("client closed the connection itself (lose %d, abort %d); the server ends the poem", lost, aborted)
			}
		})
	}
}

func TestClientCancel(t *testing.T) {
	cause := errors.New("given up")
	for _, early := range []bool{true, false} {
		name := map[bool]string{true: "before the connection is made", false: "during the download"}[early]
		t.Run(name, func(t *testing.T) {
			var err error
			c := NewClient(func(_ []byte, e error) { err = e })
			var ft fakeTransport
			if early {
				c.Cancel(cause)
				c.ConnectionMade(&ft)
			} else {
				c.ConnectionMade(&ft)
				c.DataReceived([]byte("ro"))
				c.Cancel(cause)
			}
			c.ConnectionLost(errors.New("aborted"))
			if _, _, aborted := ft.snapshot(); aborted != 1 {
				t.Errorf("AbortConnection x%d, want once", aborted)
			}
			if !errors.Is(err, cause) {
				t.Errorf("err = %v, want the cancel cause", err)
			}
		})
	}
	t.Run("after the end it does nothing", func(t *testing.T) {
		var err error
		c := NewClient(func(_ []byte, e error) { err = e })
		var ft fakeTransport
		c.ConnectionMade(&ft)
		c.ConnectionLost(nil)
		c.Cancel(cause)
		if _, _, aborted := ft.snapshot(); aborted != 0 || err != nil {
			t.Errorf("Cancel after a clean end: abort x%d, err %v; want nothing", aborted, err)
		}
	})
}
