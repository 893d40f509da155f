package echo

import (
	"bytes"
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

func TestServerWritesBackEveryChunk(t *testing.T) {
	chunks := [][]byte{[]byte("hello "), {}, []byte("alex"), {0, 1, 2, 255}, []byte("!")}
	var ft fakeTransport
	s := new(Server)
	s.ConnectionMade(&ft)
	var want []byte
	for _, c := range chunks {
		buf := append([]byte(nil), c...)
		s.DataReceived(buf)
		clear(buf) // the contract lets the reactor reuse the slice after the call
		want = append(want, c...)
	}
	s.ConnectionLost(nil)
	got, lost, aborted := ft.snapshot()
	if !bytes.Equal(got, want) {
		t.Errorf("server wrote %q, want %q", got, want)
	}
	if lost != 0 || aborted != 0 {
		t.Errorf("server closed the connection itself (lose %d, abort %d); only the peer should", lost, aborted)
	}
}

// TestClient drives the client protocol through scripted connections and
// checks what it sends, how it closes, and what it reports.
func TestClient(t *testing.T) {
	reset := syscall.ECONNRESET
	cases := []struct {
		name        string
		msg         string
		chunks      []string // what the "server" sends back
		lostErr     error    // what the connection ends with
		wantErr     []error  // each must match with errors.Is; nil for success
		wantEchoed  string
		wantLose    int
		wantAborted int
	}{
		{name: "whole", msg: "hello alex!", chunks: []string{"hello alex!"}, wantEchoed: "hello alex!", wantLose: 1},
		{name: "one byte at a time", msg: "abc", chunks: []string{"a", "b", "c"}, wantEchoed: "abc", wantLose: 1},
		{name: "empty message", msg: "", wantEchoed: "", wantLose: 1},
		{name: "reset after whole echo still succeeds", msg: "ab", chunks: []string{"ab"}, lostErr: reset, wantEchoed: "ab", wantLose: 1},
		{name: "differing byte", msg: "abcd", chunks: []string{"ab", "Xd"}, wantErr: []error{ErrMismatch}, wantEchoed: "abX", wantAborted: 1},
		{name: "too many bytes", msg: "ab", chunks: []string{"abc"}, wantErr: []error{ErrMismatch}, wantEchoed: "", wantAborted: 1},
		{name: "data after a mismatch is ignored", msg: "abcd", chunks: []string{"X", "bcd"}, wantErr: []error{ErrMismatch}, wantEchoed: "X", wantAborted: 1},
		{name: "clean close too early", msg: "abcd", chunks: []string{"ab"}, wantErr: []error{ErrShort}, wantEchoed: "ab"},
		{name: "reset too early", msg: "abcd", chunks: []string{"a"}, lostErr: reset, wantErr: []error{ErrShort, reset}, wantEchoed: "a"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var (
				calls  int
				echoed []byte
				err    error
			)
			c := NewClient([]byte(tc.msg), func(e []byte, er error) { calls++; echoed, err = e, er })
			var ft fakeTransport
			c.ConnectionMade(&ft)
			for _, ch := range tc.chunks {
				c.DataReceived([]byte(ch))
			}
			c.ConnectionLost(tc.lostErr)
			sent, lose, aborted := ft.snapshot()
			if string(sent) != tc.msg {
				t.Errorf("client sent %q, want %q", sent, tc.msg)
			}
			if calls != 1 {
				t.Fatalf("done called %d times, want once", calls)
			}
			if tc.wantErr == nil && err != nil {
				t.Errorf("err = %v, want nil", err)
			}
			for _, w := range tc.wantErr {
				if !errors.Is(err, w) {
					t.Errorf("err = %v, want one matching %v", err, w)
				}
			}
			if string(echoed) != tc.wantEchoed {
				t.Errorf("echoed = %q, want %q", echoed, tc.wantEchoed)
			}
			if lose != tc.wantLose || aborted != tc.wantAborted {
				t.Errorf("LoseConnection x%d, AbortConnection x%d; want x%d, x%d", lose, aborted, tc.wantLose, tc.wantAborted)
			}
		})
	}
}

func TestClientCancel(t *testing.T) {
	cause := errors.New("given up")
	t.Run("before the connection is made", func(t *testing.T) {
		var err error
		c := NewClient([]byte("abc"), func(_ []byte, e error) { err = e })
		c.Cancel(cause)
		var ft fakeTransport
		c.ConnectionMade(&ft)
		c.ConnectionLost(errors.New("aborted"))
		sent, _, aborted := ft.snapshot()
		if len(sent) != 0 || aborted != 1 {
			t.Errorf("after Cancel, ConnectionMade sent %q and aborted x%d; want nothing sent, one abort", sent, aborted)
		}
		if !errors.Is(err, cause) {
			t.Errorf("err = %v, want the cancel cause", err)
		}
	})
	t.Run("while waiting for the echo", func(t *testing.T) {
		var err error
		c := NewClient([]byte("abc"), func(_ []byte, e error) { err = e })
		var ft fakeTransport
		c.ConnectionMade(&ft)
		c.DataReceived([]byte("a"))
		c.Cancel(cause)
		c.ConnectionLost(errors.New("aborted"))
		if _, _, aborted := ft.snapshot(); aborted != 1 {
			t.Errorf("Cancel aborted x%d, want once", aborted)
		}
		if !errors.Is(err, cause) {
			t.Errorf("err = %v, want the cancel cause", err)
		}
	})
	t.Run("after the whole echo it does nothing", func(t *testing.T) {
		var err error
		c := NewClient([]byte("abc"), func(_ []byte, e error) { err = e })
		var ft fakeTransport
		c.ConnectionMade(&ft)
		c.DataReceived([]byte("abc"))
		c.Cancel(cause)
		c.ConnectionLost(nil)
		if _, _, aborted := ft.snapshot(); aborted != 0 {
			t.Errorf("Cancel after success aborted x%d, want no abort", aborted)
		}
		if err != nil {
			t.Errorf("err = %v, want nil", err)
		}
	})
}
