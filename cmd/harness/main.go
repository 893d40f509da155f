// Command harness is twistbench's CLI: it serves and drives the protocols,
// runs the conformance suites and the load benchmarks, provisions databases
// and writes reports. It is wiring only: every behaviour lives in a package.
//
// Exit codes: 0 success, 1 the job ran and found failures (a failed
// conformance case, a regression), 2 bad usage or an error that stopped the
// job. Errors are printed on one line, prefixed "harness: ".
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// errFindings marks a job that ran to the end but found failures (exit 1).
var errFindings = errors.New("findings")

// findings wraps a message as a finding: exit code 1 instead of 2.
func findings(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errFindings, fmt.Sprintf(format, args...))
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the CLI with args and returns the exit code; main is a thin
// shell over it so that tests drive the CLI in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	if errors.Is(err, errFindings) {
		fmt.Fprintln(stderr, "harness: "+strings.TrimPrefix(msg, errFindings.Error()+": "))
		return 1
	}
	fmt.Fprintln(stderr, "harness: "+msg)
	return 2
}

// commands lists the constructors of the top-level subcommands; each file of
// this package adds its own in an init function, so that a command lives in
// one file with its flags.
var commands []func() *cobra.Command

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "harness",
		Short: "twistbench: conformance and load benchmarks for reactors, stores and HTTP front-ends",
		Long: `harness runs twistbench's conformance suites and load benchmarks over
event-driven network engines (reactors) and data layers (stores), and serves
and drives the echo, poetry and inventory programs by hand.

Start with "harness run": conformance, then benchmarks, then the report.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, c := range commands {
		root.AddCommand(c())
	}
	return root
}
