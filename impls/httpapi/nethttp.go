package httpapi

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// NewNetHTTP returns the net/http handler set for cfg.
func NewNetHTTP(cfg Config) http.Handler {
	a := newAPI(cfg)
	return &netHandler{a: a}
}

type netHandler struct{ a *api }

func (h *netHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/metrics" && h.a.cfg.Metrics != nil {
		h.a.cfg.Metrics.ServeHTTP(w, r)
		return
	}
	var q url.Values // parsed lazily: most endpoints take no query
	req := request{
		method: r.Method,
		path:   r.URL.Path,
		query: func(name string) (string, bool) {
			if q == nil {
				q = r.URL.Query()
			}
			v, ok := q[name]
			if !ok || len(v) == 0 {
				return "", false
			}
			return v[0], true
		},
	}
	if r.Body != nil && r.Method != http.MethodGet && r.Method != http.MethodHead {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(h.a.cfg.MaxBody)))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeNet(w, tooLarge(h.a.cfg.MaxBody))
				return
			}
			writeNet(w, errResponse(http.StatusBadRequest, CodeBadRequest, "body: "+err.Error()))
			return
		}
		req.body = body
	}
	writeNet(w, h.a.dispatch(r.Context(), req))
}

func writeNet(w http.ResponseWriter, resp response) {
	hd := w.Header()
	if resp.contentType != "" {
		hd.Set("Content-Type", resp.contentType)
	}
	if resp.location != "" {
		hd.Set("Location", resp.location)
	}
	if resp.allow != "" {
		hd.Set("Allow", resp.allow)
	}
	if resp.status != http.StatusNoContent {
		hd.Set("Content-Length", strconv.Itoa(len(resp.body)))
	}
	w.WriteHeader(resp.status)
	if len(resp.body) > 0 {
		w.Write(resp.body)
	}
}
