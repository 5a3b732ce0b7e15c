package export

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/export/image"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/plan"
)

// describedImage is an image as `storepack plan` prints it
// (image.Image.MarshalJSON), read back.
type describedImage struct {
	Base *struct {
		Ref    string        `json:"ref"`
		Digest digest.Digest `json:"digest"`
	} `json:"base"`
	Config         json.RawMessage    `json:"config"`
	ConfigDigest   digest.Digest      `json:"config_digest"`
	DockerManifest *image.DockerEntry `json:"docker_manifest"`
	OCIManifest    json.RawMessage    `json:"oci_manifest"`
	ManifestDigest digest.Digest      `json:"manifest_digest"`
	ManifestSize   int64              `json:"manifest_size"`
}

// describedExport is an export as `storepack plan` prints it, read back.
type describedExport struct {
	Systems []struct {
		Image *describedImage `json:"image"`
	} `json:"systems"`
	Index       json.RawMessage `json:"index"`
	IndexDigest digest.Digest   `json:"index_digest"`
	IndexSize   int64           `json:"index_size"`
}

// printed is d's first export as `storepack plan` prints it (the encoding
// of storepack.WritePlan: indented, no HTML escaping), read back.
func printed(t testing.TB, d *Description) describedExport {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		t.Fatal(err)
	}
	var v struct {
		Exports []describedExport `json:"exports"`
	}
	if err := json.Unmarshal(buf.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Exports) != 1 {
		t.Fatalf("%d exports printed, want 1", len(v.Exports))
	}
	return v.Exports[0]
}

// compact is the JSON raw without insignificant white space: the bytes a
// writer wrote, when raw is their indented print.
func compact(t testing.TB, raw json.RawMessage) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	return buf.Bytes()
}

