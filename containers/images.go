package containers

import (
	"context"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// imageFiles is the offline image build: images/build.sh and the
// entrypoints it installs. It is embedded so that the harness binary alone
// can build the images on an air-gapped host.
//
//go:embed images/build.sh images/postgres/entrypoint.sh images/mariadb/entrypoint.sh
var imageFiles embed.FS

// BuildOptions are the arguments of images/build.sh.
type BuildOptions struct {
	Force  bool   // rebuild images that exist
	Only   string // "postgres" or "mariadb"; empty for both
	Mirror string // Debian mirror URL; empty: read from the apt sources
	Suite  string // Debian suite; empty: read from the apt sources
}

// BuildImages runs the embedded images/build.sh (see its header) with
// bash, streaming its report lines to stdout and its progress to stderr.
// It needs root, debootstrap and a Docker engine; the script says which is
// missing.
func BuildImages(ctx context.Context, o BuildOptions, stdout, stderr io.Writer) error {
	switch o.Only {
	case "", "postgres", "mariadb":
	default:
		return fmt.Errorf("containers: build only %q: want postgres or mariadb", o.Only)
	}
	dir, err := os.MkdirTemp("", "twistbench-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := extract(dir); err != nil {
		return fmt.Errorf("containers: extracting the build script: %w", err)
	}
	args := []string{filepath.Join(dir, "images", "build.sh")}
	if o.Force {
		args = append(args, "--force")
	}
	for _, kv := range [][2]string{{"--only", o.Only}, {"--mirror", o.Mirror}, {"--suite", o.Suite}} {
		if kv[1] != "" {
			args = append(args, kv[0], kv[1])
		}
	}
	cmd := exec.CommandContext(ctx, "bash", args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("containers: images/build.sh failed (%v); its last lines above say why", err)
	}
	return nil
}

// extract writes the embedded image files under dir, scripts executable.
func extract(dir string) error {
	return fs.WalkDir(imageFiles, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := imageFiles.ReadFile(path)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(path, ".sh") {
			mode = 0o755
		}
		return os.WriteFile(dst, b, mode)
	})
}
