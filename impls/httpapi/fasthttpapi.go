package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// NewFastHTTP returns the fasthttp handler set for cfg, and the server
// settings it needs (the body limit and JSON errors for requests fasthttp
// rejects before the handler runs).
func NewFastHTTP(cfg Config) *fasthttp.Server {
	a := newAPI(cfg)
	var metrics fasthttp.RequestHandler
	if a.cfg.Metrics != nil {
		metrics = fasthttpadaptor.NewFastHTTPHandler(a.cfg.Metrics)
	}
	handler := func(ctx *fasthttp.RequestCtx) {
		path := string(ctx.Path())
		if path == "/metrics" && metrics != nil {
			metrics(ctx)
			return
		}
		args := ctx.QueryArgs()
		req := request{
			method: string(ctx.Method()),
			path:   path,
			query: func(name string) (string, bool) {
				v := args.Peek(name)
				if v == nil {
					return "", false
				}
				return string(v), true
			},
			body: ctx.PostBody(),
		}
		if len(req.body) > a.cfg.MaxBody {
			writeFast(ctx, tooLarge(a.cfg.MaxBody))
			return
		}
		// Not ctx: a *RequestCtx is recycled once the handler returns, and
		// a context derived from it would keep reading it from the
		// context package's goroutine (the race detector caught that).
		// fasthttp cancels nothing per request; the store call is bounded
		// by Config.Timeout instead.
		writeFast(ctx, a.dispatch(context.Background(), req))
	}
	return &fasthttp.Server{
		Handler: handler,
		Name:    "twistbench",
		// fasthttp logs every refused request (an oversized body, a
		// malformed line) itself; the client already got a JSON error.
		Logger: fastLogger{a.cfg.Log},
		// fasthttp refuses a body over MaxRequestBodySize as soon as it
		// reads the headers and closes the connection with the body
		// unread: the kernel then resets it, and a client still sending
		// often never sees the 413 (the HTTP-BODY-001 case caught this).
		// So fasthttp's own limit is set above ours by the allowance
		// net/http drains before closing (256 KiB), and the handler
		// enforces MaxBody on a body read whole; only a body beyond the
		// allowance meets fasthttp's early close, as it would net/http's.
		MaxRequestBodySize: a.cfg.MaxBody + lingerAllowance,
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) {
			if errors.Is(err, fasthttp.ErrBodyTooLarge) {
				writeFast(ctx, tooLarge(a.cfg.MaxBody))
				return
			}
			writeFast(ctx, errResponse(http.StatusBadRequest, CodeBadRequest, "request: "+err.Error()))
		},
	}
}

// lingerAllowance is how far past MaxBody a body is still read whole, so
// that its 413 reaches the client (net/http's maxPostHandlerReadBytes).
const lingerAllowance = 256 << 10

func writeFast(ctx *fasthttp.RequestCtx, resp response) {
	ctx.SetStatusCode(resp.status)
	if resp.contentType != "" {
		ctx.SetContentType(resp.contentType)
	}
	if resp.location != "" {
		ctx.Response.Header.Set("Location", resp.location)
	}
	if resp.allow != "" {
		ctx.Response.Header.Set("Allow", resp.allow)
	}
	if resp.status == http.StatusNoContent {
		return
	}
	ctx.SetBody(resp.body)
}

// fastLogger sends fasthttp's own messages to the configured slog logger
// at debug level.
type fastLogger struct {
	l interface{ Debug(string, ...any) }
}

func (f fastLogger) Printf(format string, args ...any) { f.l.Debug(fmt.Sprintf(format, args...)) }
