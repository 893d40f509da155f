package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"go.uber.org/goleak"

	"github.com/twistbench/twistbench/containers"
)

func images(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"images"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestImagesListWithoutEngine checks that, with no Docker engine, the list
// says SQLite needs nothing and why the server dialects are skipped, and
// that a DSN given for a dialect wins, shown without its password.
func TestImagesListWithoutEngine(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no-docker.sock"))
	t.Setenv(containers.EnvRequireDocker, "")
	t.Setenv(containers.EnvPostgresDSN, "")
	t.Setenv(containers.EnvMySQLDSN, "mysql://root:hunter2@db.example:3306/inv")
	code, out, errOut := images(t, "list")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(l)
		lines[f[0]] = l
	}
	for dialect, want := range map[string]string{
		"sqlite":   "needs nothing",
		"postgres": "skipped: postgres unavailable: no Docker engine answers",
		"mysql":    "existing server mysql://root:xxxxx@db.example:3306/inv",
	} {
		if !strings.Contains(lines[dialect], want) {
			t.Errorf("%s line %q does not contain %q", dialect, lines[dialect], want)
		}
	}
	if strings.Contains(out, "hunter2") {
		t.Errorf("the list shows a password:\n%s", out)
	}
}

// TestImagesListExplicitImage checks that --postgres-image wins over the
// environment and shows in the list as the user's choice.
func TestImagesListExplicitImage(t *testing.T) {
	t.Setenv(containers.EnvPostgresImage, "from-env:1")
	t.Setenv(containers.EnvPostgresDSN, "")
	fromEnv := imageFlags(&cobra.Command{Use: "x"}) // flags left unset
	if got := fromEnv().PostgresImage; got != "from-env:1" {
		t.Errorf("environment image %q, want from-env:1", got)
	}
	cmd := &cobra.Command{Use: "x"}
	fromFlag := imageFlags(cmd)
	if err := cmd.Flags().Parse([]string{"--postgres-image", "from-flag:2"}); err != nil {
		t.Fatal(err)
	}
	if got := fromFlag().PostgresImage; got != "from-flag:2" {
		t.Errorf("flag image %q, want from-flag:2", got)
	}
}

func TestImagesBuildUsage(t *testing.T) {
	code, _, errOut := images(t, "build", "--only", "oracle")
	if code != 2 || !strings.Contains(errOut, `"oracle"`) || strings.Count(errOut, "\n") != 1 {
		t.Errorf("exit %d, stderr %q; want 2 and one line naming the bad value", code, errOut)
	}
}
