package export

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/export/image"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/fixture"
	"github.com/storepack/storepack/internal/layercache"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/docker")

// dockerCase is a docker export of the hello fixture.
type dockerCase struct {
	name    string
	dir     store.Dir
	systems []string
	roots   []string
	export  spec.Export // the settings; Name, Format, Output and Systems are set by build
	// perSystem entry points, by system name; @name@ expands.
	entrypoints map[string][]string
}

var dockerCases = []dockerCase{
	{
		name:    "nix-default",
		dir:     "/nix/store",
		systems: []string{"x86_64-linux"},
		roots:   []string{"hello-2.12", "libc-link"},
		export:  spec.Export{Entrypoint: []string{"@hello-2.12@/bin/hello"}, Image: spec.Image{}},
	},
	{
		name:    "gnu-merged",
		dir:     "/gnu/store",
		systems: []string{"aarch64-linux"},
		roots:   []string{"hello-2.12", "libc-link"},
		export: spec.Export{
			Entrypoint: []string{"@hello-2.12@/bin/hello"},
			Cmd:        []string{"--greeting", "a && b <c>"},
			Env:        map[string]string{"PATH": "/bin", "LANG": "C.UTF-8"},
			Symlinks:   map[string]string{"/usr/bin/hello": "@hello-2.12@/bin/hello", "/etc/greeting": "@greeting@"},
			Created:    "2024-01-02T03:04:05Z",
			Image:      spec.Image{Tag: "registry.example:5000/team/hello:2.12", WorkingDir: "/tmp", User: "1000:1000", Labels: map[string]string{"org.opencontainers.image.source": "https://example.org/hello"}, ExposedPorts: []string{"8080/tcp", "53/udp"}, Volumes: []string{"/data"}, MaxLayers: 3},
		},
	},
	{
		name:    "gnu-single-layer",
		dir:     "/gnu/store",
		systems: []string{"x86_64-linux"},
		roots:   []string{"hello-2.12"},
		export:  spec.Export{Symlinks: map[string]string{}, Image: spec.Image{Tag: "hello", MaxLayers: 1}},
	},
	{
		name:    "nix-multi-system",
		dir:     "/nix/store",
		systems: []string{"x86_64-linux", "armhf-linux"},
		roots:   []string{"hello-2.12"},
		export:  spec.Export{Cmd: []string{"hi"}, Image: spec.Image{Tag: "hello:1.0"}},
		entrypoints: map[string][]string{
			"x86_64-linux": {"@hello-2.12@/bin/hello"},
			"armhf-linux":  {"@greeting@"},
		},
	},
}

// build plans c as a docker export (output hello.tar) over a fixture
// written below root (a new temporary folder when empty).
func (c dockerCase) build(t testing.TB, root string) *plan.Export {
	t.Helper()
	e := buildImages(t, c, format.Format("docker"), "", root)
	e.Output = "hello.tar"
	return e
}

// writeDockerBytes writes e as a docker archive in memory and returns it
// and its images.
func writeDockerBytes(t testing.TB, e *plan.Export) ([]byte, *image.Set) {
	t.Helper()
	var buf bytes.Buffer
	imgs, err := writeDocker(&buf, e, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), imgs
}

// archive is a docker archive read back: files by name, in order.
type archive struct {
	names   []string
	entries map[string]fixture.TarEntry
}

func readArchive(t testing.TB, b []byte) *archive {
	t.Helper()
	a := &archive{entries: map[string]fixture.TarEntry{}}
	for _, e := range fixture.ReadTar(t, b) {
		if _, dup := a.entries[e.Hdr.Name]; dup {
			t.Errorf("%s twice in the archive", e.Hdr.Name)
		}
		a.names = append(a.names, e.Hdr.Name)
		a.entries[e.Hdr.Name] = e
	}
	return a
}

