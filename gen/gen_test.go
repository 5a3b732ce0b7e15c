package gen

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files from the code under test")

// loadSpec loads a testdata spec with a fixed host system and an empty
// environment, so that plans do not depend on the machine.
func loadSpec(t *testing.T, dir string, env map[string]string) *spec.Spec {
	t.Helper()
	parser := hclparse.NewParser()
	sp, diags := spec.Load(spec.LoadOptions{
		Dir:    dir,
		System: "x86_64-linux",
		Parser: parser,
		Env:    func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	})
	if diags.HasErrors() {
		t.Fatalf("%s: %s", dir, spec.FormatDiagnostics(parser.Files(), diags))
	}
	return sp
}

func planJSON(t *testing.T, p *plan.Plan) string {
	t.Helper()
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// TestGoldenPlans compares the plan of each spec in testdata/specs with its
// plan.golden.json, reporting (-want +got); -update rewrites them.
func TestGoldenPlans(t *testing.T) {
	dirs, err := filepath.Glob("testdata/specs/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no testdata specs: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			plan, err := Generate(context.Background(), loadSpec(t, dir, nil))
			if err != nil {
				t.Fatal(err)
			}
			// Absolute paths (a sign_key's) as $TESTDATA/...: the golden
			// files hold no path of this machine.
			abs, err := filepath.Abs("testdata")
			if err != nil {
				t.Fatal(err)
			}
			got := strings.ReplaceAll(planJSON(t, plan), abs, "$TESTDATA")
			golden := filepath.Join(dir, "plan.golden.json")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./gen -update)", err)
			}
			if d := cmp.Diff(string(want), got); d != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", golden, d)
			}
		})
	}
}

// TestPlanIndependentOfWorkingDir: the same spec loaded from another
// working directory gives the same plan.
func TestPlanIndependentOfWorkingDir(t *testing.T) {
	abs, err := filepath.Abs("testdata/specs/source")
	if err != nil {
		t.Fatal(err)
	}
	want := planJSON(t, mustGenerate(t, loadSpec(t, "testdata/specs/source", nil)))
	t.Chdir(t.TempDir())
	got := planJSON(t, mustGenerate(t, loadSpec(t, abs, nil)))
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("plan differs by working directory (-want +got):\n%s", d)
	}
}

// TestSourceReferencesJoinClosure: a source that names a store item pulls
// that item's whole closure in, dependencies first.
func TestSourceReferencesJoinClosure(t *testing.T) {
	plan := mustGenerate(t, loadSpec(t, "testdata/specs/source", nil))
	var names []string
	for _, it := range plan.Exports[0].Systems[0].Closure {
		names = append(names, it.Path.Name())
	}
	want := "glibc-2.39 tzdata greeting hello-2.12 app-1.0"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("closure = %s, want %s", got, want)
	}
	last := plan.Exports[0].Systems[0].Closure[len(names)-1]
	if last.Source != "app" || !strings.HasSuffix(last.FSPath, filepath.Join("testdata", "specs", "source", "app")) {
		t.Errorf("source item = %+v, want source app read from testdata/specs/source/app", last)
	}
}

// TestMultiSystemOutputs: a nar export with several systems writes one
// file per system.
func TestMultiSystemOutputs(t *testing.T) {
	plan := mustGenerate(t, loadSpec(t, "testdata/specs/multi", nil))
	var got []string
	for _, s := range plan.Exports[0].Systems {
		got = append(got, s.Output)
	}
	if d := cmp.Diff([]string{"multi-x86_64-linux.nar", "multi-aarch64-linux.nar"}, got); d != "" {
		t.Errorf("outputs (-want +got):\n%s", d)
	}
}

// TestMissingItem: an item that vanished after the spec was loaded is an
// error naming it.
func TestMissingItem(t *testing.T) {
	sp := loadSpec(t, "testdata/specs/nar", nil)
	sp.Exports[0].Systems[0].Paths[0] += "-gone"
	_, err := Generate(context.Background(), sp)
	if err == nil || !strings.Contains(err.Error(), "hello-2.12-gone") {
		t.Fatalf("err = %v, want one naming the missing item", err)
	}
}

func mustGenerate(t *testing.T, sp *spec.Spec) *plan.Plan {
	t.Helper()
	p, err := Generate(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSystemOutput(t *testing.T) {
	tests := []struct {
		ext     string
		output  string
		systems int
		want    string
	}{
		{".nar", "hello.nar", 1, "hello.nar"},
		{".nar", "hello.nar", 2, "hello-aarch64-linux.nar"},
		{".nar", "dir/bundle", 2, "dir/bundle-aarch64-linux"},
		{".nar", "hello.tar.gz", 2, "hello.tar-aarch64-linux.gz"}, // not the format's extension: the last one
		{format.Format("tarball").Ext(format.Gzip), "hello.tar.gz", 2, "hello-aarch64-linux.tar.gz"},
		{format.Format("tarball").Ext(format.None), "hello.tar", 2, "hello-aarch64-linux.tar"},
	}
	for _, tt := range tests {
		if got := systemOutput(tt.ext, tt.output, "aarch64-linux", tt.systems); got != tt.want {
			t.Errorf("systemOutput(%q, %d systems) = %q, want %q", tt.output, tt.systems, got, tt.want)
		}
	}
}
