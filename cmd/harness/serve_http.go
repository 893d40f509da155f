package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/twistbench/twistbench/impls/httpapi"
	"github.com/twistbench/twistbench/impls/store/sqlconn"
)

// defaultPoem is what GET /poem serves when no --poem file is given.
const defaultPoem = "The poetry server serves one poem to all comers;\nthis is it.\n"

func newServeHTTPCmd() *cobra.Command {
	var (
		engine, storeName, dsn, listen, poemFile string
		maxBody                                  int
		migrate, metrics                         bool
	)
	cmd := &cobra.Command{
		Use:   "http",
		Short: "Serve the echo, poem and host-inventory endpoints over HTTP on a store",
		Long: `serve http runs the HTTP front-end (fasthttp or net/http) over a store
back-end and database: POST /echo, GET /poem, GET|POST /hosts,
GET|PATCH|DELETE /hosts/{hostname}, GET /groups?count=1, GET /healthz, and
GET /metrics with --metrics (Go runtime, process and database pool metrics).
It prints the bound address on one line and serves until SIGINT or SIGTERM.`,
		Example: `  harness serve http --engine fasthttp --store sqlx --dsn sqlite:///tmp/inv.db --migrate
  harness serve http --engine nethttp --store gorm --dsn postgres://u:p@127.0.0.1:5432/db --listen 127.0.0.1:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			eng := httpapi.Engine(engine)
			if eng != httpapi.FastHTTP && eng != httpapi.NetHTTP {
				return fmt.Errorf("--engine %q: want fasthttp or nethttp", engine)
			}
			if strings.Contains(storeName, ",") || storeName == "all" {
				return fmt.Errorf("--store takes one back-end, not %q", storeName)
			}
			names, err := pick("store", storeName, storeOrder)
			if err != nil {
				return err
			}
			poem := []byte(defaultPoem)
			if poemFile != "" {
				if poem, err = os.ReadFile(poemFile); err != nil {
					return fmt.Errorf("--poem: %w", err)
				}
			}
			ctx := cmd.Context()
			db, err := sqlconn.Open(ctx, dsn)
			if err != nil {
				return err
			}
			defer db.SQL.Close()
			s, err := stores[names[0]](ctx, db)
			if err != nil {
				return fmt.Errorf("store %s on %s: %w", names[0], sqlconn.Redact(dsn), err)
			}
			defer s.Close()
			if migrate {
				if err := s.Migrate(ctx); err != nil {
					return fmt.Errorf("migrate %s: %w", sqlconn.Redact(dsn), err)
				}
			}
			cfg := httpapi.Config{
				Store: s, Poem: poem, MaxBody: maxBody,
				Log: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)),
			}
			if metrics {
				reg := prometheus.NewRegistry()
				reg.MustRegister(
					collectors.NewGoCollector(),
					collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
					collectors.NewDBStatsCollector(db.SQL, string(db.Dialect)),
				)
				cfg.Metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			srv, err := httpapi.Start(eng, ln, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "listening on %s (%s over %s, %s)\n", ln.Addr(), eng, names[0], db.Flavor)
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil && err != http.ErrServerClosed {
				return fmt.Errorf("http shutdown: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&engine, "engine", string(httpapi.FastHTTP), "HTTP engine: fasthttp or nethttp")
	f.StringVar(&storeName, "store", "sql", "store back-end: "+strings.Join(storeOrder, ", "))
	f.StringVar(&dsn, "dsn", defaultInventoryDSN(), "database URL (postgres://, mysql://, sqlite:///path)")
	f.StringVar(&listen, "listen", "127.0.0.1:8080", "TCP address to listen on (loopback by default)")
	f.StringVar(&poemFile, "poem", "", "file GET /poem serves (default: a two-line poem)")
	f.IntVar(&maxBody, "max-body", 1<<20, "largest request body accepted, in bytes (larger: 413)")
	f.BoolVar(&migrate, "migrate", false, "create the schema first if it is absent")
	f.BoolVar(&metrics, "metrics", false, "serve Prometheus metrics at GET /metrics")
	return cmd
}
