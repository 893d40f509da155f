package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Engine names an HTTP engine.
type Engine string

// The engines.
const (
	FastHTTP Engine = "fasthttp"
	NetHTTP  Engine = "nethttp"
)

// Engines lists every engine in a stable order.
var Engines = []Engine{FastHTTP, NetHTTP}

// Server is a running front-end.
type Server struct {
	addr     net.Addr
	shutdown func(context.Context) error
	done     chan error
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.addr }

// URL is the base URL ("http://127.0.0.1:PORT").
func (s *Server) URL() string { return "http://" + s.addr.String() }

// Shutdown stops accepting, lets requests in flight finish (until ctx
// ends) and waits for the serving goroutine.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.shutdown(ctx)
	if serr := <-s.done; serr != nil && err == nil {
		err = serr
	}
	return err
}

// Start serves cfg with engine on ln (which the server then owns) in a
// goroutine of its own.
func Start(engine Engine, ln net.Listener, cfg Config) (*Server, error) {
	s := &Server{addr: ln.Addr(), done: make(chan error, 1)}
	switch engine {
	case NetHTTP:
		hs := &http.Server{
			Handler:           NewNetHTTP(cfg),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       60 * time.Second,
		}
		s.shutdown = hs.Shutdown
		go func() {
			err := hs.Serve(ln)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			s.done <- err
		}()
	case FastHTTP:
		fs := NewFastHTTP(cfg)
		fs.ReadTimeout = 10 * time.Second
		fs.IdleTimeout = 60 * time.Second
		// fasthttp closes only the listeners Serve has registered: a
		// Shutdown that wins the race with the serving goroutine's start
		// would leave Serve blocked in Accept for ever. Closing ln
		// ourselves first ends Serve either way.
		s.shutdown = func(ctx context.Context) error {
			ln.Close()
			err := fs.ShutdownWithContext(ctx)
			if errors.Is(err, net.ErrClosed) {
				err = nil // it closed ln again
			}
			return err
		}
		go func() {
			err := fs.Serve(ln)
			if errors.Is(err, net.ErrClosed) {
				err = nil
			}
			s.done <- err
		}()
	default:
		ln.Close()
		return nil, fmt.Errorf("httpapi: unknown engine %q (known: fasthttp, nethttp)", engine)
	}
	return s, nil
}
