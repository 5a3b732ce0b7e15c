package mage_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/storepack/storepack/internal/nixtest"
)

// userModule writes a throwaway module that imports this package into its
// magefile with //mage:import, as a user's repository does, with a spec
// exporting the Nix-built test closure as a nar bundle.
func userModule(t *testing.T, c *nixtest.Closure) string {
	t.Helper()
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"go.mod": "module example.com/user\n\ngo 1.26\n\n" +
			"require github.com/storepack/storepack v0.0.0-00010101000000-000000000000\n\n" +
			"replace github.com/storepack/storepack => " + repo + "\n",
		"go.sum": string(sum),
		"magefile.go": `//go:build mage

package main

import (
	//mage:import
	_ "github.com/storepack/storepack/mage"
)
`,
		"mage.go": `//go:build ignore

package main

import (
	"os"

	"github.com/magefile/mage/mage"
)

func main() { os.Exit(mage.Main()) }
`,
		"storepack.hcl": `store {
  dir = "` + c.StoreDir + `"
  db  = "` + c.DBPath + `"
}

export "closure" {
  format  = "nar"
  paths   = ["` + c.Root + `"]
  systems = ["x86_64-linux"]
}
`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, dir, nil, "go", "mod", "tidy")
	return dir
}

// goCache is Go's build cache, kept when XDG_CACHE_HOME moves the layer
// cache into the test's folder.
var goCache = func() string {
	out, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		panic(err)
	}
	return strings.TrimSpace(string(out))
}()

func run(t *testing.T, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "NIX_") || strings.HasPrefix(kv, "STOREPACK_") || strings.HasPrefix(kv, "XDG_CACHE_HOME=")
	}), append(env, "XDG_CACHE_HOME="+filepath.Join(dir, ".cache"), "GOCACHE="+goCache)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

// TestImportedTargets runs `mage export` in a user's module that imports
// this package, on a real Nix closure, and compares the bundle with
// `nix-store --export`; `mage -l` lists the targets with their docs.
func TestImportedTargets(t *testing.T) {
	c := nixtest.Build(t, nixtest.NixLayout)
	dir := userModule(t, c)

	list := string(run(t, dir, nil, "go", "run", "mage.go", "-l"))
	for _, target := range []string{"export", "plan", "lock", "verify"} {
		if !strings.Contains(list, "  "+target+" ") {
			t.Errorf("mage -l does not list %s:\n%s", target, list)
		}
	}

	run(t, dir, []string{"STOREPACK_OUT=dist"}, "go", "run", "mage.go", "export")
	got, err := os.ReadFile(filepath.Join(dir, "dist", "closure.nar"))
	if err != nil {
		t.Fatal(err)
	}
	want := c.Output(t, "nix-store", append([]string{"--export"}, c.Paths(t)...)...)
	if !bytes.Equal(got, want) {
		t.Errorf("mage export wrote %d bytes that differ from nix-store --export's %d", len(got), len(want))
	}

	plan := run(t, dir, nil, "go", "run", "mage.go", "plan")
	if !bytes.HasPrefix(plan, []byte("{\n")) || !bytes.Contains(plan, []byte(c.Root)) {
		t.Errorf("mage plan printed something other than the JSON plan:\n%s", plan)
	}
	run(t, dir, nil, "go", "run", "mage.go", "lock")
	run(t, dir, nil, "go", "run", "mage.go", "verify")
}
