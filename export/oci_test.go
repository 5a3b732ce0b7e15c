package export

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/storepack/storepack/export/image"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/fixture"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
)

// ociCase is an oci export of the hello fixture: a docker case's images
// with a layer compression.
type ociCase struct {
	dockerCase
	compression format.Compression
}

var ociCases = []ociCase{
	{dockerCases[0], "gzip"},
	{dockerCases[1], "zstd"},
	{dockerCases[2], "none"},
	{dockerCases[3], "gzip"},
}

func (c ociCase) name() string { return c.dockerCase.name + "-" + string(c.compression) }

// buildImages plans an export of format over the hello fixture written
// below root (a new temporary folder when empty).
func buildImages(t testing.TB, c dockerCase, f format.Format, compression format.Compression, root string) *plan.Export {
	t.Helper()
	st := fixture.Write(t, c.dir, root, fixture.Hello())
	e := &spec.Export{}
	*e = c.export
	e.Name, e.Format, e.Output = "hello", f, "hello"
	e.Image.Compression = compression
	e.Entrypoint = fixture.ExpandAll(e.Entrypoint, st.ByName)
	if e.Symlinks != nil {
		links := map[string]string{}
		for k, v := range e.Symlinks {
			links[k] = fixture.Expand(v, st.ByName)
		}
		e.Symlinks = links
	}
	var paths []store.Path
	for _, r := range c.roots {
		paths = append(paths, st.ByName[r])
	}
	for _, s := range c.systems {
		e.Systems = append(e.Systems, spec.System{Name: s, Paths: paths, Entrypoint: fixture.ExpandAll(c.entrypoints[s], st.ByName)})
	}
	out := &plan.Export{Name: e.Name, Format: e.Format, Output: e.Output}
	for _, s := range c.systems {
		out.Systems = append(out.Systems, *st.System(t, s, e, c.roots...))
	}
	return out
}

func (c ociCase) build(t testing.TB, root string) *plan.Export {
	return buildImages(t, c.dockerCase, format.Format("oci"), c.compression, root)
}

// writeLayout writes e as a layout into a new temporary folder and returns
// the folder and the images.
func writeLayout(t testing.TB, e *plan.Export) (string, *image.Set) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	imgs, err := writeOCILayout(dir, job{e: e})
	if err != nil {
		t.Fatal(err)
	}
	return dir, imgs
}

