package epoll_test

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/twistbench/twistbench/impls/reactor"
	"github.com/twistbench/twistbench/impls/reactor/epoll"
)

// upper answers every chunk it receives in upper case.
type upper struct{ t reactor.Transport }

func (u *upper) ConnectionMade(t reactor.Transport) { u.t = t }
func (u *upper) DataReceived(b []byte) {
	// b is the loop's read buffer: Write copies what it cannot send at
	// once, so handing b on is safe, but keeping b is not.
	u.t.Write(bytes2upper(b))
}
func (u *upper) ConnectionLost(error) {}

func bytes2upper(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

// A server on the epoll reactor, talked to with package net. Shutdown
// must be called to release the loops and their descriptors.
func Example() {
	r, err := epoll.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Shutdown(context.Background())

	ln, err := r.Listen("127.0.0.1:0", reactor.FactoryFunc(func(net.Addr) reactor.Protocol { return &upper{} }))
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	c.Write([]byte("hello, epoll"))
	got := make([]byte, 12)
	if _, err := io.ReadFull(c, got); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(got))
	// Output: HELLO, EPOLL
}
