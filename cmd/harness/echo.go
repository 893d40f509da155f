package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/twistbench/twistbench/impls/echo"
)

func init() { commands = append(commands, newEchoCmd) }

func newEchoCmd() *cobra.Command {
	var rf reactorFlag
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "echo ADDR MESSAGE",
		Short: "Send MESSAGE to the echo server at ADDR and print what comes back",
		Long: `echo connects to the echo server at ADDR (host:port), sends MESSAGE, waits
until as many bytes have come back, checks they are the same, and prints
them followed by a newline (Twisted's EchoClient, made exact). It fails if
the bytes differ, the connection ends early, or --timeout passes.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, msg := args[0], []byte(args[1])
			if timeout <= 0 {
				return fmt.Errorf("--timeout must be positive, got %v", timeout)
			}
			r, err := startReactor(rf.name)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			echoed, err := echo.Roundtrip(ctx, r, addr, msg)
			if err != nil {
				return shutdownAfter(r, fmt.Errorf("echo %s: %w", addr, err))
			}
			if _, err := fmt.Fprintf(cmd.OutOrStdout(), "%s\n", echoed); err != nil {
				return shutdownAfter(r, err)
			}
			return shutdownAfter(r, nil)
		},
	}
	rf.register(cmd)
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "give up after this long (connect and round trip)")
	return cmd
}
