// Package httpapi serves the echo, poem and host-inventory endpoints over any
// store.Store, on two engines: net/http and github.com/valyala/fasthttp. It
// is the full stack that TechEmpower-style benchmarks measure: HTTP to ORM to
// database.
//
// What a request means (decode, validate, call the store, encode) is written
// once in this file; each engine has its own handler set that only does its
// engine's routing, reading and writing, which is what differs between them
// and what the benchmarks compare.
//
// # Endpoints
//
//	POST   /echo               the body as sent
//	GET    /poem               the configured poem
//	GET    /hosts?group=NAME   hosts of a group (404 if the group does not exist)
//	GET    /hosts              hosts by id, ?offset=&limit= (default 0, 100; limit at most 1000)
//	GET    /hosts/{hostname}   one host
//	POST   /hosts              create from JSON {"hostname","ip_addr","port"}: 201
//	PATCH  /hosts/{hostname}   JSON {"port"}: the updated host
//	DELETE /hosts/{hostname}   204
//	GET    /groups?count=1     host count per group, empty groups included
//	GET    /healthz            {"status":"ok"}
//	GET    /metrics            when Config.Metrics is set
//
// Errors are JSON, {"error":{"code":"...","message":"..."}}, with a stable
// code: bad_request (400, naming the field), not_found (404), duplicate
// (409), too_large (413), unavailable (503, the database did not answer),
// internal (500, message withheld). A failed write leaves nothing behind:
// every write is one store call, atomic on its own.
package httpapi

import (
	"bytes"
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/twistbench/twistbench/impls/store"
)

// Config is what both engines serve.
type Config struct {
	Store store.Store
	// Poem is served by GET /poem.
	Poem []byte
	// MaxBody limits request bodies; larger ones get 413. Default 1 MiB.
	MaxBody int
	// Timeout bounds each store call; a database that does not answer in
	// time gives 503. Default 5 s.
	Timeout time.Duration
	// Metrics, if set, is served at GET /metrics (a promhttp handler).
	Metrics http.Handler
	// Log receives internal errors (the client sees only "internal").
	// Default: discard.
	Log *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxBody <= 0 {
		c.MaxBody = 1 << 20
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// response is what an endpoint answers, before an engine writes it.
type response struct {
	status      int
	contentType string
	body        []byte
	location    string
	allow       string // the Allow header of a 405
}

const (
	jsonType = "application/json"
	textType = "text/plain; charset=utf-8"
	binType  = "application/octet-stream"
)

// Error codes, stable across versions: clients match on them.
const (
	CodeBadRequest  = "bad_request"
	CodeNotFound    = "not_found"
	CodeDuplicate   = "duplicate"
	CodeTooLarge    = "too_large"
	CodeUnavailable = "unavailable"
	CodeInternal    = "internal"
	CodeMethod      = "method_not_allowed"
)

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func errResponse(status int, code, msg string) response {
	var e errorBody
	e.Error.Code, e.Error.Message = code, msg
	b, _ := json.Marshal(e)
	return response{status: status, contentType: jsonType, body: append(b, '\n')}
}

func jsonResponse(status int, v any) response {
	b, err := json.Marshal(v)
	if err != nil {
		return errResponse(http.StatusInternalServerError, CodeInternal, "internal error")
	}
	return response{status: status, contentType: jsonType, body: append(b, '\n')}
}

// api holds the engine-independent meaning of each endpoint.
type api struct{ cfg Config }

func newAPI(cfg Config) *api { return &api{cfg: cfg.withDefaults()} }

// storeError maps a store error to a response: the sentinels to their codes,
// a database that does not answer to 503, anything else to 500 with the
// detail logged, not shown.
func (a *api) storeError(op string, err error) response {
	switch {
	case errors.Is(err, store.ErrInvalid):
		return errResponse(http.StatusBadRequest, CodeBadRequest, trimPrefix(err.Error(), "store: invalid input: "))
	case errors.Is(err, store.ErrNotFound):
		return errResponse(http.StatusNotFound, CodeNotFound, "not found")
	case errors.Is(err, store.ErrDuplicate):
		return errResponse(http.StatusConflict, CodeDuplicate, "already exists")
	case unavailable(err):
		a.cfg.Log.Warn("database unavailable", "op", op, "err", err)
		return errResponse(http.StatusServiceUnavailable, CodeUnavailable, "database unavailable")
	}
	a.cfg.Log.Error("store call failed", "op", op, "err", err)
	return errResponse(http.StatusInternalServerError, CodeInternal, "internal error")
}

func trimPrefix(s, p string) string {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// unavailable reports whether err means the database could not be reached
// (as opposed to a bug): network errors, a refused or reset connection, a
// dead pooled connection, a timeout.
func unavailable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) ||
		errors.Is(err, driver.ErrBadConn) ||
		// go-sql-driver/mysql reports a connection reset under a query
		// as this sentinel, keeping the cause only in its log (found by
		// HTTP-DB-001 on MariaDB).
		errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}

func (a *api) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, a.cfg.Timeout)
}

