package storepack

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storepack/storepack/export"
	"github.com/storepack/storepack/plan"
)

// writeSpec writes a spec folder whose source "app" (a script naming a
// store item of gen's testdata chroot store) is exported as a nar bundle,
// next to a second, store-only export.
func writeSpec(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("gen/testdata/root")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	spec := `store {
  dir  = "/gnu/store"
  root = "` + root + `"
  db   = "none"
}

source "app" {
  path = "app"
}

export "app" {
  format  = "nar"
  paths   = [source.app.store_path]
  systems = ["x86_64-linux"]
}

export "tz" {
  format  = "nar"
  paths   = ["/gnu/store/9zbcl14iyclshi05nwjk9z9cbvllybap-tzdata"]
  systems = ["x86_64-linux"]
}
`
	must(t, os.WriteFile(filepath.Join(dir, "storepack.hcl"), []byte(spec), 0o644))
	must(t, os.MkdirAll(filepath.Join(dir, "app"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "app", "run.sh"), []byte("exec /gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12/bin/hello\n"), 0o755))
	return dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestLockVerify(t *testing.T) {
	dir := writeSpec(t)
	o := Options{SpecDir: dir, OutDir: filepath.Join(dir, "out")}
	if _, err := WriteLock(o); err != nil {
		t.Fatal(err)
	}
	if err := Verify(o); err != nil {
		t.Fatalf("verify of an unchanged tree: %v", err)
	}
	// Only a verify of the named export when one is selected.
	if err := Verify(Options{SpecDir: dir, Exports: []string{"tz"}}); err != nil {
		t.Fatalf("verify of export tz: %v", err)
	}
	// A change to the source changes the app bundle's bytes.
	must(t, os.WriteFile(filepath.Join(dir, "app", "run.sh"), []byte("exec true\n"), 0o755))
	err := Verify(o)
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("verify after a change: err = %v, want a VerifyError", err)
	}
	if strings.Join(ve.Exports, ",") != "app" {
		t.Errorf("differing exports = %v, want [app]", ve.Exports)
	}
	if !strings.Contains(ve.Diff, "-") || !strings.Contains(ve.Diff, "+") || !strings.Contains(err.Error(), "(-want +got)") {
		t.Errorf("error has no go-cmp diff:\n%v", err)
	}
	if err := Verify(Options{SpecDir: dir, Exports: []string{"tz"}}); err != nil {
		t.Errorf("export tz did not change, but verify says: %v", err)
	}
}

func TestSelectExports(t *testing.T) {
	dir := writeSpec(t)
	out := filepath.Join(dir, "out")
	files, err := Export(Options{SpecDir: dir, OutDir: out, Exports: []string{"tz"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Path != "tz.nar" {
		t.Fatalf("files = %+v, want only tz.nar", files)
	}
	if _, err := os.Stat(filepath.Join(out, "app.nar")); !os.IsNotExist(err) {
		t.Errorf("app.nar written though only tz was selected (stat: %v)", err)
	}
	_, err = Export(Options{SpecDir: dir, OutDir: out, Exports: []string{"nope"}})
	if err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown export: err = %v, want one naming it", err)
	}
}

// TestFailedExportKeepsPreviousOutput: an export that fails half-way (a
// source changed between plan and write) leaves the previous output as it
// was and no temporary file.
func TestFailedExportKeepsPreviousOutput(t *testing.T) {
	dir := writeSpec(t)
	out := filepath.Join(dir, "out")
	o := Options{SpecDir: dir, OutDir: out, Exports: []string{"app"}}
	if _, err := Export(o); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(out, "app.nar"))
	must(t, err)

	plan, err := Plan(o)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "app", "run.sh"), []byte("exec something else entirely\n"), 0o755))
	if _, err := export.Write(plan.Plan, out, export.Options{}); err == nil {
		t.Fatal("export of a source that changed after planning succeeded")
	} else if !strings.Contains(err.Error(), "run.sh") && !strings.Contains(err.Error(), filepath.Join(dir, "app")) {
		t.Errorf("error does not name the changed source: %v", err)
	}
	after, err := os.ReadFile(filepath.Join(out, "app.nar"))
	must(t, err)
	if !bytes.Equal(before, after) {
		t.Error("the previous app.nar was changed by a failed export")
	}
	entries, err := os.ReadDir(out)
	must(t, err)
	for _, e := range entries {
		if e.Name() != "app.nar" && e.Name() != export.OutLockFile {
			t.Errorf("left behind in the output folder: %s", e.Name())
		}
	}
}

func TestSpecErrorsWriteNothing(t *testing.T) {
	dir := writeSpec(t)
	must(t, os.WriteFile(filepath.Join(dir, "broken.hcl"), []byte("export \"x\" {\n  format = \"zip\"\n}\n"), 0o644))
	var stderr bytes.Buffer
	out := filepath.Join(dir, "out")
	_, err := Export(Options{SpecDir: dir, OutDir: out, Stderr: &stderr})
	if !errors.Is(err, ErrSpec) {
		t.Fatalf("err = %v, want ErrSpec", err)
	}
	if !strings.Contains(stderr.String(), "broken.hcl:2:") {
		t.Errorf("diagnostics do not point at broken.hcl:2:\n%s", stderr.String())
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output folder created by a failed export (stat: %v)", err)
	}
}

// TestLockRecordsBase: the lock file records each system's base manifest.
func TestLockRecordsBase(t *testing.T) {
	plan := &plan.Plan{Exports: []plan.Export{{Name: "app", Format: "oci", Systems: []plan.System{
		{Name: "x86_64-linux", ClosureDigest: "sha256:aa", Image: &plan.Image{Base: &plan.Base{Ref: "r.example/busybox@sha256:bb", Digest: "sha256:cc"}}},
		{Name: "aarch64-linux", ClosureDigest: "sha256:dd", Image: &plan.Image{}},
	}}}}
	l := lockOf(plan, nil, nil, "/srv/spec")
	if s := l.Exports[0].Systems[0]; s.Base != "r.example/busybox@sha256:bb" || s.BaseDigest != "sha256:cc" {
		t.Errorf("base of the first system %q %q", s.Base, s.BaseDigest)
	}
	if got := l.Exports[0].Systems[1].Base; got != "" {
		t.Errorf("a system without a base records %q", got)
	}
}

// TestLockBase: layouts and archives are recorded relative to the spec
// folder, so that a lock holds in another checkout.
func TestLockBase(t *testing.T) {
	for _, tt := range []struct{ ref, want string }{
		{"r.example/busybox@sha256:bb", "r.example/busybox@sha256:bb"},
		{"oci:/srv/spec/bases/layout:base:1", "oci:bases/layout:base:1"},
		{"oci:/srv/spec/bases/layout", "oci:bases/layout"},
		{"oci:/srv/other/layout:1", "oci:../other/layout:1"},
		{"docker-archive:/srv/spec/busybox.tar", "docker-archive:busybox.tar"},
	} {
		if got := lockBase(tt.ref, "/srv/spec"); got != tt.want {
			t.Errorf("lockBase(%q) = %q, want %q", tt.ref, got, tt.want)
		}
	}
}
