package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storepack/storepack/internal/nixtest"
	"github.com/storepack/storepack/internal/oracle"
)

// TestScaleFixture: a small build of the scale benchmark's closure
// (scale.nix: a chain and a tree of references): the bundle is nix-store
// --export's bytes, and the docker image spreads the closure over
// at most max_layers layers as skopeo reads them.
func TestScaleFixture(t *testing.T) {
	oracle.Require(t, "nix-build")
	oracle.Require(t, "skopeo")
	s, err := nixtest.BuildScale(60, 20, 2000, "storepack-scale-test")
	if err != nil {
		t.Fatal(err)
	}
	c := &nixtest.Closure{Layout: nixtest.NixLayout}
	paths := c.Lines(t, "nix-store", "-qR", s.Root)
	if len(paths) != 60 {
		t.Fatalf("the closure has %d items, want 60", len(paths))
	}
	dir := t.TempDir()
	spec := `store {
  dir = "/nix/store"
}

export "bundle" {
  format  = "nar"
  paths   = ["` + s.Root + `"]
  systems = ["x86_64-linux"]
}

export "image" {
  format     = "docker"
  paths      = ["` + s.Root + `"]
  systems    = ["x86_64-linux"]
  tag        = "scale:1"
  max_layers = 40
}
`
	if err := os.WriteFile(filepath.Join(dir, "storepack.hcl"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	ok(t, nil, "export", "-q", "-C", dir, "--out", out)
	want := c.Output(t, "nix-store", append([]string{"--export"}, paths...)...)
	got, err := os.ReadFile(filepath.Join(out, "bundle.nar"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the bundle (%d bytes) differs from nix-store --export's (%d)", len(got), len(want))
	}
	var info struct{ Layers []string }
	if err := json.Unmarshal([]byte(oracleOutput(t, "skopeo", "inspect", "docker-archive:"+filepath.Join(out, "image.tar"))), &info); err != nil {
		t.Fatal(err)
	}
	// 39 item layers: the root, 19 popular items, and 19 groups for the
	// other 40 items (a group no item hashes to has no layer).
	if n := len(info.Layers); n > 40 || n < 22 {
		t.Errorf("the image has %d layers, want 22 to max_layers = 40", n)
	}
	plan := string(ok(t, nil, "plan", "-C", dir))
	if n := strings.Count(plan, `"nar_hash"`); n < 60 {
		t.Errorf("the plan lists %d NAR hashes, want the 60 items at least", n)
	}
}
