package image

import (
	"encoding/json"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/internal/fixture"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
)

// TestSet checks what every image output reads off a Set: for one
// system, the manifest is the root and there is no index; for several,
// the index lists each manifest with its platform, in system order, and
// is the root, tagged with the export's index tag, and the last subject.
func TestSet(t *testing.T) {
	f := fixture.Write(t, "/gnu/store", "", fixture.Hello())
	for _, systems := range [][]string{{"x86_64-linux"}, {"x86_64-linux", "aarch64-linux"}} {
		t.Run(systems[len(systems)-1], func(t *testing.T) {
			se := &spec.Export{Name: "hello", Format: fixture.ImageFormat}
			e := &plan.Export{Name: se.Name, Format: se.Format}
			for _, s := range systems {
				sys := f.System(t, s, se, "hello-2.12")
				if len(systems) > 1 { // as gen tags each system's image
					sys.Image.Tag = "example.org/hello:1-" + sys.Image.Platform.TagSuffix()
				}
				e.Systems = append(e.Systems, *sys)
			}
			blobs := map[string]Blob{}
			for _, sys := range e.Systems {
				for i, b := range fakeBlobs(sys.Image) {
					blobs[sys.Image.Layers[i].ID] = b
				}
			}
			s, err := Images(e, blobs)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Images) != len(systems) {
				t.Fatalf("%d images for %d systems", len(s.Images), len(systems))
			}
			if got := s.Blobs(); len(got) != len(blobs) {
				t.Errorf("Blobs gives %d layers, want %d", len(got), len(blobs))
			}
			root, named := s.Root(), s.Named()
			if len(systems) == 1 {
				if s.Index != nil || root.Digest != s.Images[0].ManifestDigest || root.MediaType != ocispec.MediaTypeImageManifest {
					t.Errorf("one system: root %+v, index %q; want the manifest %s and no index", root, s.Index, s.Images[0].ManifestDigest)
				}
				if len(named) != 1 || named[0].Digest != root.Digest || named[0].Tag != s.Images[0].Plan.Tag {
					t.Errorf("one system: named %+v", named)
				}
				return
			}
			tag, err := e.IndexTag()
			if err != nil {
				t.Fatal(err)
			}
			if root.MediaType != ocispec.MediaTypeImageIndex || root.Digest != digest.FromBytes(s.Index) || root.Size != int64(len(s.Index)) || root.Annotations[ocispec.AnnotationRefName] != tag {
				t.Errorf("root %+v, want the index tagged %s", root, tag)
			}
			var idx ocispec.Index
			if err := json.Unmarshal(s.Index, &idx); err != nil {
				t.Fatal(err)
			}
			if len(idx.Manifests) != len(systems) || idx.Annotations[ocispec.AnnotationRefName] != tag {
				t.Fatalf("index %s", s.Index)
			}
			for i, m := range idx.Manifests {
				if m.Digest != s.Images[i].ManifestDigest || m.Platform == nil || m.Platform.Architecture != s.Images[i].Plan.Platform.Architecture {
					t.Errorf("index manifest %d is %+v, want %s", i, m, s.Images[i].ManifestDigest)
				}
			}
			if s.Manifests()[1].Digest != s.Images[1].ManifestDigest {
				t.Errorf("Manifests out of system order")
			}
			if len(named) != len(systems)+1 || named[len(named)-1] != (Named{tag, root.Digest}) {
				t.Errorf("named %+v, want the manifests then the index", named)
			}
		})
	}
}
