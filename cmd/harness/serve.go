package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

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
SIGINT or SIGTERM, then shuts the reactor down cleanly.`,
	}
	cmd.AddCommand(newServeEchoCmd(), newServePoetryCmd(), newServeHTTPCmd())
	return cmd
}

func newServeEchoCmd() *cobra.Command {
	var rf reactorFlag
	var listen string
	cmd := &cobra.Command{
		Use:   "echo",
		Short: "Serve the echo protocol: every byte received is written back",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd, rf.name, listen, echo.ServerFactory)
		},
	}
	rf.register(cmd)
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "TCP address to listen on (port 0 picks a free port)")
	return cmd
}

func newServePoetryCmd() *cobra.Command {
	var rf reactorFlag
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
			return serve(cmd, rf.name, listen, poetry.NewServerFactory(poem))
		},
	}
	rf.register(cmd)
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "TCP address to listen on (port 0 picks a free port)")
	return cmd
}

// serve listens on addr with f, prints the bound address, and serves until
// the command's context ends (main cancels it on SIGINT and SIGTERM).
func serve(cmd *cobra.Command, name, addr string, f reactor.Factory) error {
	r, err := startReactor(name)
	if err != nil {
		return err
	}
	ln, err := r.Listen(addr, f)
	if err != nil {
		return shutdownAfter(r, fmt.Errorf("listen on %s: %w", addr, err))
	}
	fmt.Fprintf(cmd.OutOrStdout(), "listening on %s\n", ln.Addr())
	<-cmd.Context().Done()
	return shutdownAfter(r, nil)
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
