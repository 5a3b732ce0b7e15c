package export

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/fixture"
	"github.com/storepack/storepack/internal/layercache"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
)

// lyingLayout copies gen's test layout and gives its amd64 config a
// first diff id that is not its first layer's, every digest up to
// index.json made to hold again.
func lyingLayout(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := "../gen/testdata/base-layout"
	blobs := filepath.Join(dir, "blobs", "sha256")
	os.MkdirAll(blobs, 0o755)
	for _, f := range []string{"index.json", "oci-layout"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	ents, _ := os.ReadDir(filepath.Join(src, "blobs", "sha256"))
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(src, "blobs", "sha256", e.Name()))
		os.WriteFile(filepath.Join(blobs, e.Name()), b, 0o644)
	}
	// Replace old by a blob of same length, and every blob naming it.
	var replace func(old string, content []byte)
	replace = func(old string, content []byte) {
		sum := sha256.Sum256(content)
		nw := hex.EncodeToString(sum[:])
		os.WriteFile(filepath.Join(blobs, nw), content, 0o644)
		ents, _ := os.ReadDir(blobs)
		for _, e := range ents {
			b, _ := os.ReadFile(filepath.Join(blobs, e.Name()))
			if e.Name() != nw && bytes.Contains(b, []byte(old)) {
				replace(e.Name(), bytes.ReplaceAll(b, []byte(old), []byte(nw)))
			}
		}
		idx, _ := os.ReadFile(filepath.Join(dir, "index.json"))
		os.WriteFile(filepath.Join(dir, "index.json"), bytes.ReplaceAll(idx, []byte(old), []byte(nw)), 0o644)
	}
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(blobs, e.Name()))
		if bytes.Contains(b, []byte(`"architecture":"amd64","os":"linux","config"`)) {
			i := bytes.Index(b, []byte(`"diff_ids":["sha256:`)) + len(`"diff_ids":["sha256:`)
			lie := bytes.Clone(b)
			copy(lie[i:], strings.Repeat("0", 64))
			replace(e.Name(), lie)
			return dir
		}
	}
	t.Fatal("no amd64 config in the test layout")
	return ""
}

// TestBaseDiffIDsChecked: an image export built on a base whose config's
// diff ids are not its layers' is refused, by the docker and the OCI
// writers alike (base.Uncompressed), with or without a layer cache, and
// leaves nothing in the output folder.
func TestBaseDiffIDsChecked(t *testing.T) {
	ref := "oci:" + lyingLayout(t) + ":base:1"
	items := fixture.Write(t, "/gnu/store", "", []fixture.Item{{Name: "greeting", Files: map[string]string{"msg": "hello\n"}}})
	for _, f := range []string{"oci", "docker"} {
		for _, cached := range []bool{false, true} {
			e := &spec.Export{Name: "derived", Format: format.Format(f), Symlinks: map[string]string{},
				Image: spec.Image{Tag: "derived:1", Base: ref}}
			out := map[string]string{"oci": "layout", "docker": "derived.tar"}[f]
			ge := &plan.Export{Name: e.Name, Format: e.Format, Output: out}
			ge.Systems = append(ge.Systems, *items.System(t, "x86_64-linux", e, "greeting"))
			var o Options
			if cached {
				c, err := layercache.Open(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				o.Cache = c
			}
			dir := t.TempDir()
			_, err := writeExport(&plan.Plan{}, ge, dir, o)
			if err == nil || !strings.Contains(err.Error(), "but the base's config gives it the diff id sha256:0000") || !strings.Contains(err.Error(), ref) {
				t.Errorf("%s (cache %v): %v, want the diff id refused, naming the base", f, cached, err)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("%s (cache %v): left %v in the output folder", f, cached, ents)
			}
		}
	}
}
