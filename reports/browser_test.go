package reports

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// browser finds a headless-capable Chromium: $TWISTBENCH_CHROME, or the
// usual names on PATH. Without one the test fails under
// TWISTBENCH_REQUIRE_BROWSER=1 (set in .ci/run) and skips elsewhere.
func browser(t *testing.T) string {
	t.Helper()
	names := []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}
	if c := os.Getenv("TWISTBENCH_CHROME"); c != "" {
		names = []string{c}
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := "no headless browser found (tried " + strings.Join(names, ", ") + "); install Debian's chromium package"
	if os.Getenv("TWISTBENCH_REQUIRE_BROWSER") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

var consoleLine = regexp.MustCompile(`(?m)^.*:CONSOLE[:(].*$`)

// load opens page in headless Chromium, returning the DOM after load and
// every console message the page produced (the page has no script of its
// own, so any message is a failure: a resource it could not load, an
// error). A screenshot is written to shot when non-empty.
func load(t *testing.T, chrome, page, shot string) (dom string, console []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir(), "--no-first-run",
		"--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
		"--window-size=1400,4000",
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, chrome, append(args, "--dump-dom", "file://"+page)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s --dump-dom: %v\n%s", chrome, err, stderr.String())
	}
	console = consoleLine.FindAllString(stderr.String(), -1)
	if shot != "" {
		cmd := exec.CommandContext(ctx, chrome, append(args, "--screenshot="+shot, "file://"+page)...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s --screenshot: %v\n%s", chrome, err, b)
		}
	}
	return string(out), console
}

// TestBrowser renders the report in headless Chromium: it loads without a
// console message, the verdicts, the matrix and every chart are in the
// DOM, and a screenshot is kept ($TWISTBENCH_ARTIFACTS/report.png when set).
func TestBrowser(t *testing.T) {
	chrome := browser(t)
	r := buildFixture(t)
	dir := t.TempDir()
	if err := WriteDir(dir, r); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(dir, "index.html")
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	// Self-contained: nothing that a browser would fetch.
	for _, bad := range []string{`src="http`, `href="http`, `url(http`, "@import", "<script", "<link "} {
		if bytes.Contains(html, []byte(bad)) {
			t.Errorf("the page contains %q: it must not fetch or run anything", bad)
		}
	}
	shot := filepath.Join(dir, "report.png")
	if a := os.Getenv("TWISTBENCH_ARTIFACTS"); a != "" {
		if err := os.MkdirAll(a, 0o755); err != nil {
			t.Fatal(err)
		}
		shot = filepath.Join(a, "report.png")
	}
	dom, console := load(t, chrome, page, shot)
	if len(console) > 0 {
		t.Errorf("console messages while loading the report:\n%s", strings.Join(console, "\n"))
	}
	for _, id := range []string{`id="verdicts"`, `id="matrix-table-reactor"`, `id="environment"`, `id="compare"`, `id="geomeans"`} {
		if !strings.Contains(dom, id) {
			t.Errorf("rendered DOM lacks %s", id)
		}
	}
	for _, c := range r.Charts {
		i := strings.Index(dom, `id="`+c.ID+`"`)
		if i < 0 || !strings.Contains(dom[i:min(len(dom), i+400)], "<svg") {
			t.Errorf("chart %s is missing or has no <svg> in the rendered DOM", c.ID)
		}
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	colours := map[uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[r>>12<<8|g>>12<<4|bl>>12] = true
		}
	}
	if len(colours) < 8 {
		t.Errorf("screenshot has %d colours: the page rendered blank", len(colours))
	}
	t.Logf("screenshot: %s (%dx%d)", shot, b.Dx(), b.Dy())
}

// TestBrowserCatchesConsoleErrors proves the console check can fail: a page
// that logs an error must be reported.
func TestBrowserCatchesConsoleErrors(t *testing.T) {
	chrome := browser(t)
	page := filepath.Join(t.TempDir(), "bad.html")
	if err := os.WriteFile(page, []byte(`<!DOCTYPE html><html><body><script>console.error("planted")</script></body></html>`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, console := load(t, chrome, page, "")
	if len(console) == 0 || !strings.Contains(strings.Join(console, "\n"), "planted") {
		t.Errorf("a planted console.error was not seen; console lines: %q", console)
	}
}