// layoutFiles reads every file of a layout by relative name.
func layoutFiles(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// ociSchemas compiles the image-spec JSON schemas of the image-spec module
// this one builds with, found with `go list -m`.
var ociSchemas = sync.OnceValues(func() (map[string]*jsonschema.Schema, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/opencontainers/image-spec").Output()
	if err != nil {
		return nil, fmt.Errorf("go list -m github.com/opencontainers/image-spec: %w", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "schema")
	c := jsonschema.NewCompiler()
	// The schemas name each other by relative references resolved
	// against ids under https://opencontainers.org/schema/: serve every
	// such URL from the file of the same base name.
	c.UseLoader(jsonschema.SchemeURLLoader{
		"file":  jsonschema.FileLoader{},
		"https": schemaDirLoader(dir),
	})
	schemas := map[string]*jsonschema.Schema{}
	for kind, file := range map[string]string{
		"index":    "image-index-schema.json",
		"manifest": "image-manifest-schema.json",
		"config":   "config-schema.json",
		"layout":   "image-layout-schema.json",
	} {
		s, err := c.Compile(filepath.Join(dir, file))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		schemas[kind] = s
	}
	return schemas, nil
})

// schemaDirLoader loads https://opencontainers.org/schema/.../NAME.json
// from NAME.json in a folder.
type schemaDirLoader string

func (d schemaDirLoader) Load(url string) (any, error) {
	f, err := os.Open(filepath.Join(string(d), url[strings.LastIndexByte(url, '/')+1:]))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return jsonschema.UnmarshalJSON(f)
}

// checkSchema validates b against the image-spec schema of kind (index,
// manifest, config, layout).
func checkSchema(t testing.TB, kind, name string, b []byte) {
	t.Helper()
	schemas, err := ociSchemas()
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := schemas[kind].Validate(v); err != nil {
		t.Errorf("%s is not a valid %s: %v", name, kind, err)
	}
}

// checkLayout verifies a layout of e against the plan, the images its
// writer returned, the schemas and its own digests: every blob hashes to
// its name, each layer blob decompresses to the tar of its diff id, every
// manifest names blobs that exist.
func checkLayout(t testing.TB, e *plan.Export, imgs []*image.Image, files map[string][]byte) {
	t.Helper()
	if got := string(files["oci-layout"]); got != image.LayoutVersion {
		t.Errorf("oci-layout is %q", got)
	}
	checkSchema(t, "layout", "oci-layout", files["oci-layout"])
	checkSchema(t, "index", "index.json", files["index.json"])
	for name, b := range files {
		if hex, ok := strings.CutPrefix(name, "blobs/sha256/"); ok {
			if d := digest.FromBytes(b); d.Encoded() != hex {
				t.Errorf("%s hashes to %s", name, d)
			}
		} else if name != "index.json" && name != "oci-layout" {
			t.Errorf("unexpected file %s in the layout", name)
		}
	}
	var index ocispec.Index
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 1 {
		t.Fatalf("index.json lists %d manifests, want 1", len(index.Manifests))
	}
	root := index.Manifests[0]
	manifests := []ocispec.Descriptor{root}
	if len(e.Systems) > 1 {
		if root.MediaType != ocispec.MediaTypeImageIndex {
			t.Fatalf("index.json lists a %s, want an image index", root.MediaType)
		}
		b := files[image.BlobPath(root.Digest)]
		checkSchema(t, "index", "image index", b)
		var idx ocispec.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			t.Fatal(err)
		}
		manifests = idx.Manifests
	}
	tag, err := e.IndexTag()
	if err != nil {
		t.Fatal(err)
	}
	if root.Annotations[ocispec.AnnotationRefName] != tag {
		t.Errorf("index.json names %v, want %s", root.Annotations, tag)
	}
	if len(manifests) != len(e.Systems) {
		t.Fatalf("%d manifests for %d systems", len(manifests), len(e.Systems))
	}
	if len(imgs) != len(e.Systems) {
		t.Fatalf("%d images for %d systems", len(imgs), len(e.Systems))
	}
	for i, md := range manifests {
		img, ip := imgs[i], e.Systems[i].Image
		if md.Digest != img.ManifestDigest || md.Platform == nil || md.Platform.Architecture != ip.Platform.Architecture ||
			md.Platform.Variant != ip.Platform.Variant || md.Platform.OS != "linux" {
			t.Errorf("%s: descriptor %+v, image %s %+v", e.Systems[i].Name, md, img.ManifestDigest, ip.Platform)
		}
		mb := files[image.BlobPath(md.Digest)]
		checkSchema(t, "manifest", "manifest "+md.Digest.String(), mb)
		var m ocispec.Manifest
		if err := json.Unmarshal(mb, &m); err != nil {
			t.Fatal(err)
		}
		cb := files[image.BlobPath(m.Config.Digest)]
		checkSchema(t, "config", "config "+m.Config.Digest.String(), cb)
		if !bytes.Equal(cb, img.Config) {
			t.Errorf("%s: config differs from the image's", e.Systems[i].Name)
		}
		wantType, _ := image.MediaType(ip.Compression)
		for j, ld := range m.Layers {
			b, ok := files[image.BlobPath(ld.Digest)]
			if !ok || int64(len(b)) != ld.Size || ld.MediaType != wantType {
				t.Errorf("layer %d: %+v: present %v, %d bytes, want type %s", j, ld, ok, len(b), wantType)
				continue
			}
			tarBytes := decompress(t, ip.Compression, b)
			if d := digest.FromBytes(tarBytes); d != img.Blobs[j].DiffID {
				t.Errorf("layer %d decompresses to %s, diff id %s", j, d, img.Blobs[j].DiffID)
			}
		}
	}
}

// decompress undoes a layer blob's compression.
func decompress(t testing.TB, compression format.Compression, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch compression {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	default:
		return b
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", compression, err)
	}
	return out
}

// prettyJSON indents b, ending with a newline.
func prettyJSON(t testing.TB, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		t.Fatal(err)
	}
	return buf.String() + "\n"
}

