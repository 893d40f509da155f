package containers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"go.uber.org/goleak"

	"github.com/twistbench/twistbench/impls/store"
	"github.com/twistbench/twistbench/impls/store/sqlconn"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(Wrap(m)) }

func TestReplaceDatabase(t *testing.T) {
	tests := []struct{ dsn, name, want string }{
		{"postgres://u:p@127.0.0.1:5432/twistbench?sslmode=disable", "tb_1", "postgres://u:p@127.0.0.1:5432/tb_1?sslmode=disable"},
		{"mysql://root:p@127.0.0.1:3306/twistbench", "tb_2", "mysql://root:p@127.0.0.1:3306/tb_2"},
		{"mysql://root:p@h/db?parseTime=true&x=/y", "n", "mysql://root:p@h/n?parseTime=true&x=/y"},
	}
	for _, tt := range tests {
		if got := replaceDatabase(tt.dsn, tt.name); got != tt.want {
			t.Errorf("replaceDatabase(%q, %q) = %q, want %q", tt.dsn, tt.name, got, tt.want)
		}
	}
}

func TestSkippable(t *testing.T) {
	soft := &Unavailable{Dialect: store.MySQL, Reason: "no engine"}
	hard := &Unavailable{Dialect: store.MySQL, Reason: "no engine", Required: true}
	if u, ok := Skippable(fmt.Errorf("wrapped: %w", soft)); !ok || u != soft {
		t.Errorf("Skippable(wrapped soft) = %v, %v", u, ok)
	}
	if _, ok := Skippable(hard); ok {
		t.Error("a required dialect is skippable")
	}
	if _, ok := Skippable(errors.New("other")); ok {
		t.Error("an unrelated error is skippable")
	}
	if !strings.Contains(hard.Error(), EnvRequireDocker) {
		t.Errorf("%q does not say why it is a failure", hard.Error())
	}
}

func TestGetSQLite(t *testing.T) {
	p := NewProvider()
	dsn, cleanup, err := p.Get(context.Background(), store.SQLite)
	defer cleanup()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlconn.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SQL.Close()
	dir := filepath.Dir(strings.TrimPrefix(dsn, "sqlite://"))
	cleanup()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cleanup left %s behind (%v)", dir, err)
	}
}

// TestChooseExistingDSN checks that a DSN in the environment wins over any
// image, and that a bad one is reported without its password.
func TestChooseExistingDSN(t *testing.T) {
	t.Setenv(EnvPostgresDSN, "postgres://u:hunter2@db.example:5432/inv")
	t.Setenv(EnvMySQLDSN, "mysql://u:hunter2@db.example:3306")
	p := NewProvider()
	c := p.Choose(context.Background(), store.Postgres, false)
	if c.Err != nil || c.Source != "dsn" || strings.Contains(c.Why, "hunter2") {
		t.Errorf("postgres: %+v", c)
	}
	c = p.Choose(context.Background(), store.MySQL, false)
	if c.Err == nil || strings.Contains(c.Err.Error(), "hunter2") || !strings.Contains(c.Err.Error(), "missing database name") {
		t.Errorf("mysql: %+v", c)
	}
}

// TestNoEngine checks that a Docker engine that does not answer makes the
// server dialects unavailable, softly unless required.
func TestNoEngine(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no-docker.sock"))
	for _, required := range []bool{false, true} {
		p := NewProvider()
		p.RequireDocker = required
		_, cleanup, err := p.Get(context.Background(), store.Postgres)
		cleanup()
		var u *Unavailable
		if !errors.As(err, &u) || u.Required != required || !strings.Contains(u.Reason, "no Docker engine answers") {
			t.Errorf("required=%v: %v", required, err)
		}
		p.Close()
	}
}

// engineOrSkip skips tests that need a Docker engine when none answers.
func engineOrSkip(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := connectEngine(ctx)
	if err != nil {
		if RequireDockerFromEnv() {
			t.Fatalf("no Docker engine answers: %v", err)
		}
		t.Skipf("no Docker engine answers: %v", err)
	}
	e.Close()
}