// checkArchive verifies what any docker archive of ours must satisfy,
// with imgs the images its writer returned, and returns its manifest and
// configs.
func checkArchive(t testing.TB, e *plan.Export, imgs []*image.Image, a *archive) ([]image.DockerEntry, []ocispec.Image) {
	t.Helper()
	var manifest []image.DockerEntry
	if err := json.Unmarshal(a.entries["manifest.json"].Data, &manifest); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(manifest) != len(e.Systems) {
		t.Fatalf("manifest.json has %d images, want %d", len(manifest), len(e.Systems))
	}
	var configs []ocispec.Image
	if len(imgs) != len(e.Systems) {
		t.Fatalf("the writer returned %d images for %d systems", len(imgs), len(e.Systems))
	}
	for i, m := range manifest {
		img := imgs[i]
		raw := a.entries[m.Config].Data
		if m.Config != digest.FromBytes(raw).Encoded()+".json" {
			t.Errorf("config %s hashes to %s", m.Config, digest.FromBytes(raw))
		}
		if !bytes.Equal(raw, img.Config) || img.ConfigDigest != digest.FromBytes(raw) {
			t.Errorf("config %s differs from the image's the writer returned", m.Config)
		}
		var cfg ocispec.Image
		if err := json.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		configs = append(configs, cfg)
		if len(m.Layers) != len(cfg.RootFS.DiffIDs) || len(m.Layers) != len(cfg.History) || len(m.Layers) != len(img.Blobs) {
			t.Errorf("image %d: %d layers, %d diff ids, %d history entries, %d written", i, len(m.Layers), len(cfg.RootFS.DiffIDs), len(cfg.History), len(img.Blobs))
			continue
		}
		for j, l := range m.Layers {
			data := a.entries[l].Data
			if got := digest.FromBytes(data); got != cfg.RootFS.DiffIDs[j] || got != img.Blobs[j].DiffID || int64(len(data)) != img.Blobs[j].Size {
				t.Errorf("%s: digest %s size %d; config says %s, the writer %s %d", l, got, len(data), cfg.RootFS.DiffIDs[j], img.Blobs[j].DiffID, img.Blobs[j].Size)
			}
		}
	}
	mtime := e.Systems[0].Image.MTime()
	for _, n := range a.names {
		h := a.entries[n].Hdr
		if h.ModTime.Unix() != mtime || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: mtime %v owner %d:%d %q:%q", n, h.ModTime, h.Uid, h.Gid, h.Uname, h.Gname)
		}
	}
	last := a.names[len(a.names)-2:]
	if last[0] != "manifest.json" || last[1] != "repositories" {
		t.Errorf("archive ends with %v, want manifest.json, repositories", last)
	}
	return manifest, configs
}