func (a *api) echo(body []byte) response {
	return response{status: http.StatusOK, contentType: binType, body: body}
}

func (a *api) poem() response {
	return response{status: http.StatusOK, contentType: textType, body: a.cfg.Poem}
}

func (a *api) healthz() response {
	return response{status: http.StatusOK, contentType: jsonType, body: []byte(`{"status":"ok"}` + "\n")}
}

// listHosts serves GET /hosts with its query already split out.
func (a *api) listHosts(parent context.Context, group string, hasGroup bool, offsetS, limitS string) response {
	ctx, cancel := a.ctx(parent)
	defer cancel()
	if hasGroup {
		if group == "" {
			return errResponse(http.StatusBadRequest, CodeBadRequest, "group: empty")
		}
		hosts, err := a.cfg.Store.HostsInGroup(ctx, group)
		if err != nil {
			return a.storeError("HostsInGroup", err)
		}
		return jsonResponse(http.StatusOK, nonNil(hosts))
	}
	offset, err := queryInt("offset", offsetS, 0, 0, 1<<31-1)
	if err != nil {
		return errResponse(http.StatusBadRequest, CodeBadRequest, err.Error())
	}
	limit, err := queryInt("limit", limitS, 100, 0, 1000)
	if err != nil {
		return errResponse(http.StatusBadRequest, CodeBadRequest, err.Error())
	}
	hosts, err := a.cfg.Store.HostsPage(ctx, offset, limit)
	if err != nil {
		return a.storeError("HostsPage", err)
	}
	return jsonResponse(http.StatusOK, nonNil(hosts))
}

func queryInt(name, s string, def, lo, hi int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s: want an integer from %d to %d, got %q", name, lo, hi, s)
	}
	return n, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (a *api) getHost(parent context.Context, hostname string) response {
	ctx, cancel := a.ctx(parent)
	defer cancel()
	h, err := a.cfg.Store.HostByName(ctx, hostname)
	if err != nil {
		return a.storeError("HostByName", err)
	}
	return jsonResponse(http.StatusOK, h)
}

// createHostRequest is the body of POST /hosts. Port is a pointer so that an
// absent port (default 22) differs from an explicit 0.
type createHostRequest struct {
	Hostname *string `json:"hostname"`
	IPAddr   *string `json:"ip_addr"`
	Port     *int    `json:"port"`
}

func (a *api) createHost(parent context.Context, body []byte) response {
	var req createHostRequest
	if r, ok := decode(body, &req); !ok {
		return r
	}
	switch {
	case req.Hostname == nil:
		return errResponse(http.StatusBadRequest, CodeBadRequest, "hostname: required")
	case req.IPAddr == nil:
		return errResponse(http.StatusBadRequest, CodeBadRequest, "ip_addr: required")
	}
	h := store.Host{Hostname: *req.Hostname, IPAddr: *req.IPAddr, Port: store.DefaultPort}
	if req.Port != nil {
		h.Port = *req.Port
	}
	ctx, cancel := a.ctx(parent)
	defer cancel()
	if err := a.cfg.Store.CreateHost(ctx, &h); err != nil {
		return a.storeError("CreateHost", err)
	}
	r := jsonResponse(http.StatusCreated, h)
	r.location = "/hosts/" + h.Hostname
	return r
}

type patchHostRequest struct {
	Port *int `json:"port"`
}

func (a *api) patchHost(parent context.Context, hostname string, body []byte) response {
	var req patchHostRequest
	if r, ok := decode(body, &req); !ok {
		return r
	}
	if req.Port == nil {
		return errResponse(http.StatusBadRequest, CodeBadRequest, "port: required")
	}
	ctx, cancel := a.ctx(parent)
	defer cancel()
	n, err := a.cfg.Store.UpdateHostPort(ctx, store.HostFilter{Hostnames: []string{hostname}}, *req.Port)
	if err != nil {
		return a.storeError("UpdateHostPort", err)
	}
	if n == 0 {
		return errResponse(http.StatusNotFound, CodeNotFound, "not found")
	}
	h, err := a.cfg.Store.HostByName(ctx, hostname)
	if err != nil {
		return a.storeError("HostByName", err)
	}
	return jsonResponse(http.StatusOK, h)
}

