package spec

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2/hclparse"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/good and testdata/broken")

// testdataPlaceholder replaces the absolute path of testdata in goldens,
// so that they hold no machine-specific path.
const testdataPlaceholder = "$TESTDATA"

// caseOptions are a test case's options.json: what the command line and
// environment would give.
type caseOptions struct {
	Vars   map[string]string `json:"vars"`
	Env    map[string]string `json:"env"`
	System string            `json:"system"`
}

// testEnv is the environment of test cases: only NIX_STORE_DIR, pointing
// at the fake store in testdata, plus what a case adds.
func testEnv(t *testing.T, extra map[string]string) func(string) (string, bool) {
	t.Helper()
	storeDir, err := filepath.Abs("testdata/store")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"NIX_STORE_DIR": storeDir}
	for k, v := range extra {
		env[k] = v
	}
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}

// loadCase loads the spec in dir with its options.json, returning the
// spec and the diagnostics as users would see them.
func loadCase(t *testing.T, dir string) (*Spec, string) {
	t.Helper()
	var co caseOptions
	if b, err := os.ReadFile(filepath.Join(dir, "options.json")); err == nil {
		if err := json.Unmarshal(b, &co); err != nil {
			t.Fatalf("%s/options.json: %v", dir, err)
		}
	}
	if co.System == "" {
		co.System = "x86_64-linux"
	}
	parser := hclparse.NewParser()
	sp, diags := Load(LoadOptions{Dir: dir, Vars: co.Vars, Env: testEnv(t, co.Env), System: co.System, Parser: parser})
	return sp, scrub(t, FormatDiagnostics(parser.Files(), diags))
}

// scrub replaces the absolute path of testdata with the placeholder.
func scrub(t *testing.T, s string) string {
	t.Helper()
	abs, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(s, abs, testdataPlaceholder)
}

// golden compares got with the golden file path, or rewrites it with
// -update. A missing golden with empty got is fine: no file is written.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if got == "" {
			if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			return
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil && !(os.IsNotExist(err) && got == "") {
		t.Fatalf("%v (run go test ./spec/ -update to write it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

// specJSON is sp as indented JSON, each hcl.Range written compactly as
// "file:line:column-line:column" (or "" when unset).
func specJSON(t *testing.T, sp *Spec) string {
	t.Helper()
	b, err := json.Marshal(sp)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	b, err = json.MarshalIndent(compactRanges(v), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

func compactRanges(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 3 && v["Filename"] != nil && v["Start"] != nil && v["End"] != nil {
			f, _ := v["Filename"].(string)
			if f == "" {
				return ""
			}
			s, _ := v["Start"].(map[string]any)
			e, _ := v["End"].(map[string]any)
			return fmt.Sprintf("%s:%v:%v-%v:%v", f, s["Line"], s["Column"], e["Line"], e["Column"])
		}
		for k, x := range v {
			v[k] = compactRanges(x)
		}
	case []any:
		for i, x := range v {
			v[i] = compactRanges(x)
		}
	}
	return v
}

func caseDirs(t *testing.T, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	if len(dirs) == 0 {
		t.Fatalf("no cases in %s", root)
	}
	return dirs
}

// TestGoodSpecs loads each spec of testdata/good and compares it, as
// JSON, with its spec.golden.json; warnings go to diagnostics.golden.
func TestGoodSpecs(t *testing.T) {
	for _, name := range caseDirs(t, "testdata/good") {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata/good", name)
			sp, diags := loadCase(t, dir)
			if sp == nil {
				t.Fatalf("Load failed:\n%s", diags)
			}
			golden(t, filepath.Join(dir, "spec.golden.json"), scrub(t, specJSON(t, sp)))
			golden(t, filepath.Join(dir, "diagnostics.golden"), diags)
		})
	}
}

// TestBrokenSpecs loads each spec of testdata/broken and compares the
// diagnostics, as users see them, with its diagnostics.golden.
func TestBrokenSpecs(t *testing.T) {
	for _, name := range caseDirs(t, "testdata/broken") {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata/broken", name)
			sp, diags := loadCase(t, dir)
			if sp != nil {
				t.Errorf("Load succeeded; want errors")
			}
			if !strings.Contains(diags, "Error: ") {
				t.Errorf("no error in the diagnostics:\n%s", diags)
			}
			golden(t, filepath.Join(dir, "diagnostics.golden"), diags)
		})
	}
}

// TestGoldenStable checks that loading twice gives the same bytes.
func TestGoldenStable(t *testing.T) {
	for _, root := range []string{"testdata/good", "testdata/broken"} {
		for _, name := range caseDirs(t, root) {
			dir := filepath.Join(root, name)
			sp1, d1 := loadCase(t, dir)
			sp2, d2 := loadCase(t, dir)
			j1, _ := json.Marshal(sp1)
			j2, _ := json.Marshal(sp2)
			if !bytes.Equal(j1, j2) || d1 != d2 {
				t.Errorf("%s: two loads differ", dir)
			}
		}
	}
}
