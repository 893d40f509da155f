package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/twistbench/twistbench/bench/metrics"
	"github.com/twistbench/twistbench/impls/echo"
	"github.com/twistbench/twistbench/impls/poetry"
	"github.com/twistbench/twistbench/impls/reactor"
)

func init() { commands = append(commands, newServeCmd) }

// defaultReactor is the back-end the protocol commands use when --reactor is
// not given: the goroutine-per-connection baseline, the one proven first.
const defaultReactor = "stdnet"

// shutdownGrace bounds how long a server waits for its connections to close
// after SIGINT or SIGTERM.
const shutdownGrace = 10 * time.Second

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve a protocol (echo, poetry) on a reactor, or the HTTP front-end, until interrupted",
		Long: `serve runs one of the tutorial's servers on a reactor back-end. It prints
the bound address on one line ("listening on 127.0.0.1:41234"), serves until
SIGINT or SIGTERM, then shuts the reactor down cleanly.

With --metrics-addr, serve echo and serve poetry also export the reactor's own
figures to Prometheus at http://ADDR/metrics (open connections, connections
made, bytes received and sent, labelled by back-end, plus Go runtime and
process metrics) and print that URL on a second line. The address must be a
loopback one (":9464" binds 127.0.0.1) unless --metrics-public is given.`,
	}
	cmd.AddCommand(newServeEchoCmd(), newServePoetryCmd(), newServeHTTPCmd())
	return cmd
}

func newServeEchoCmd() *cobra.Command {
	var rf reactorFlag
	var mf metricsFlags
	var listen string
	cmd := &cobra.Command{
		Use:   "echo",
		Short: "Serve the echo protocol: every byte received is written back",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd, rf.name, listen, mf, echo.ServerFactory)
		},
	}
	rf.register(cmd)
	mf.register(cmd)
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "TCP address to listen on (port 0 picks a free port)")
	return cmd
}

func newServePoetryCmd() *cobra.Command {
	var rf reactorFlag
	var mf metricsFlags
	var listen string
	cmd := &cobra.Command{
		Use:   "poetry FILE",
		Short: "Serve FILE to every client, then close (Twisted's Fast Poetry Server)",
		Long: `serve poetry reads FILE once and writes it whole to every client that
connects, then closes the connection; the end of the connection is the end
of the poem.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			poem, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("poem: %w", err)
			}
			return serve(cmd, rf.name, listen, mf, poetry.NewServerFactory(poem))
		},
	}
	rf.register(cmd)
	mf.register(cmd)
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "TCP address to listen on (port 0 picks a free port)")
	return cmd
}

// serve listens on addr with f, prints the bound address, and serves until
// the command's context ends (main cancels it on SIGINT and SIGTERM). With
// metrics asked for, the reactor is wrapped to count its connections and
// bytes, and the figures are served beside it until the reactor has shut
// down, so a last scrape still sees the connections close.
func serve(cmd *cobra.Command, name, addr string, mf metricsFlags, f reactor.Factory) error {
	if err := mf.check(); err != nil {
		return err
	}
	r, err := startReactor(name)
	if err != nil {
		return err
	}
	var reg *prometheus.Registry
	if mf.addr != "" {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		m, err := metrics.NewReactorMetrics(reg)
		if err != nil {
			return shutdownAfter(r, err)
		}
		r = m.Wrap(r, strings.TrimSpace(name))
	}
	ln, err := r.Listen(addr, f)
	if err != nil {
		return shutdownAfter(r, fmt.Errorf("listen on %s: %w", addr, err))
	}
	if reg == nil {
		fmt.Fprintf(cmd.OutOrStdout(), "listening on %s\n", ln.Addr())
		<-cmd.Context().Done()
		return shutdownAfter(r, nil)
	}

	mctx, stopMetrics := context.WithCancel(context.Background())
	defer stopMetrics()
	maddr, mdone, err := metrics.Serve(mctx, mf.addr, reg)
	if err != nil {
		return shutdownAfter(r, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "listening on %s\nmetrics on http://%s/metrics\n", ln.Addr(), maddr)
	select {
	case <-cmd.Context().Done():
		err = shutdownAfter(r, nil)
		stopMetrics()
		if merr := <-mdone; merr != nil && err == nil {
			err = fmt.Errorf("metrics server: %w", merr)
		}
		return err
	case merr := <-mdone: // only ends early on a failure
		return shutdownAfter(r, fmt.Errorf("metrics server stopped: %v", merr))
	}
}

// metricsFlags are --metrics-addr and --metrics-public of the serve
// commands.
type metricsFlags struct {
	addr   string
	public bool
}

func (m *metricsFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&m.addr, "metrics-addr", "",
		`serve the reactor's Prometheus metrics at http://ADDR/metrics (off when empty; ":9464" binds loopback; a non-loopback address needs --metrics-public)`)
	cmd.Flags().BoolVar(&m.public, "metrics-public", false,
		"allow --metrics-addr on a non-loopback address, which exposes the metrics to the network")
}

// check refuses a metrics address that would expose the figures beyond this
// machine unless --metrics-public says so. A host that is not an IP literal
// other than "localhost" is refused too: what it resolves to is not known
// here, and a name is no proof of loopback.
func (m metricsFlags) check() error {
	if m.addr == "" {
		if m.public {
			return fmt.Errorf("--metrics-public needs --metrics-addr")
		}
		return nil
	}
	host, _, err := net.SplitHostPort(m.addr)
	if err != nil {
		return fmt.Errorf("--metrics-addr %q: %w", m.addr, err)
	}
	if m.public || host == "" || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--metrics-addr %q is not a loopback address: it would expose the metrics to the network; add --metrics-public to allow that", m.addr)
}

// shutdownAfter shuts r down within shutdownGrace and returns err, or the
// shutdown's error when err is nil.
func shutdownAfter(r reactor.Reactor, err error) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if serr := r.Shutdown(ctx); serr != nil && err == nil {
		return fmt.Errorf("reactor shutdown: %w", serr)
	}
	return err
}

// reactorFlag is the --reactor flag of the protocol commands: exactly one
// back-end from the registry.
type reactorFlag struct{ name string }

func (f *reactorFlag) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.name, "reactor", defaultReactor,
		"reactor back-end: "+strings.Join(reactorOrder, ", "))
}

// startReactor builds the one reactor named; a selection of several ("all",
// a list) is refused, since a server or a client runs on one engine.
func startReactor(name string) (reactor.Reactor, error) {
	if name == "" || name == "all" || strings.Contains(name, ",") {
		return nil, fmt.Errorf("--reactor takes one back-end, not %q (known: %s)", name, strings.Join(reactorOrder, ", "))
	}
	names, err := pick("reactor", name, reactorOrder)
	if err != nil {
		return nil, err
	}
	r, err := reactors[names[0]]()
	if err != nil {
		return nil, fmt.Errorf("reactor %s: %w", names[0], err)
	}
	return r, nil
}