func (a *api) deleteHost(parent context.Context, hostname string) response {
	ctx, cancel := a.ctx(parent)
	defer cancel()
	n, err := a.cfg.Store.DeleteHosts(ctx, store.HostFilter{Hostnames: []string{hostname}})
	if err != nil {
		return a.storeError("DeleteHosts", err)
	}
	if n == 0 {
		return errResponse(http.StatusNotFound, CodeNotFound, "not found")
	}
	return response{status: http.StatusNoContent}
}

func (a *api) groups(parent context.Context, count string) response {
	if count != "1" && count != "true" {
		return errResponse(http.StatusBadRequest, CodeBadRequest, "count: only count=1 is served")
	}
	ctx, cancel := a.ctx(parent)
	defer cancel()
	gc, err := a.cfg.Store.GroupHostCounts(ctx)
	if err != nil {
		return a.storeError("GroupHostCounts", err)
	}
	return jsonResponse(http.StatusOK, nonNil(gc))
}

// decode parses one JSON object strictly: unknown fields, trailing data and
// wrong types are 400s that name the field.
func decode(body []byte, v any) (response, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errResponse(http.StatusBadRequest, CodeBadRequest, describeJSONError(err)), false
	}
	if dec.More() {
		return errResponse(http.StatusBadRequest, CodeBadRequest, "body: more than one JSON value"), false
	}
	return response{}, true
}

func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("%s: want %s, got JSON %s", te.Field, te.Type, te.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("body: malformed JSON at byte %d", se.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "body: empty or truncated JSON"
	}
	msg := err.Error()
	const unknown = "json: unknown field "
	if len(msg) > len(unknown) && msg[:len(unknown)] == unknown {
		return msg[len(unknown):] + ": unknown field"
	}
	return "body: " + msg
}

// request is what dispatch needs from an engine's request.
type request struct {
	method string
	path   string
	// query returns a query parameter and whether it was present.
	query func(name string) (string, bool)
	// body returns the request body, already limited to MaxBody by the
	// engine (a larger body never reaches dispatch).
	body []byte
}

// dispatch routes one request. Routing is shared so that both engines answer
// exactly alike; what they differ in is how they read and write.
func (a *api) dispatch(ctx context.Context, r request) response {
	p := r.path
	switch {
	case p == "/echo":
		if r.method != http.MethodPost {
			return methodNotAllowed("POST")
		}
		return a.echo(r.body)
	case p == "/poem":
		if r.method != http.MethodGet && r.method != http.MethodHead {
			return methodNotAllowed("GET")
		}
		return a.poem()
	case p == "/healthz":
		return a.healthz()
	case p == "/hosts":
		switch r.method {
		case http.MethodGet, http.MethodHead:
			g, hasGroup := r.query("group")
			off, _ := r.query("offset")
			lim, _ := r.query("limit")
			return a.listHosts(ctx, g, hasGroup, off, lim)
		case http.MethodPost:
			return a.createHost(ctx, r.body)
		}
		return methodNotAllowed("GET, POST")
	case len(p) > len("/hosts/") && p[:len("/hosts/")] == "/hosts/":
		name := p[len("/hosts/"):]
		switch r.method {
		case http.MethodGet, http.MethodHead:
			return a.getHost(ctx, name)
		case http.MethodPatch:
			return a.patchHost(ctx, name, r.body)
		case http.MethodDelete:
			return a.deleteHost(ctx, name)
		}
		return methodNotAllowed("GET, PATCH, DELETE")
	case p == "/groups":
		if r.method != http.MethodGet && r.method != http.MethodHead {
			return methodNotAllowed("GET")
		}
		c, _ := r.query("count")
		return a.groups(ctx, c)
	}
	return errResponse(http.StatusNotFound, CodeNotFound, "no such endpoint: "+p)
}

func methodNotAllowed(allow string) response {
	r := errResponse(http.StatusMethodNotAllowed, CodeMethod, "allowed: "+allow)
	r.allow = allow
	return r
}

func tooLarge(limit int) response {
	return errResponse(http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("body: larger than %d bytes", limit))
}