func TestDockerGolden(t *testing.T) {
	for _, c := range dockerCases {
		t.Run(c.name, func(t *testing.T) {
			e := c.build(t, "")
			b, imgs := writeDockerBytes(t, e)
			a := readArchive(t, b)
			manifest, _ := checkArchive(t, e, imgs.Images, a)

			files := map[string]string{
				"manifest.json": string(a.entries["manifest.json"].Data),
				"repositories":  string(a.entries["repositories"].Data),
			}
			var layers, outer strings.Builder
			for _, n := range a.names {
				h := a.entries[n].Hdr
				outer.WriteString(strings.TrimSuffix(fixture.Listing(t, mustTar(t, h, a.entries[n].Data)), "\n") + "\n")
			}
			for i, m := range manifest {
				sys := &e.Systems[i]
				var pretty bytes.Buffer
				if err := json.Indent(&pretty, a.entries[m.Config].Data, "", "  "); err != nil {
					t.Fatal(err)
				}
				files["config-"+sys.Name+".json"] = pretty.String() + "\n"
				layers.WriteString("image " + sys.Image.Tag + "\n")
				for j, l := range m.Layers {
					pl := sys.Image.Layers[j]
					layers.WriteString("\nlayer " + l + " " + string(imgs.Images[i].Blobs[j].DiffID) + " (" + pl.CreatedBy + ")\n")
					layers.WriteString(fixture.Listing(t, a.entries[l].Data))
				}
				layers.WriteString("\n")
			}
			files["layers.txt"] = layers.String()
			files["archive.txt"] = outer.String()
			plan, err := json.MarshalIndent(describeExport(e, imgs), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			files["plan.json"] = string(plan) + "\n"
			compareGolden(t, filepath.Join("testdata", "docker", c.name), files)
		})
	}
}

// mustTar wraps one outer entry's header in a tar so that listing can
// describe it (contents dropped).
func mustTar(t testing.TB, h *tar.Header, _ []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hc := *h
	if err := tw.WriteHeader(&hc); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(make([]byte, h.Size)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// compareGolden compares files with dir's, or rewrites them with -update.
func compareGolden(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	for name, got := range files {
		want, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%v (run go test ./export -run TestDockerGolden -update)", err)
			continue
		}
		if diff := cmp.Diff(string(want), got); diff != "" {
			t.Errorf("%s/%s (-want +got):\n%s", dir, name, diff)
		}
	}
}

func TestDockerSharedLayersWrittenOnce(t *testing.T) {
	// Two systems with the same closure: the item layers are the same
	// (the extra layers differ by their /bin symlink: same here too).
	e := dockerCases[3].build(t, "")
	b, imgs := writeDockerBytes(t, e)
	a := readArchive(t, b)
	checkArchive(t, e, imgs.Images, a)
	layerTars := 0
	for _, n := range a.names {
		if strings.HasSuffix(n, "/layer.tar") {
			layerTars++
		}
	}
	if n := len(e.Systems[0].Image.Layers); layerTars != n {
		t.Errorf("%d layer tars for two images of %d identical layers", layerTars, n)
	}
}

// TestDockerReproducible writes the same export twice: from the fixture,
// and from a copy with other modes, owners and mtimes under another umask,
// time zone, working folder and GOMAXPROCS. The archives are equal.
func TestDockerReproducible(t *testing.T) {
	for _, c := range dockerCases {
		t.Run(c.name, func(t *testing.T) {
			checkReproducible(t, func(t testing.TB, root string) *plan.Export { return c.build(t, root) },
				func(t testing.TB, e *plan.Export) []byte { b, _ := writeDockerBytes(t, e); return b })
		})
	}
}

// TestDockerCreated: the creation time (the spec's created, or
// SOURCE_DATE_EPOCH's: spec.Load's rule) changes the config's created
// times, the mtimes and what depends on them (digests), nothing else.
func TestDockerCreated(t *testing.T) {
	c := dockerCases[0]
	const epoch = 1700000000
	base := c.build(t, "")
	laterCase := c
	laterCase.export.Created = time.Unix(epoch, 0).UTC().Format(time.RFC3339)
	later := laterCase.build(t, "")
	ab, aimgs := writeDockerBytes(t, base)
	bb, bimgs := writeDockerBytes(t, later)
	a, b := readArchive(t, ab), readArchive(t, bb)
	_, ca := checkArchive(t, base, aimgs.Images, a)
	mb, cb := checkArchive(t, later, bimgs.Images, b)
	if want := time.Unix(epoch, 0).UTC(); !cb[0].Created.Equal(want) {
		t.Errorf("created %v, want %v", cb[0].Created, want)
	}
	for _, m := range mb {
		for _, l := range m.Layers {
			for _, e := range fixture.ReadTar(t, b.entries[l].Data) {
				if e.Hdr.ModTime.Unix() != epoch {
					t.Errorf("%s: %s has mtime %v", l, e.Hdr.Name, e.Hdr.ModTime)
				}
			}
			if fixture.Listing(t, a.entries[l].Data) != fixture.Listing(t, b.entries[l].Data) {
				t.Errorf("%s: listings differ", l)
			}
		}
	}
	// The configs are equal once created and diff ids are set aside.
	for _, cfg := range []*ocispec.Image{&ca[0], &cb[0]} {
		cfg.Created, cfg.RootFS.DiffIDs = nil, nil
		for i := range cfg.History {
			cfg.History[i].Created = nil
		}
	}
	if diff := cmp.Diff(ca[0], cb[0]); diff != "" {
		t.Errorf("configs differ beyond created (-earlier +later):\n%s", diff)
	}
}

// TestDescribeMatchesWriteDocker: the images that Describe computes (what
// storepack plan prints) are those the writer writes, with and without a
// layer cache, and the plan is left as it was; what storepack plan prints
// of them is what the archive holds: each image's manifest.json entry and
// config, its OCI manifest (in the archive's OCI part, listed in its
// index.json, naming the archive's blobs: a base's layers as their
// uncompressed tars) and its base's reference and manifest digest.
func TestDescribeMatchesWriteDocker(t *testing.T) {
	for _, c := range describeCases(t) {
		t.Run(c.name, func(t *testing.T) {
			written := c.build(t, "")
			b, imgs := writeDockerBytes(t, written)
			planned := c.build(t, "")
			before, err := json.Marshal(planned)
			if err != nil {
				t.Fatal(err)
			}
			cache, err := layercache.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			var d *Description
			for _, o := range []Options{{}, {Cache: cache}, {Cache: cache}} {
				if d, err = Describe(&plan.Plan{Exports: []plan.Export{*planned}}, o); err != nil {
					t.Fatal(err)
				}
				for i, img := range imgs.Images {
					got := d.Exports[0].Systems[i].Image
					if diff := cmp.Diff(img, got, cmpopts.IgnoreFields(image.Image{}, "Plan")); diff != "" {
						t.Errorf("cache %v: image described differs from the one written (-written +described):\n%s", o.Cache != nil, diff)
					}
				}
			}
			if after, _ := json.Marshal(planned); !bytes.Equal(before, after) {
				t.Error("Describe changed the plan")
			}

			a := readArchive(t, b)
			var manifest []image.DockerEntry
			if err := json.Unmarshal(a.entries["manifest.json"].Data, &manifest); err != nil {
				t.Fatalf("manifest.json: %v", err)
			}
			ex := printed(t, d)
			if len(manifest) != len(ex.Systems) {
				t.Fatalf("manifest.json has %d entries, %d systems printed", len(manifest), len(ex.Systems))
			}
			for i, s := range ex.Systems {
				if s.Image == nil || s.Image.DockerManifest == nil {
					t.Fatalf("system %d: no docker_manifest printed", i)
				}
				if diff := cmp.Diff(manifest[i], *s.Image.DockerManifest); diff != "" {
					t.Errorf("system %d: printed docker_manifest differs from manifest.json's entry (-written +printed):\n%s", i, diff)
				}
				if !bytes.Equal(compact(t, s.Image.Config), a.entries[manifest[i].Config].Data) {
					t.Errorf("system %d: printed config differs from %s", i, manifest[i].Config)
				}
				// The layer tars manifest.json names are those the
				// printed manifest names, by their diff ids.
				var m ocispec.Manifest
				if err := json.Unmarshal(s.Image.OCIManifest, &m); err != nil {
					t.Fatal(err)
				}
				for j, l := range manifest[i].Layers {
					data := a.entries[l].Data
					if j >= len(m.Layers) || digest.FromBytes(data) != m.Layers[j].Digest || int64(len(data)) != m.Layers[j].Size {
						t.Errorf("system %d: %s (%s, %d bytes) is not the printed manifest's layer %d", i, l, digest.FromBytes(data), len(data), j)
					}
				}
			}
			if ex.Index != nil || ex.IndexDigest != "" {
				t.Errorf("an image index printed for a docker archive: %s %s", ex.IndexDigest, ex.Index)
			}
			blobs := map[digest.Digest][]byte{}
			for _, n := range a.names {
				hex, ok := strings.CutPrefix(n, "blobs/sha256/")
				if !ok || hex == "" {
					continue
				}
				en := a.entries[n]
				if en.Hdr.Typeflag == tar.TypeLink {
					en = a.entries[en.Hdr.Linkname]
				}
				blobs[digest.NewDigestFromEncoded(digest.SHA256, hex)] = en.Data
			}
			var index ocispec.Index
			if err := json.Unmarshal(a.entries["index.json"].Data, &index); err != nil {
				t.Fatal(err)
			}
			checkPrintedImages(t, written, ex, blobs, index.Manifests, true)
		})
	}
}

func TestWriteDockerErrors(t *testing.T) {
	var buf bytes.Buffer
	if _, err := writeDocker(&buf, &plan.Export{Name: "x"}, nil, nil); err == nil {
		t.Error("export without systems: no error")
	}
	if _, err := writeDocker(&buf, &plan.Export{Name: "x", Systems: []plan.System{{Name: "x86_64-linux"}}}, nil, nil); err == nil || !strings.Contains(err.Error(), "no image plan") {
		t.Errorf("system without image: %v", err)
	}
	e := dockerCases[0].build(t, "")
	if err := os.RemoveAll(e.Systems[0].Closure[0].FSPath); err != nil {
		t.Fatal(err)
	}
	if _, err := writeDocker(&buf, e, nil, nil); err == nil {
		t.Error("missing store item: no error")
	}
}

// dockerFailingWriter accepts n bytes, then fails.
type dockerFailingWriter struct{ n int }

var errFull = errors.New("disk full")

func (f *dockerFailingWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		k := f.n
		f.n = 0
		return k, errFull
	}
	f.n -= len(p)
	return len(p), nil
}

func TestWriteDockerWriterFails(t *testing.T) {
	// Fail inside the first layer, inside a later one, and in the
	// closing files: the error comes back and no goroutine is left
	// blocked (the race detector and the test's end would show it).
	e := dockerCases[0].build(t, "")
	b, _ := writeDockerBytes(t, e)
	total := len(b)
	for _, n := range []int{0, 700, total / 2, total - 600} {
		before := runtime.NumGoroutine()
		_, err := writeDocker(&dockerFailingWriter{n: n}, e, nil, nil)
		if !errors.Is(err, errFull) {
			t.Errorf("failing after %d of %d bytes: error %v, want %v", n, total, err, errFull)
		}
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if g := runtime.NumGoroutine(); g > before {
			t.Errorf("failing after %d bytes: %d goroutines left, %d before", n, g, before)
		}
	}
}
