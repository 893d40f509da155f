package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/twistbench/twistbench/impls/poetry"
)

func init() { commands = append(commands, newGetPoetryCmd) }

// poemJSON is one element of get-poetry --json. Every key is always
// present: error is null for a poem that arrived whole; for a failure,
// bytes and text are what arrived before it.
type poemJSON struct {
	Address string  `json:"address"`
	Bytes   int     `json:"bytes"`
	Text    string  `json:"text"`
	Error   *string `json:"error"`
}

func newGetPoetryCmd() *cobra.Command {
	var (
		rf      reactorFlag
		asJSON  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "get-poetry ADDR...",
		Short: "Download poems from several poetry servers at once and print them",
		Long: `get-poetry downloads from every ADDR at once (Twisted's Get Poetry Now!
3.0 client): a poem is complete when its server closes the connection. ADDR
is host:port, or a bare port meaning 127.0.0.1:port as in the original.

Poems are printed in the order the addresses were given, each followed by a
newline. A failed download (refused, reset, timed out) is reported on stderr
with its address while the others go on, and the exit code is 1. --json
prints [{address, bytes, text, error}] instead.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout <= 0 {
				return fmt.Errorf("--timeout must be positive, got %v", timeout)
			}
			addrs := make([]string, len(args))
			for i, a := range args {
				addr, err := poetryAddr(a)
				if err != nil {
					return err
				}
				addrs[i] = addr
			}
			r, err := startReactor(rf.name)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			results := poetry.Get(ctx, r, addrs)
			if err := shutdownAfter(r, nil); err != nil {
				return err
			}
			return printPoems(cmd, results, asJSON)
		},
	}
	rf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print [{address, bytes, text, error}] as JSON")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up on downloads still running after this long")
	return cmd
}

// poetryAddr accepts host:port, or a bare port as the original client does.
func poetryAddr(a string) (string, error) {
	if p, err := strconv.Atoi(a); err == nil {
		if p < 1 || p > 65535 {
			return "", fmt.Errorf("address %q: port out of range 1-65535", a)
		}
		return net.JoinHostPort("127.0.0.1", a), nil
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return "", fmt.Errorf("address %q: want host:port or a port: %w", a, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("address %q: port %q is not a number in 1-65535", a, port)
	}
	if host == "" {
		return "", fmt.Errorf("address %q: no host", a)
	}
	return a, nil
}

// printPoems writes the poems (or JSON) to stdout and every failure to
// stderr, and returns a finding (exit 1) when any download failed.
func printPoems(cmd *cobra.Command, results []poetry.Result, asJSON bool) error {
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	failed := 0
	for _, res := range results {
		if res.Err != nil {
			failed++
			fmt.Fprintf(errOut, "get-poetry: %s: %v\n", res.Addr, res.Err)
		}
	}
	if asJSON {
		list := make([]poemJSON, len(results))
		for i, res := range results {
			list[i] = poemJSON{Address: res.Addr, Bytes: len(res.Poem), Text: string(res.Poem)}
			if res.Err != nil {
				msg := res.Err.Error()
				list[i].Error = &msg
			}
		}
		b, err := json.MarshalIndent(list, "", "  ")
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(out, "%s\n", b); err != nil {
			return err
		}
	} else {
		for _, res := range results {
			if res.Err != nil {
				continue
			}
			if _, err := fmt.Fprintf(out, "%s\n", res.Poem); err != nil {
				return err
			}
		}
	}
	if failed > 0 {
		return findings("%d of %d downloads failed", failed, len(results))
	}
	return nil
}