// checkPrintedImages checks the images of ex, the print of e's
// description, against the files an image writer wrote: blobs (the blobs
// of a layout or of a docker archive's OCI part, by digest) and manifests
// (the manifests its index lists, one per system). Each printed OCI
// manifest is the blob of its digest and size, listed for its system; its
// config descriptor names the printed config, itself a blob; its layer
// descriptors name blobs of their sizes, the base's layers first (as the
// base holds them in a layout, as their uncompressed tars in a docker
// archive: docker), then the image's own with the export's media type;
// the printed base names the base's manifest for the system's platform.
func checkPrintedImages(t testing.TB, e *plan.Export, ex describedExport, blobs map[digest.Digest][]byte, manifests []ocispec.Descriptor, docker bool) {
	t.Helper()
	if len(ex.Systems) != len(e.Systems) || len(manifests) != len(e.Systems) {
		t.Fatalf("%d systems printed, %d manifests written, for %d systems", len(ex.Systems), len(manifests), len(e.Systems))
	}
	for i, s := range ex.Systems {
		name, p, img := e.Systems[i].Name, e.Systems[i].Image, s.Image
		if img == nil {
			t.Fatalf("%s: no image printed", name)
		}
		if md := manifests[i]; md.Digest != img.ManifestDigest || md.Size != img.ManifestSize || md.MediaType != ocispec.MediaTypeImageManifest {
			t.Errorf("%s: written manifest %s (%d bytes, %s), printed %s (%d bytes)", name, md.Digest, md.Size, md.MediaType, img.ManifestDigest, img.ManifestSize)
		}
		mb, ok := blobs[img.ManifestDigest]
		if got := compact(t, img.OCIManifest); !ok || !bytes.Equal(got, mb) {
			t.Errorf("%s: printed manifest\n%s\nwritten blob %s (present %v)\n%s", name, got, img.ManifestDigest, ok, mb)
		}
		if cb, ok := blobs[img.ConfigDigest]; !ok || !bytes.Equal(compact(t, img.Config), cb) {
			t.Errorf("%s: printed config differs from the written blob %s (present %v)", name, img.ConfigDigest, ok)
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(img.OCIManifest, &m); err != nil {
			t.Fatal(err)
		}
		if m.Config.Digest != img.ConfigDigest || m.Config.MediaType != ocispec.MediaTypeImageConfig || m.Config.Size != int64(len(blobs[img.ConfigDigest])) {
			t.Errorf("%s: config descriptor %+v, config %s of %d bytes", name, m.Config, img.ConfigDigest, len(blobs[img.ConfigDigest]))
		}
		var baseLayers []plan.BaseLayer
		if p.Base != nil {
			baseLayers = p.Base.Layers
		}
		if len(m.Layers) != len(baseLayers)+len(p.Layers) {
			t.Fatalf("%s: %d layers printed, want the base's %d and the image's %d", name, len(m.Layers), len(baseLayers), len(p.Layers))
		}
		own, _ := image.MediaType(p.Compression)
		for j, ld := range m.Layers {
			want := digest.Digest("")
			wantType := own
			if j < len(baseLayers) {
				want, wantType = baseLayers[j].Digest, baseLayers[j].MediaType
				if docker {
					want, wantType = baseLayers[j].DiffID, ocispec.MediaTypeImageLayer
				}
			}
			b, ok := blobs[ld.Digest]
			if !ok || int64(len(b)) != ld.Size || ld.MediaType != wantType || (want != "" && ld.Digest != want) {
				t.Errorf("%s: layer %d: printed %+v; written: present %v, %d bytes; want type %s, digest %q", name, j, ld, ok, len(b), wantType, want)
			}
		}
		switch {
		case p.Base == nil && img.Base != nil:
			t.Errorf("%s: a base printed for an image without one: %+v", name, img.Base)
		case p.Base != nil && img.Base == nil:
			t.Errorf("%s: no base printed", name)
		case p.Base != nil:
			if want := baseManifest(t, p.Base.Ref, p.Platform); img.Base.Ref != p.Base.Ref || img.Base.Digest != want {
				t.Errorf("%s: printed base %s@%s, the base's manifest for %+v is %s", name, img.Base.Ref, img.Base.Digest, p.Platform, want)
			}
		}
	}
}

// baseManifest is the digest of the manifest for platform p in the base
// ref, an oci:DIR:TAG layout, read from its files: index.json's entry
// tagged TAG, and when that is an image index, its manifest for p.
func baseManifest(t testing.TB, ref string, p plan.Platform) digest.Digest {
	t.Helper()
	dir, tag, ok := strings.Cut(strings.TrimPrefix(ref, "oci:"), ":")
	if !ok || !strings.HasPrefix(ref, "oci:") {
		t.Fatalf("base %s: want oci:DIR:TAG", ref)
	}
	files := layoutFiles(t, dir)
	var idx ocispec.Index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	for _, d := range idx.Manifests {
		if d.Annotations[ocispec.AnnotationRefName] != tag {
			continue
		}
		if d.MediaType == ocispec.MediaTypeImageManifest {
			return d.Digest
		}
		var sub ocispec.Index
		if err := json.Unmarshal(files[image.BlobPath(d.Digest)], &sub); err != nil {
			t.Fatal(err)
		}
		for _, m := range sub.Manifests {
			if m.Platform != nil && m.Platform.OS == p.OS && m.Platform.Architecture == p.Architecture && m.Platform.Variant == p.Variant {
				return m.Digest
			}
		}
	}
	t.Fatalf("base %s: no manifest for %+v", ref, p)
	return ""
}

// layoutBlobs are the blobs of a layout's files (layoutFiles) by digest.
func layoutBlobs(files map[string][]byte) map[digest.Digest][]byte {
	blobs := map[digest.Digest][]byte{}
	for name, b := range files {
		if hex, ok := strings.CutPrefix(name, "blobs/sha256/"); ok {
			blobs[digest.NewDigestFromEncoded(digest.SHA256, hex)] = b
		}
	}
	return blobs
}

// testdataBase is gen's base fixture: an OCI layout of tzdata for
// x86_64-linux and aarch64-linux, tag base:1, whose layers are
// uncompressed.
func testdataBase(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "gen", "testdata", "base-layout"))
	if err != nil {
		t.Fatal(err)
	}
	return "oci:" + dir + ":base:1"
}

// gzipBase writes a base whose layers are gzip-compressed: the OCI layout
// of the hello fixture's images for x86_64-linux and armhf-linux
// (dockerCases[3]), tag hello:1.0.
func gzipBase(t testing.TB) string {
	t.Helper()
	e := ociCase{dockerCases[3], format.Gzip}.build(t, "")
	dir, _ := writeLayout(t, e)
	tag, err := e.IndexTag()
	if err != nil {
		t.Fatal(err)
	}
	return "oci:" + dir + ":" + tag
}

// onBase is c with its images built on the base ref.
func onBase(c dockerCase, ref string) dockerCase {
	c.name += "-on-base"
	c.export.Image.Base = ref
	return c
}

// describeCases are the image exports the describe tests write: one
// system and several, without a base, on a base of uncompressed layers
// and on one of gzip layers (multi-platform).
func describeCases(t testing.TB) []dockerCase {
	gz := gzipBase(t)
	return []dockerCase{
		dockerCases[1],
		dockerCases[3],
		onBase(dockerCases[0], testdataBase(t)),
		onBase(dockerCases[3], gz),
	}
}
