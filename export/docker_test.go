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
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/gen"
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
	image   spec.Image
	// perSystem entry points, by system name; @name@ expands.
	entrypoints map[string][]string
}

var dockerCases = []dockerCase{
	{
		name:    "nix-default",
		dir:     "/nix/store",
		systems: []string{"x86_64-linux"},
		roots:   []string{"hello-2.12", "libc-link"},
		image:   spec.Image{Entrypoint: []string{"@hello-2.12@/bin/hello"}},
	},
	{
		name:    "gnu-merged",
		dir:     "/gnu/store",
		systems: []string{"aarch64-linux"},
		roots:   []string{"hello-2.12", "libc-link"},
		image: spec.Image{
			Tag:          "registry.example:5000/team/hello:2.12",
			Entrypoint:   []string{"@hello-2.12@/bin/hello"},
			Cmd:          []string{"--greeting", "a && b <c>"},
			Env:          map[string]string{"PATH": "/bin", "LANG": "C.UTF-8"},
			WorkingDir:   "/tmp",
			User:         "1000:1000",
			Labels:       map[string]string{"org.opencontainers.image.source": "https://example.org/hello"},
			ExposedPorts: []string{"8080/tcp", "53/udp"},
			Volumes:      []string{"/data"},
			Symlinks:     map[string]string{"/usr/bin/hello": "@hello-2.12@/bin/hello", "/etc/greeting": "@greeting@"},
			MaxLayers:    3,
			Created:      "2024-01-02T03:04:05Z",
		},
	},
	{
		name:    "gnu-single-layer",
		dir:     "/gnu/store",
		systems: []string{"x86_64-linux"},
		roots:   []string{"hello-2.12"},
		image:   spec.Image{Tag: "hello", MaxLayers: 1, Symlinks: map[string]string{}},
	},
	{
		name:    "nix-multi-system",
		dir:     "/nix/store",
		systems: []string{"x86_64-linux", "armhf-linux"},
		roots:   []string{"hello-2.12"},
		image:   spec.Image{Tag: "hello:1.0", Cmd: []string{"hi"}},
		entrypoints: map[string][]string{
			"x86_64-linux": {"@hello-2.12@/bin/hello"},
			"armhf-linux":  {"@greeting@"},
		},
	},
}

// build plans c as a docker export (output hello.tar) over a fixture
// written below root (a new temporary folder when empty).
func (c dockerCase) build(t testing.TB, root string, getenv func(string) string) *gen.Export {
	t.Helper()
	e := buildImages(t, c, format.Docker, "", root, getenv)
	e.Output = "hello.tar"
	return e
}

func expandAll(ss []string, byName map[string]store.Path) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = expand(s, byName)
	}
	return out
}

// writeDockerBytes writes e as a docker archive in memory.
func writeDockerBytes(t testing.TB, e *gen.Export) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteDocker(&buf, e); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// archive is a docker archive read back: files by name, in order.
type archive struct {
	names   []string
	entries map[string]tarEntry
}

func readArchive(t testing.TB, b []byte) *archive {
	t.Helper()
	a := &archive{entries: map[string]tarEntry{}}
	for _, e := range readTar(t, b) {
		if _, dup := a.entries[e.hdr.Name]; dup {
			t.Errorf("%s twice in the archive", e.hdr.Name)
		}
		a.names = append(a.names, e.hdr.Name)
		a.entries[e.hdr.Name] = e
	}
	return a
}

