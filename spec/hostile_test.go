package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/storepack/storepack/internal/bounded"
)

// TestHostileSpecFiles: a *.hcl that is a FIFO, a link to a device or
// larger than bounded.SpecFile is reported, not read forever; control
// characters in a quoted spec line are printed escaped.
func TestHostileSpecFiles(t *testing.T) {
	for _, tt := range []struct {
		name  string
		make  func(t *testing.T, p string)
		want  []string
		avoid string
	}{
		{"fifo", func(t *testing.T, p string) {
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"Cannot read a spec file", "not a regular file (a FIFO)"}, ""},
		{"device", func(t *testing.T, p string) { os.Symlink("/dev/zero", p) },
			[]string{"not a regular file (a character device)"}, ""},
		{"too large", func(t *testing.T, p string) {
			os.WriteFile(p, bytes.Repeat([]byte("#\n"), bounded.SpecFile/2+1), 0o644)
		}, []string{"more than 16777216", "too large"}, ""},
		{"escape in a quoted line", func(t *testing.T, p string) {
			os.WriteFile(p, []byte("export \"x\" {\n  format = \"tarball\" \x1b[2J\x1b]0;pwned\x07\n}\n"), 0o644)
		}, []string{`\x1b[2J\x1b]0;pwned\a`}, "\x1b[2J"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.make(t, filepath.Join(dir, "spec.hcl"))
			parser := hclparse.NewParser()
			_, diags := Load(LoadOptions{Dir: dir, Parser: parser})
			if !diags.HasErrors() {
				t.Fatal("loaded")
			}
			var buf bytes.Buffer
			WriteDiagnostics(&buf, parser.Files(), diags, false)
			out := buf.String()
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("diagnostics lack %q:\n%s", w, out)
				}
			}
			if tt.avoid != "" && strings.Contains(out, tt.avoid) {
				t.Errorf("diagnostics hold %q raw:\n%s", tt.avoid, out)
			}
		})
	}
}
