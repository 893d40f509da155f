package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/twistbench/twistbench/impls/store"
)

// inventory runs "harness inventory --store s --dsn dsn args..." in-process
// and returns the exit code, stdout and stderr.
func inventory(t *testing.T, s, dsn string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	full := append([]string{"inventory", "--store", s, "--dsn", dsn}, args...)
	code := run(context.Background(), full, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestInventory walks the tutorial's session through the CLI on every
// store back-end, each on its own SQLite file.
func TestInventory(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
	for _, name := range storeOrder {
		t.Run(name, func(t *testing.T) {
			dsn := "sqlite://" + filepath.Join(t.TempDir(), "inventory.db")
			ok := func(args ...string) string {
				t.Helper()
				code, out, errOut := inventory(t, name, dsn, args...)
				if code != 0 {
					t.Fatalf("%v: exit %d, stderr %q", args, code, errOut)
				}
				return out
			}
			if out := ok("migrate"); !strings.HasPrefix(out, "migrated sqlite://") || !strings.Contains(out, "SQLite") {
				t.Errorf("migrate said %q", out)
			}
			ok("migrate") // idempotent
			if out := ok("add-host", "web1", "192.168.2.243", "--port", "20000"); !strings.Contains(out, "web1 192.168.2.243:20000 (id 1)") {
				t.Errorf("add-host said %q", out)
			}
			ok("add-host", "localhost", "127.0.0.1")
			ok("add-group", "t1")
			ok("add-group", "empty")
			ok("join", "web1", "t1")

			var hosts []store.Host
			if err := json.Unmarshal([]byte(ok("hosts", "--json")), &hosts); err != nil {
				t.Fatal(err)
			}
			want := []store.Host{{ID: 1, Hostname: "web1", IPAddr: "192.168.2.243", Port: 20000}, {ID: 2, Hostname: "localhost", IPAddr: "127.0.0.1", Port: 22}}
			if len(hosts) != 2 || hosts[0] != want[0] || hosts[1] != want[1] {
				t.Errorf("hosts --json = %+v, want %+v", hosts, want)
			}
			table := ok("hosts", "--group", "t1")
			if lines := strings.Split(strings.TrimSpace(table), "\n"); len(lines) != 2 ||
				strings.Join(strings.Fields(lines[0]), " ") != "ID HOSTNAME IP PORT" ||
				strings.Join(strings.Fields(lines[1]), " ") != "1 web1 192.168.2.243 20000" {
				t.Errorf("hosts --group t1 printed:\n%s", table)
			}
			var counts []store.GroupCount
			if err := json.Unmarshal([]byte(ok("groups", "--count", "--json")), &counts); err != nil {
				t.Fatal(err)
			}
			if len(counts) != 2 || counts[0] != (store.GroupCount{Group: "empty", Hosts: 0}) || counts[1] != (store.GroupCount{Group: "t1", Hosts: 1}) {
				t.Errorf("groups --count --json = %+v", counts)
			}
			if out := ok("groups"); strings.Join(strings.Fields(out), " ") != "GROUP empty t1" {
				t.Errorf("groups printed %q", out)
			}
		})
	}
}

// TestInventoryFailures checks that every failure is one line on stderr,
// "harness: ...", with exit code 2, naming what was wrong and never the
// password.
func TestInventoryFailures(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
	dir := t.TempDir()
	dsn := "sqlite://" + filepath.Join(dir, "inventory.db")
	if code, _, errOut := inventory(t, "sql", dsn, "migrate"); code != 0 {
		t.Fatal(errOut)
	}
	for _, args := range [][]string{{"add-host", "web1", "10.0.0.1"}, {"add-group", "g"}, {"join", "web1", "g"}} {
		if code, _, errOut := inventory(t, "sql", dsn, args...); code != 0 {
			t.Fatalf("%v: %s", args, errOut)
		}
	}
	tests := []struct {
		name  string
		store string
		dsn   string
		args  []string
		want  string // in the one line of stderr
	}{
		{"duplicate host", "sql", dsn, []string{"add-host", "web1", "10.0.0.2"}, "a host with that name or address exists"},
		{"duplicate address", "sqlx", dsn, []string{"add-host", "web2", "10.0.0.1"}, "store: duplicate"},
		{"duplicate group", "sql", dsn, []string{"add-group", "g"}, "the group exists"},
		{"duplicate membership", "sql", dsn, []string{"join", "web1", "g"}, "already a member"},
		{"missing host", "sqlx", dsn, []string{"join", "web9", "g"}, `host "web9": store: not found`},
		{"missing group", "sql", dsn, []string{"hosts", "--group", "nope"}, `group "nope": store: not found`},
		{"bad port", "sql", dsn, []string{"add-host", "x", "10.0.0.3", "--port", "70000"}, "port: 70000 is outside 0-65535"},
		{"empty hostname", "sql", dsn, []string{"add-host", "", "10.0.0.3"}, "hostname: empty"},
		{"no schema", "sql", "sqlite://" + filepath.Join(dir, "empty.db"), []string{"hosts"}, "migrate\" first"},
		{"unknown store", "oracle", dsn, []string{"hosts"}, `unknown store "oracle"`},
		{"two stores", "sql,sqlx", dsn, []string{"hosts"}, "name one back-end"},
		{"bad DSN", "sql", "bogus", []string{"hosts"}, "bad DSN bogus"},
		{"relative SQLite path", "sql", "sqlite://inv.db", []string{"hosts"}, "bad DSN"},
		{"unreachable server", "sql", "postgres://me:hunter2@127.0.0.1:1/inv?connect_timeout=5", []string{"hosts"}, "cannot reach postgres://me:xxxxx@127.0.0.1:1/inv"},
		{"wrong arguments", "sql", dsn, []string{"add-host", "only-a-name"}, "accepts 2 arg(s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := inventory(t, tt.store, tt.dsn, tt.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2 (stdout %q)", code, out)
			}
			if strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "harness: ") {
				t.Errorf("stderr is not one line starting harness: %q", errOut)
			}
			if !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr %q does not say %q", errOut, tt.want)
			}
			if strings.Contains(errOut, "hunter2") || strings.Contains(errOut, "goroutine ") {
				t.Errorf("stderr leaks a password or a stack: %q", errOut)
			}
		})
	}
}