func TestOCIGolden(t *testing.T) {
	for _, c := range ociCases {
		t.Run(c.name(), func(t *testing.T) {
			e := c.build(t, "")
			dir, imgs := writeLayout(t, e)
			files := layoutFiles(t, dir)
			checkLayout(t, e, imgs.Images, files)
			golden := map[string]string{"index.json": prettyJSON(t, files["index.json"])}
			var blobs strings.Builder
			names := make([]string, 0, len(files))
			for n := range files {
				names = append(names, n)
			}
			slices.Sort(names)
			for _, n := range names {
				fmt.Fprintf(&blobs, "%s %d\n", n, len(files[n]))
			}
			golden["files.txt"] = blobs.String()
			for i, sys := range e.Systems {
				img := imgs.Images[i]
				golden["manifest-"+sys.Name+".json"] = prettyJSON(t, files[image.BlobPath(img.ManifestDigest)])
				golden["config-"+sys.Name+".json"] = prettyJSON(t, files[image.BlobPath(img.ConfigDigest)])
			}
			if len(e.Systems) > 1 {
				golden["image-index.json"] = prettyJSON(t, imgs.Index)
			}
			compareGolden(t, filepath.Join("testdata", "oci", c.name()), golden)
		})
	}
}

// TestOCIGoldenSchemas validates every JSON golden in testdata/oci against
// its image-spec schema.
func TestOCIGoldenSchemas(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "oci", "*", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no goldens in testdata/oci: %v", err)
	}
	kinds := []struct{ prefix, kind string }{{"index.json", "index"}, {"image-index", "index"}, {"manifest-", "manifest"}, {"config-", "config"}}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(kinds, func(k struct{ prefix, kind string }) bool { return strings.HasPrefix(filepath.Base(p), k.prefix) })
		if i < 0 {
			t.Errorf("%s: which schema?", p)
			continue
		}
		checkSchema(t, kinds[i].kind, p, b)
	}
	// The docker goldens' configs are image-spec configs too.
	paths, _ = filepath.Glob(filepath.Join("testdata", "docker", "*", "config-*.json"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		checkSchema(t, "config", p, b)
	}
}

// TestSchemaCheckRejects makes sure the schema check can fail: documents
// that break the image-spec rules are reported.
func TestSchemaCheckRejects(t *testing.T) {
	schemas, err := ociSchemas()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ kind, doc string }{
		{"index", `{"schemaVersion":1,"manifests":[]}`},
		{"manifest", `{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":1,"digest":"sha256:nothex"},"layers":[]}`},
		{"layout", `{"imageLayoutVersion":1}`},
		{"config", `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":"x"}}`},
	}
	for _, tt := range tests {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(tt.doc))
		if err != nil {
			t.Fatal(err)
		}
		if err := schemas[tt.kind].Validate(v); err == nil {
			t.Errorf("%s %s: accepted", tt.kind, tt.doc)
		}
	}
}

// TestOCIReproducible writes each compression twice, from fixtures in
// different places with different owners and mtimes, with GOMAXPROCS 1
// and 2: the layouts are byte-identical.
func TestOCIReproducible(t *testing.T) {
	for _, c := range ociCases {
		t.Run(c.name(), func(t *testing.T) {
			var layouts []map[string][]byte
			for _, procs := range []int{1, 2, 1, 2} {
				old := runtime.GOMAXPROCS(procs)
				dir, _ := writeLayout(t, c.build(t, ""))
				files := layoutFiles(t, dir)
				runtime.GOMAXPROCS(old)
				layouts = append(layouts, files)
			}
			for i := 1; i < len(layouts); i++ {
				if !sameFiles(layouts[0], layouts[i]) {
					t.Errorf("run %d differs from run 0", i)
				}
			}
		})
	}
}

func sameFiles(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for n, x := range a {
		if y, ok := b[n]; !ok || !bytes.Equal(x, y) {
			return false
		}
	}
	return true
}

