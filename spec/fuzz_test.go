package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// FuzzLoad writes arbitrary text as a spec file and loads it: Load must
// never panic, and must return either a spec or error diagnostics, each
// with a summary and, when it has a subject, a position in a file. Inputs
// with source blocks are skipped: they hash whatever folder they name
// (the whole file system for "/"), which is slow, not wrong. Seeds are in
// testdata/fuzz/FuzzLoad.
func FuzzLoad(f *testing.F) {
	for _, dir := range []string{"testdata/good", "testdata/broken"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*", "*.hcl"))
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil && !strings.Contains(string(b), "source") {
				f.Add(string(b))
			}
		}
	}
	f.Fuzz(func(t *testing.T, text string) {
		if strings.Contains(text, "source") {
			t.Skip("source blocks read the file system")
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "fuzz.hcl"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		sp, diags := Load(LoadOptions{
			Dir:    dir,
			Env:    func(string) (string, bool) { return "", false },
			System: "x86_64-linux",
		})
		if diags.HasErrors() != (sp == nil) {
			t.Fatalf("spec %v with diagnostics %v", sp != nil, diags)
		}
		for _, d := range diags {
			if d.Summary == "" {
				t.Errorf("a diagnostic without a summary: %+v", d)
			}
			if d.Subject != nil && (d.Subject.Filename == "" || d.Subject.Start.Line < 1) {
				t.Errorf("diagnostic %q has no position: %+v", d.Summary, d.Subject)
			}
			if d.Severity != hcl.DiagError && d.Severity != hcl.DiagWarning {
				t.Errorf("diagnostic %q has severity %v", d.Summary, d.Severity)
			}
		}
	})
}
