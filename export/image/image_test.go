package image

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/fixture"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
)

// helloExport plans a docker export of the hello fixture for one system,
// with the settings of e.
func helloExport(t *testing.T, e *spec.Export) *plan.Export {
	t.Helper()
	f := fixture.Write(t, "/gnu/store", "", fixture.Hello())
	e.Name, e.Format = "hello", fixture.ImageFormat
	sys := f.System(t, "x86_64-linux", e, "hello-2.12")
	return &plan.Export{Name: e.Name, Format: e.Format, Systems: []plan.System{*sys}}
}

// fakeBlobs are made-up blobs, one per layer of p.
func fakeBlobs(p *plan.Image) []Blob {
	var out []Blob
	for i := range p.Layers {
		d := digest.FromString(fmt.Sprint(i))
		out = append(out, Blob{DiffID: d, Size: int64(1024 * (i + 1)), Digest: d, BlobSize: int64(1024 * (i + 1))})
	}
	return out
}

// TestConfig checks the config an image's settings encode to: the exact
// JSON, the platform, the rootfs and one history entry per layer.
func TestConfig(t *testing.T) {
	e := helloExport(t, &spec.Export{
		Entrypoint: []string{"/entry"},
		Cmd:        []string{"--help"},
		Env:        map[string]string{"PATH": "/bin", "LANG": "C.UTF-8", "A": "x=y"},
		Created:    "2024-05-06T07:08:09+02:00",
		Image:      spec.Image{WorkingDir: "/work", User: "1000:1000", Labels: map[string]string{"org.opencontainers.image.source": "https://example.org"}, ExposedPorts: []string{"8080/tcp", "53/udp", "9000/tcp"}, Volumes: []string{"/data"}, MaxLayers: 3},
	})
	p := e.Systems[0].Image
	img, err := newImage(p, fakeBlobs(p), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(img.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(cfg.Config)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"User":"1000:1000","ExposedPorts":{"53/udp":{},"8080/tcp":{},"9000/tcp":{}},` +
		`"Env":["A=x=y","LANG=C.UTF-8","PATH=/bin"],"Entrypoint":["/entry"],"Cmd":["--help"],` +
		`"Volumes":{"/data":{}},"WorkingDir":"/work","Labels":{"org.opencontainers.image.source":"https://example.org"}}`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if cfg.Architecture != "amd64" || cfg.OS != "linux" || cfg.RootFS.Type != "layers" {
		t.Errorf("platform %s/%s, rootfs %+v", cfg.Architecture, cfg.OS, cfg.RootFS)
	}
	created := time.Date(2024, 5, 6, 5, 8, 9, 0, time.UTC)
	if !cfg.Created.Equal(created) || !strings.Contains(string(img.Config), `"created":"2024-05-06T05:08:09Z"`) {
		t.Errorf("created %v in %s, want %v in UTC", cfg.Created, img.Config, created)
	}
	if len(cfg.History) != len(p.Layers) {
		t.Fatalf("%d history entries for %d layers", len(cfg.History), len(p.Layers))
	}
	for i, h := range cfg.History {
		if !h.Created.Equal(created) || h.CreatedBy != p.Layers[i].CreatedBy || h.Comment != p.Layers[i].Comment {
			t.Errorf("history %d: %+v, layer %+v", i, h, p.Layers[i])
		}
	}
	if bytes.Contains(img.Config, []byte("\n")) || bytes.Contains(img.Config, []byte(`\u003c`)) {
		t.Errorf("config not compact JSON: %s", img.Config)
	}
}

// TestNew checks that an image's digests follow from its blobs: the
// config's diff ids, the config and manifest digests, the docker archive's
// entry; and that a wrong number of blobs is refused.
func TestNew(t *testing.T) {
	e := helloExport(t, &spec.Export{Image: spec.Image{Tag: "hello:1.0"}})
	p := e.Systems[0].Image
	if _, err := newImage(p, fakeBlobs(p)[1:], nil, false); err == nil {
		t.Error("New with too few blobs: no error")
	}
	blobs := fakeBlobs(p)
	img, err := newImage(p, blobs, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if img.ConfigDigest != digest.FromBytes(img.Config) || img.ManifestDigest != digest.FromBytes(img.Manifest) {
		t.Errorf("digests %s %s do not hash the bytes", img.ConfigDigest, img.ManifestDigest)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(img.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(img.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	if m.Config.Digest != img.ConfigDigest || m.Config.Size != int64(len(img.Config)) || len(m.Layers) != len(blobs) {
		t.Errorf("manifest %+v does not describe the config and %d layers", m, len(blobs))
	}
	for i, b := range blobs {
		if cfg.RootFS.DiffIDs[i] != b.DiffID || m.Layers[i].Digest != b.Digest || m.Layers[i].Size != b.BlobSize || m.Layers[i].MediaType != ocispec.MediaTypeImageLayer {
			t.Errorf("layer %d: diff id %s, manifest %+v; blob %+v", i, cfg.RootFS.DiffIDs[i], m.Layers[i], b)
		}
	}
	entry := img.DockerEntry()
	if entry.Config != img.ConfigDigest.Encoded()+".json" || !cmp.Equal(entry.RepoTags, []string{"hello:1.0"}) || len(entry.Layers) != len(p.Layers) {
		t.Errorf("docker entry %+v", entry)
	}
	for i, l := range entry.Layers {
		if l != p.Layers[i].ID+"/layer.tar" {
			t.Errorf("docker entry layer %d: %s, want %s/layer.tar", i, l, p.Layers[i].ID)
		}
	}
	d := img.Descriptor()
	if d.Digest != img.ManifestDigest || d.Platform.Architecture != "amd64" || d.Annotations[ocispec.AnnotationRefName] != "hello:1.0" {
		t.Errorf("descriptor %+v", d)
	}
	if name, tag, err := img.NameTag(); name != "hello" || tag != "1.0" || err != nil {
		t.Errorf("NameTag = %q, %q, %v", name, tag, err)
	}
}

// TestLayerDigests writes every layer of an image: the diff id and length
// reported are those of the bytes, the length the one Size computes, and
// a compressed blob decompresses to the same tar.
func TestLayerDigests(t *testing.T) {
	e := helloExport(t, &spec.Export{Image: spec.Image{MaxLayers: 3}})
	for _, l := range Layers(e) {
		var buf bytes.Buffer
		id, n, err := l.WriteTar(&buf, nil)
		if err != nil {
			t.Fatal(err)
		}
		if id != digest.FromBytes(buf.Bytes()) || n != int64(buf.Len()) {
			t.Errorf("layer %s: reported %s %d, the bytes are %s %d", l.Plan.ID, id, n, digest.FromBytes(buf.Bytes()), buf.Len())
		}
		if size, err := l.Size(); err != nil || size != n {
			t.Errorf("layer %s: Size = %d, %v; WriteTar wrote %d", l.Plan.ID, size, err, n)
		}
		var gz bytes.Buffer
		b, err := l.WriteBlob(&gz, format.Gzip, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b.DiffID != id || b.Size != n || b.Digest != digest.FromBytes(gz.Bytes()) || b.BlobSize != int64(gz.Len()) || b.Digest == id {
			t.Errorf("layer %s: gzip blob %+v; tar %s %d, blob %s %d", l.Plan.ID, b, id, n, digest.FromBytes(gz.Bytes()), gz.Len())
		}
	}
}

// TestCheck: the images of an export must all be planned and agree on
// their mtime and compression.
func TestCheck(t *testing.T) {
	e := helloExport(t, &spec.Export{})
	if mtime, c, err := Check(e); err != nil || mtime != 1 || c != format.None {
		t.Errorf("Check = %d, %q, %v; want 1, none", mtime, c, err)
	}
	two := *e
	two.Systems = []plan.System{e.Systems[0], e.Systems[0]}
	later := *e.Systems[0].Image
	later.Created = later.Created.Add(time.Hour)
	two.Systems[1].Image = &later
	if _, _, err := Check(&two); err == nil || !strings.Contains(err.Error(), "creation times") {
		t.Errorf("different creation times: %v", err)
	}
	two.Systems[1].Image = nil
	if _, _, err := Check(&two); err == nil || !strings.Contains(err.Error(), "no image plan") {
		t.Errorf("a system without an image: %v", err)
	}
	if _, _, err := Check(&plan.Export{Name: "x"}); err == nil {
		t.Error("an export without systems: no error")
	}
}

// TestIsOCIArchive: an oci output ending with ".tar" is an archive, any
// other a layout folder.
func TestIsOCIArchive(t *testing.T) {
	for output, want := range map[string]bool{"app.tar": true, "out/app.tar": true, "app": false, "app.tar.gz": false, "app-tar": false, "app.tar/": false} {
		if got := IsOCIArchive(output); got != want {
			t.Errorf("IsOCIArchive(%q) = %v, want %v", output, got, want)
		}
	}
}
