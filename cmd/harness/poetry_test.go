package main

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
)

// refusedAddr is an address nothing listens on (a port bound, then freed).
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestGetPoetryCommand serves two poems and downloads them with a refused
// address between them: poems in the order given, the failure on stderr
// with its address, exit code 1.
func TestGetPoetryCommand(t *testing.T) {
	noLeaks(t)
	sick := "O Rose thou art sick.\nThe invisible worm,\n"
	death := "Death, be not proud, though some have called thee\n"
	a := startServe(t, "poetry", writePoem(t, sick))
	b := startServe(t, "poetry", "--reactor", "stdnet", writePoem(t, death))
	bad := refusedAddr(t)
	_, bPort, _ := net.SplitHostPort(b)

	t.Run("text", func(t *testing.T) {
		code, stdout, stderr := harness(t, "get-poetry", b, bad, a)
		if code != 1 {
			t.Errorf("exit %d, want 1 (one download failed)", code)
		}
		if want := death + "\n" + sick + "\n"; stdout != want {
			t.Errorf("stdout %q, want %q (poems in the order given)", stdout, want)
		}
		if !strings.Contains(stderr, "get-poetry: "+bad+": ") || !strings.Contains(stderr, "connection refused") {
			t.Errorf("stderr %q does not name the refused address %s", stderr, bad)
		}
	})
	t.Run("bare port", func(t *testing.T) {
		code, stdout, stderr := harness(t, "get-poetry", bPort)
		if code != 0 || stdout != death+"\n" {
			t.Errorf("exit %d, stdout %q, stderr %q; want exit 0 and the poem", code, stdout, stderr)
		}
	})
	t.Run("json", func(t *testing.T) {
		code, stdout, stderr := harness(t, "get-poetry", "--json", a, bad)
		if code != 1 {
			t.Errorf("exit %d, want 1; stderr %q", code, stderr)
		}
		var got []poemJSON
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("--json output is not JSON: %v\n%s", err, stdout)
		}
		if len(got) != 2 {
			t.Fatalf("--json gave %d entries, want 2: %s", len(got), stdout)
		}
		if g := got[0]; g.Address != a || g.Bytes != len(sick) || g.Text != sick || g.Error != nil {
			t.Errorf("first entry %+v, want the poem from %s and a null error", g, a)
		}
		if g := got[1]; g.Address != bad || g.Error == nil || !strings.Contains(*g.Error, "connection refused") || g.Bytes != 0 {
			t.Errorf("second entry %+v, want the refused address with its error", g)
		}
		if !strings.Contains(stdout, `"error": null`) {
			t.Errorf("a whole poem's entry should say \"error\": null, so every entry has the same keys:\n%s", stdout)
		}
	})
}

func TestGetPoetryRefuses(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{name: "no address", args: []string{"get-poetry"}, want: "requires at least 1 arg"},
		{name: "not an address", args: []string{"get-poetry", "localhost"}, want: `address "localhost"`},
		{name: "port out of range", args: []string{"get-poetry", "70000"}, want: `address "70000": port out of range`},
		{name: "bad port", args: []string{"get-poetry", "127.0.0.1:http"}, want: `port "http" is not a number`},
		{name: "zero timeout", args: []string{"get-poetry", "--timeout", "0s", "1234"}, want: "--timeout must be positive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := harness(t, tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, stderr, tc.want)
			}
		})
	}
}