// TestOCIDescribeMatchesLayout: the images Describe computes without
// writing are those of the written layout, and what storepack plan prints
// of them is what the layout holds: each image's OCI manifest (the blob
// of its digest, listed in index.json or the image index, naming the
// layout's config and layer blobs, a base's first) and config, the image
// index of several systems, and the base's reference and manifest digest.
func TestOCIDescribeMatchesLayout(t *testing.T) {
	cases := slices.Clone(ociCases)
	for _, c := range describeCases(t)[2:] {
		cases = append(cases, ociCase{c, format.Gzip}, ociCase{c, format.None})
	}
	for _, c := range cases {
		t.Run(c.name(), func(t *testing.T) {
			e := c.build(t, "")
			dir, written := writeLayout(t, e)
			planned := c.build(t, "")
			d, err := Describe(&plan.Plan{Exports: []plan.Export{*planned}}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for i := range written.Images {
				if diff := cmp.Diff(written.Images[i], d.Exports[0].Systems[i].Image, cmpopts.IgnoreFields(image.Image{}, "Plan")); diff != "" {
					t.Errorf("%s: image described differs from the one written (-written +described):\n%s", planned.Systems[i].Name, diff)
				}
			}

			files := layoutFiles(t, dir)
			blobs := layoutBlobs(files)
			ex := printed(t, d)
			var index ocispec.Index
			if err := json.Unmarshal(files["index.json"], &index); err != nil {
				t.Fatal(err)
			}
			manifests := index.Manifests
			if len(e.Systems) > 1 {
				root := index.Manifests[0]
				if ex.IndexDigest != root.Digest || ex.IndexSize != root.Size || !bytes.Equal(compact(t, ex.Index), blobs[root.Digest]) {
					t.Errorf("printed index %s (%d bytes), index.json names %s (%d bytes)", ex.IndexDigest, ex.IndexSize, root.Digest, root.Size)
				}
				var idx ocispec.Index
				if err := json.Unmarshal(blobs[root.Digest], &idx); err != nil {
					t.Fatal(err)
				}
				manifests = idx.Manifests
			} else if ex.Index != nil || ex.IndexDigest != "" || ex.IndexSize != 0 {
				t.Errorf("an image index printed for one system: %s", ex.IndexDigest)
			}
			for i, s := range ex.Systems {
				if s.Image != nil && s.Image.DockerManifest != nil {
					t.Errorf("system %d: a docker_manifest printed for an OCI layout", i)
				}
			}
			checkPrintedImages(t, e, ex, blobs, manifests, false)
		})
	}
}

func TestWriteExportOCI(t *testing.T) {
	c := ociCases[3] // two systems
	out := t.TempDir()
	e := c.build(t, "")
	files, err := writeExport(&plan.Plan{}, e, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	layout := filepath.Join(out, "hello")
	index, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := File{Export: "hello", Path: "hello/index.json", SHA256: digest.FromBytes(index).Encoded(), Size: int64(len(index))}
	if len(files) != 1 || files[0] != want {
		t.Errorf("writeExport returned %+v, want %+v", files, want)
	}
	imgs, err := image.Digest(e, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkLayout(t, e, imgs.Images, layoutFiles(t, layout))

	// A second export replaces the layout: same index, no stray blob or
	// temporary folder, even when the previous layout had extra files.
	if err := os.WriteFile(filepath.Join(layout, "blobs", "sha256", "stale"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	other := ociCases[0].build(t, "")
	other.Output = "hello"
	if _, err := writeExport(&plan.Plan{}, other, out, Options{}); err != nil {
		t.Fatal(err)
	}
	otherImgs, err := image.Digest(other, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkLayout(t, other, otherImgs.Images, layoutFiles(t, layout))
	if des, _ := os.ReadDir(out); len(des) != 1 {
		t.Errorf("the output folder holds %d entries after replacing, want 1", len(des))
	}

	// A folder that is not a layout is not replaced.
	foreign := filepath.Join(out, "mine")
	if err := os.MkdirAll(foreign, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(foreign, "notes.txt"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	other.Output = "mine"
	if _, err := writeExport(&plan.Plan{}, other, out, Options{}); err == nil || !strings.Contains(err.Error(), "not an OCI layout") {
		t.Errorf("replacing a foreign folder: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(foreign, "notes.txt")); string(b) != "keep" {
		t.Error("the foreign folder was touched")
	}

	// An output ending in .tar is an oci-archive of the same layout.
	e.Output = "hello.tar"
	files, err = writeExport(&plan.Plan{}, e, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "hello.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if files[0].SHA256 != digest.FromBytes(b).Encoded() {
		t.Errorf("archive digest %s, file %s", files[0].SHA256, digest.FromBytes(b))
	}
	a := readArchive(t, b)
	archived := map[string][]byte{}
	for _, n := range a.names {
		if h := a.entries[n].Hdr; h.Typeflag == tar.TypeReg {
			archived[n] = a.entries[n].Data
		}
		if h := a.entries[n].Hdr; h.ModTime.Unix() != e.Systems[0].Image.MTime() || h.Uid != 0 || h.Uname != "" {
			t.Errorf("%s: mtime %v owner %d %q", n, h.ModTime, h.Uid, h.Uname)
		}
	}
	if a.names[0] != "oci-layout" || a.names[len(a.names)-1] != "index.json" {
		t.Errorf("archive order %v", a.names)
	}
	checkLayout(t, e, imgs.Images, archived)
	if des, _ := os.ReadDir(out); len(des) != 3 {
		t.Errorf("the output folder holds %d entries, want hello, hello.tar, mine", len(des))
	}
}

// TestDockerArchiveOCI: a docker archive is also an OCI layout whose
// blobs are the docker entries' bytes.
func TestDockerArchiveOCI(t *testing.T) {
	for _, c := range dockerCases {
		t.Run(c.name, func(t *testing.T) {
			e := c.build(t, "")
			b, imgs := writeDockerBytes(t, e)
			a := readArchive(t, b)
			files := map[string][]byte{}
			for _, n := range a.names {
				h := a.entries[n].Hdr
				switch {
				case h.Typeflag == tar.TypeLink:
					target, ok := a.entries[h.Linkname]
					if !ok || !slices.Contains(a.names[:slices.Index(a.names, n)], h.Linkname) {
						t.Errorf("%s links to %s, not an earlier entry", n, h.Linkname)
					}
					files[n] = target.Data
				case strings.HasPrefix(n, "blobs/") && h.Typeflag == tar.TypeReg, n == "index.json", n == "oci-layout":
					files[n] = a.entries[n].Data
				}
			}
			var index ocispec.Index
			if err := json.Unmarshal(files["index.json"], &index); err != nil {
				t.Fatal(err)
			}
			if len(index.Manifests) != len(e.Systems) {
				t.Fatalf("index.json lists %d manifests for %d images", len(index.Manifests), len(e.Systems))
			}
			checkSchema(t, "index", "index.json", files["index.json"])
			for i, md := range index.Manifests {
				img, ip := imgs.Images[i], e.Systems[i].Image
				if md.Digest != img.ManifestDigest || md.Annotations[ocispec.AnnotationRefName] != ip.Tag || md.Platform.Architecture != ip.Platform.Architecture {
					t.Errorf("manifest %d: %+v; image %s %s", i, md, img.ManifestDigest, ip.Tag)
				}
				// Check each image as a one-system layout.
				one := *e
				one.Systems = e.Systems[i : i+1]
				sub := map[string][]byte{"oci-layout": files["oci-layout"]}
				sub["index.json"], _ = image.LayoutIndex([]ocispec.Descriptor{md})
				m := files[image.BlobPath(md.Digest)]
				sub[image.BlobPath(md.Digest)] = m
				var man ocispec.Manifest
				if err := json.Unmarshal(m, &man); err != nil {
					t.Fatal(err)
				}
				for _, d := range append([]ocispec.Descriptor{man.Config}, man.Layers...) {
					sub[image.BlobPath(d.Digest)] = files[image.BlobPath(d.Digest)]
				}
				checkLayout(t, &one, imgs.Images[i:i+1], sub)
			}
		})
	}
}

func TestWriteOCIErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "l")
	if _, err := writeOCILayout(dir, job{e: &plan.Export{Name: "x"}}); err == nil {
		t.Error("export without systems: no error")
	}
	e := ociCases[0].build(t, "")
	e.Systems[0].Image.Compression = "lz4"
	if _, err := writeOCILayout(dir, job{e: e}); err == nil || !strings.Contains(err.Error(), "lz4") {
		t.Errorf("unknown compression: %v", err)
	}
	e = ociCases[0].build(t, "")
	if err := os.RemoveAll(e.Systems[0].Closure[1].FSPath); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	e.Output = "broken"
	if _, err := writeExport(&plan.Plan{}, e, out, Options{}); err == nil {
		t.Error("missing store item: no error")
	}
	if des, _ := os.ReadDir(out); len(des) != 0 {
		t.Errorf("a failed export left %d entries in the output folder", len(des))
	}
}
