package main

import (
	"strings"
	"testing"
)

// TestEchoCommand serves echo and drives it with the echo command, both on
// the default back-end, as a user would from two terminals.
func TestEchoCommand(t *testing.T) {
	noLeaks(t)
	addr := startServe(t, "echo", "--listen", "127.0.0.1:0")
	for _, msg := range []string{"hello alex!", "", "ünïcødé\tand spaces"} {
		code, stdout, stderr := harness(t, "echo", addr, msg)
		if code != 0 {
			t.Fatalf("echo %q: exit %d; stderr %q", msg, code, stderr)
		}
		if stdout != msg+"\n" {
			t.Errorf("echo %q printed %q, want the message and a newline", msg, stdout)
		}
	}
}

// TestEveryReactor serves echo and poetry on each registered back-end and
// drives them with the client commands on the same back-end: the --reactor
// flag reaches the registry, and every engine runs the programs.
func TestEveryReactor(t *testing.T) {
	noLeaks(t)
	poem := "O Rose thou art sick.\n"
	file := writePoem(t, poem)
	for _, name := range reactorOrder {
		t.Run(name, func(t *testing.T) {
			addr := startServe(t, "echo", "--reactor", name)
			if code, stdout, stderr := harness(t, "echo", "--reactor", name, addr, "hello alex!"); code != 0 || stdout != "hello alex!\n" {
				t.Errorf("echo: exit %d, stdout %q, stderr %q; want the message back", code, stdout, stderr)
			}
			paddr := startServe(t, "poetry", "--reactor", name, file)
			if code, stdout, stderr := harness(t, "get-poetry", "--reactor", name, paddr, paddr); code != 0 || stdout != poem+"\n"+poem+"\n" {
				t.Errorf("get-poetry: exit %d, stdout %q, stderr %q; want the poem twice", code, stdout, stderr)
			}
		})
	}
}

func TestEchoCommandFailures(t *testing.T) {
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{name: "nothing listening", args: []string{"echo", refusedAddr(t), "hi"}, code: 2, want: "connection refused"},
		{name: "one argument", args: []string{"echo", "127.0.0.1:1"}, code: 2, want: "accepts 2 arg"},
		{name: "zero timeout", args: []string{"echo", "--timeout", "0s", "127.0.0.1:1", "hi"}, code: 2, want: "--timeout must be positive"},
		{name: "unknown reactor", args: []string{"echo", "--reactor", "nope", "127.0.0.1:1", "hi"}, code: 2, want: `unknown reactor "nope"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := harness(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tc.code, tc.want)
			}
		})
	}
}
