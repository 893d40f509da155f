package reports

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// WriteDir writes dir/index.html and dir/summary.md, creating dir. Each file
// is rendered in memory first, so a failure leaves no half-written page.
func WriteDir(dir string, r *Report) error {
	var html, md bytes.Buffer
	if err := WriteHTML(&html, r); err != nil {
		return fmt.Errorf("rendering index.html: %w", err)
	}
	if err := WriteMarkdown(&md, r); err != nil {
		return fmt.Errorf("rendering summary.md: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), html.Bytes(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "summary.md"), md.Bytes(), 0o644)
}