// checkArchive verifies what any docker archive of ours must satisfy and
// returns its manifest and configs.
func checkArchive(t testing.TB, e *gen.Export, a *archive) ([]gen.ManifestEntry, []ocispec.Image) {
	t.Helper()
	var manifest []gen.ManifestEntry
	if err := json.Unmarshal(a.entries["manifest.json"].data, &manifest); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(manifest) != len(e.Systems) {
		t.Fatalf("manifest.json has %d images, want %d", len(manifest), len(e.Systems))
	}
	var configs []ocispec.Image
	for i, m := range manifest {
		img := e.Systems[i].Image
		raw := a.entries[m.Config].data
		if m.Config != digest.FromBytes(raw).Encoded()+".json" {
			t.Errorf("config %s hashes to %s", m.Config, digest.FromBytes(raw))
		}
		if want, _ := img.ConfigJSON(); !bytes.Equal(raw, want) || img.ConfigDigest != digest.FromBytes(raw) {
			t.Errorf("config %s differs from the plan's", m.Config)
		}
		var cfg ocispec.Image
		if err := json.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		configs = append(configs, cfg)
		if len(m.Layers) != len(cfg.RootFS.DiffIDs) || len(m.Layers) != len(cfg.History) || len(m.Layers) != len(img.Layers) {
			t.Errorf("image %d: %d layers, %d diff ids, %d history entries, %d planned", i, len(m.Layers), len(cfg.RootFS.DiffIDs), len(cfg.History), len(img.Layers))
			continue
		}
		for j, l := range m.Layers {
			data := a.entries[l].data
			if got := digest.FromBytes(data); got != cfg.RootFS.DiffIDs[j] || got != img.Layers[j].DiffID || int64(len(data)) != img.Layers[j].Size {
				t.Errorf("%s: digest %s size %d; config says %s, plan %s %d", l, got, len(data), cfg.RootFS.DiffIDs[j], img.Layers[j].DiffID, img.Layers[j].Size)
			}
		}
	}
	mtime := e.Systems[0].Image.MTime
	for _, n := range a.names {
		h := a.entries[n].hdr
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
			e := c.build(t, "", fixedEnv(""))
			a := readArchive(t, writeDockerBytes(t, e))
			manifest, _ := checkArchive(t, e, a)

			files := map[string]string{
				"manifest.json": string(a.entries["manifest.json"].data),
				"repositories":  string(a.entries["repositories"].data),
			}
			var layers, outer strings.Builder
			for _, n := range a.names {
				h := a.entries[n].hdr
				outer.WriteString(strings.TrimSuffix(listing(t, mustTar(t, h, a.entries[n].data)), "\n") + "\n")
			}
			for i, m := range manifest {
				sys := &e.Systems[i]
				var pretty bytes.Buffer
				if err := json.Indent(&pretty, a.entries[m.Config].data, "", "  "); err != nil {
					t.Fatal(err)
				}
				files["config-"+sys.Name+".json"] = pretty.String() + "\n"
				layers.WriteString("image " + sys.Image.Tag + "\n")
				for j, l := range m.Layers {
					pl := sys.Image.Layers[j]
					layers.WriteString("\nlayer " + l + " " + string(pl.DiffID) + " (" + pl.CreatedBy + ")\n")
					layers.WriteString(listing(t, a.entries[l].data))
				}
				layers.WriteString("\n")
			}
			files["layers.txt"] = layers.String()
			files["archive.txt"] = outer.String()
			plan, err := json.MarshalIndent(e, "", "  ")
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
	e := dockerCases[3].build(t, "", fixedEnv(""))
	a := readArchive(t, writeDockerBytes(t, e))
	checkArchive(t, e, a)
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
			want := writeDockerBytes(t, c.build(t, "", fixedEnv("")))

			oldUmask := syscall.Umask(0o022 ^ 0o077)
			defer syscall.Umask(oldUmask)
			oldLocal := time.Local
			time.Local = time.FixedZone("UTC-11", -11*3600)
			defer func() { time.Local = oldLocal }()
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			t.Chdir(t.TempDir())
			root := t.TempDir()
			e := c.build(t, root, fixedEnv(""))
			when := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
				if err != nil || fi.Mode()&os.ModeSymlink != 0 {
					return err
				}
				if os.Geteuid() == 0 {
					if err := os.Lchown(p, 4321, 8765); err != nil {
						return err
					}
				}
				return os.Chtimes(p, when, when)
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := writeDockerBytes(t, e); !bytes.Equal(want, got) {
				t.Errorf("archives differ: %d and %d bytes", len(want), len(got))
			}
		})
	}
}

// TestDockerSourceDateEpoch: SOURCE_DATE_EPOCH changes the config's
// created times, the mtimes and what depends on them (digests), nothing
// else; the spec's created wins over it.
func TestDockerSourceDateEpoch(t *testing.T) {
	c := dockerCases[0]
	const epoch = 1700000000
	base := c.build(t, "", fixedEnv(""))
	later := c.build(t, "", fixedEnv("1700000000"))
	a, b := readArchive(t, writeDockerBytes(t, base)), readArchive(t, writeDockerBytes(t, later))
	_, ca := checkArchive(t, base, a)
	mb, cb := checkArchive(t, later, b)
	if want := time.Unix(epoch, 0).UTC(); !cb[0].Created.Equal(want) {
		t.Errorf("created %v, want %v", cb[0].Created, want)
	}
	for _, m := range mb {
		for _, l := range m.Layers {
			for _, e := range readTar(t, b.entries[l].data) {
				if e.hdr.ModTime.Unix() != epoch {
					t.Errorf("%s: %s has mtime %v", l, e.hdr.Name, e.hdr.ModTime)
				}
			}
			if listing(t, a.entries[l].data) != listing(t, b.entries[l].data) {
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
		t.Errorf("configs differ beyond created (-without +with SOURCE_DATE_EPOCH):\n%s", diff)
	}

	withCreated := c
	withCreated.image.Created = "2020-02-02T02:02:02Z"
	e := withCreated.build(t, "", fixedEnv("1700000000"))
	if got := e.Systems[0].Image.Config.Created.Format(time.RFC3339); got != "2020-02-02T02:02:02Z" {
		t.Errorf("created %s, want the spec's", got)
	}
}

func TestDigestLayersMatchesWriteDocker(t *testing.T) {
	c := dockerCases[1]
	written := c.build(t, "", fixedEnv(""))
	writeDockerBytes(t, written)
	planned := c.build(t, "", fixedEnv(""))
	if err := DigestLayers(planned); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(written.Systems[0].Image, planned.Systems[0].Image); diff != "" {
		t.Errorf("plan after DigestLayers differs from the one after WriteDocker (-written +planned):\n%s", diff)
	}
	if planned.Systems[0].Image.ConfigDigest == "" {
		t.Error("no config digest after DigestLayers")
	}
}

func TestWriteDockerErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteDocker(&buf, &gen.Export{Name: "x"}); err == nil {
		t.Error("export without systems: no error")
	}
	if err := WriteDocker(&buf, &gen.Export{Name: "x", Systems: []gen.System{{Name: "x86_64-linux"}}}); err == nil || !strings.Contains(err.Error(), "no image plan") {
		t.Errorf("system without image: %v", err)
	}
	e := dockerCases[0].build(t, "", fixedEnv(""))
	if err := os.RemoveAll(e.Systems[0].Closure[0].FSPath); err != nil {
		t.Fatal(err)
	}
	if err := WriteDocker(&buf, e); err == nil {
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
	e := dockerCases[0].build(t, "", fixedEnv(""))
	total := len(writeDockerBytes(t, e))
	for _, n := range []int{0, 700, total / 2, total - 600} {
		before := runtime.NumGoroutine()
		err := WriteDocker(&dockerFailingWriter{n: n}, e)
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