// TestExplicitImageMissing checks that an image the user chose and that
// cannot be had is reported as such, never replaced by another.
func TestExplicitImageMissing(t *testing.T) {
	engineOrSkip(t)
	p := NewProvider()
	defer p.Close()
	p.PostgresImage = "twistbench/no-such-image:0"
	p.PullTimeout = 5 * time.Second
	c := p.Choose(context.Background(), store.Postgres, true)
	var u *Unavailable
	if !errors.As(c.Err, &u) || !strings.Contains(u.Reason, "twistbench/no-such-image:0") {
		t.Fatalf("choice %+v, want unavailable naming the image", c)
	}
	if c.Image != "" {
		t.Errorf("an explicit image was replaced by %q", c.Image)
	}
}

// TestDBPerDialect opens a database of every dialect through TestDB, checks
// that each call gets its own empty database on the shared server, and
// that it answers SQL.
func TestDBPerDialect(t *testing.T) {
	for _, d := range store.Dialects {
		t.Run(string(d), func(t *testing.T) {
			a := TestDB(t, d)
			b := TestDB(t, d)
			if a.Dialect != d || b.Dialect != d {
				t.Fatalf("dialects %s, %s", a.Dialect, b.Dialect)
			}
			t.Logf("%s: %s", d, a.Flavor)
			ctx := context.Background()
			if _, err := a.SQL.ExecContext(ctx, `CREATE TABLE only_in_a (id INTEGER PRIMARY KEY)`); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := a.SQL.QueryRowContext(ctx, `SELECT count(*) FROM only_in_a`).Scan(&n); err != nil || n != 0 {
				t.Fatalf("count = %d, %v", n, err)
			}
			if _, err := b.SQL.ExecContext(ctx, `SELECT count(*) FROM only_in_a`); err == nil {
				t.Error("a table created through one TestDB is visible through another")
			}
		})
	}
}

// TestGetSharesOneServer checks that Gets of one dialect get distinct
// databases on one server, and that the server's container is gone once
// the last cleanup ran.
func TestGetSharesOneServer(t *testing.T) {
	engineOrSkip(t)
	ctx := context.Background()
	p := NewProvider()
	defer p.Close()
	a, cleanA, errA := p.Get(ctx, store.Postgres)
	defer cleanA()
	b, cleanB, errB := p.Get(ctx, store.Postgres)
	defer cleanB()
	if err := errors.Join(errA, errB); err != nil {
		if _, ok := Skippable(err); ok {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	hostOf := func(dsn string) string { h, _, _ := strings.Cut(strings.TrimPrefix(dsn, "postgres://"), "/"); return h }
	if a == b || hostOf(a) != hostOf(b) {
		t.Errorf("Gets returned %s and %s: want two databases on one server", sqlconn.Redact(a), sqlconn.Redact(b))
	}
	running := func() int {
		e, err := connectEngine(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		list, err := e.cli.ContainerList(ctx, client.ContainerListOptions{Filters: make(client.Filters).
			Add("label", LabelOwner+"="+strconv.Itoa(os.Getpid())).
			Add("label", LabelDialect+"=postgres")})
		if err != nil {
			t.Fatal(err)
		}
		return len(list.Items)
	}
	// TestDB's shared server (Keep) may be running too: count relative.
	before := running()
	cleanA()
	if got := running(); got != before {
		t.Errorf("a cleanup with a Get outstanding changed the running containers: %d, then %d", before, got)
	}
	cleanB()
	if got := running(); got != before-1 {
		t.Errorf("after the last cleanup %d containers run, want %d", got, before-1)
	}
}

// TestPruneRemovesOrphans checks that a labelled container whose owner
// process is gone is removed, and one of a live owner is kept.
func TestPruneRemovesOrphans(t *testing.T) {
	engineOrSkip(t)
	ctx := context.Background()
	e, err := connectEngine(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() }) // after the removals below
	img := OfflinePostgresImage
	if !e.hasImage(ctx, img) {
		t.Skipf("%s is not built (%s); no image to create a container from", img, BuildCommand)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	create := func(owner int) string {
		r, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{
			Image:  img,
			Labels: map[string]string{LabelManaged: "true", LabelOwner: strconv.Itoa(owner), LabelDialect: "postgres"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.cli.ContainerRemove(ctx, r.ID, client.ContainerRemoveOptions{Force: true}) })
		return r.ID
	}
	orphan, mine := create(dead.Process.Pid), create(os.Getpid())
	if _, err := Prune(ctx, false); err != nil {
		t.Fatal(err)
	}
	exists := func(id string) bool {
		_, err := e.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		return err == nil
	}
	if exists(orphan) {
		t.Error("the container of a dead process survived Prune")
	}
	if !exists(mine) {
		t.Error("Prune removed the container of a live process")
	}
}
