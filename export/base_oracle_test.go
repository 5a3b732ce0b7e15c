package export

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/gen"
	"github.com/storepack/storepack/internal/fixture"
	"github.com/storepack/storepack/internal/layercache"
	"github.com/storepack/storepack/internal/oracle"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
)

// baseImages writes a busybox image (busybox in the store, /bin pointing
// into it, PATH set) as an OCI layout tagged base:1 and as a docker
// archive, and pushes it to the registry at host: the three kinds of base.
func baseImages(t *testing.T, skopeo, host string) (layout, archive, pinned string) {
	t.Helper()
	bb := runnableItems(t)[:1]
	fs := fixture.Write(t, "/gnu/store", "", bb)
	mk := func(f format.Format, out string) string {
		e := &spec.Export{
			Name: "base", Format: f,
			Env:      map[string]string{"PATH": "/bin", "GREETING": "from the base"},
			Symlinks: map[string]string{"/bin": string(fs.ByName["busybox-static"]) + "/bin"},
			Image:    spec.Image{Tag: "base:1"},
		}
		ge := &plan.Export{Name: e.Name, Format: f, Output: out}
		ge.Systems = append(ge.Systems, *fs.System(t, "x86_64-linux", e, "busybox-static"))
		dir := t.TempDir()
		if _, err := writeExport(&plan.Plan{}, ge, dir, Options{}); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(dir, out)
	}
	layout = mk(format.Format("oci"), "base-layout")
	archive = mk(format.Format("docker"), "base.tar")
	run(t, skopeo, "copy", "--dest-tls-verify=false", "oci:"+layout+":base:1", "docker://"+host+"/library/busybox:1")
	d := strings.TrimSpace(string(run(t, skopeo, "inspect", "--tls-verify=false", "--format", "{{.Digest}}", "docker://"+host+"/library/busybox:1")))
	return layout, archive, host + "/library/busybox@" + d
}

// TestBaseImages: an image built on each kind of base keeps the base's
// layer blobs (same digests, first), diff ids and history, inherits its
// environment merged with the spec's, and podman runs an entry point that
// uses the base's shell and an item of the closure.
func TestBaseImages(t *testing.T) {
	skopeo := oracle.Require(t, "skopeo")
	podman := oracle.Require(t, "podman")
	oracle.Require(t, "runc")
	host := oracle.StartRegistry(t).Host
	layout, archive, pinned := baseImages(t, skopeo, host)
	baseRaw := run(t, skopeo, "inspect", "--raw", "oci:"+layout+":base:1")
	var baseManifest struct{ Layers []struct{ Digest string } }
	if err := json.Unmarshal(baseRaw, &baseManifest); err != nil {
		t.Fatal(err)
	}

	greeting := fixture.Write(t, "/gnu/store", "", []fixture.Item{{Name: "greeting", Files: map[string]string{"msg": "hello from the closure\n"}}})
	msg := string(greeting.ByName["greeting"]) + "/msg"
	for i, tt := range []struct{ name, ref string }{
		{"oci layout", "oci:" + layout + ":base:1"},
		{"docker archive", "docker-archive:" + archive},
		{"registry", pinned},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tag := "localhost/storepack-test-base:" + string(rune('a'+i))
			e := &spec.Export{
				Name: "derived", Format: format.Format("oci"),
				Entrypoint: []string{"/bin/busybox", "sh", "-c", `cat ` + msg + `; echo "$GREETING $EXTRA"`},
				Env:        map[string]string{"EXTRA": "and the spec"},
				Symlinks:   map[string]string{},
				Insecure:   true,
				Image:      spec.Image{Tag: tag, Base: tt.ref},
			}
			ge := &plan.Export{Name: e.Name, Format: format.Format("oci"), Output: "layout"}
			ge.Systems = append(ge.Systems, *greeting.System(t, "x86_64-linux", e, "greeting"))
			// podman names an image pulled from oci:DIR after DIR, which
			// must then be lower case.
			out, err := os.MkdirTemp("", "storepack-base-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(out) })
			if _, err := writeExport(&plan.Plan{}, ge, out, Options{}); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(out, "layout")
			raw := run(t, skopeo, "inspect", "--raw", "oci:"+dir+":"+tag)
			var m struct{ Layers []struct{ Digest string } }
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			base := ge.Systems[0].Image.Base
			if len(m.Layers) != len(base.Layers)+len(ge.Systems[0].Image.Layers) {
				t.Fatalf("%d layers, want the base's %d and the image's %d", len(m.Layers), len(base.Layers), len(ge.Systems[0].Image.Layers))
			}
			for j, l := range base.Layers {
				if m.Layers[j].Digest != string(l.Digest) {
					t.Errorf("layer %d is %s, want the base's %s", j, m.Layers[j].Digest, l.Digest)
				}
			}
			if tt.name == "registry" {
				// skopeo compressed the layers on their way to the
				// registry: those are the base's blobs there.
				baseManifest.Layers = nil
				if err := json.Unmarshal(run(t, skopeo, "inspect", "--raw", "--tls-verify=false", "docker://"+pinned), &baseManifest); err != nil {
					t.Fatal(err)
				}
			}
			if tt.name != "docker archive" {
				for j, l := range baseManifest.Layers {
					if m.Layers[j].Digest != l.Digest {
						t.Errorf("layer %d is %s, want the base's blob %s unchanged", j, m.Layers[j].Digest, l.Digest)
					}
				}
			}
			// The image-spec schemas accept the index, manifest and
			// config; the history starts with the base's.
			files := layoutFiles(t, dir)
			checkSchema(t, "index", "index.json", files["index.json"])
			checkSchema(t, "manifest", "manifest", raw)
			cfg := string(run(t, skopeo, "inspect", "--config", "oci:"+dir+":"+tag))
			checkSchema(t, "config", "config", []byte(cfg))
			var hist struct {
				History []struct {
					CreatedBy string `json:"created_by"`
				}
			}
			json.Unmarshal([]byte(cfg), &hist)
			if len(hist.History) != len(base.History)+len(ge.Systems[0].Image.Layers) {
				t.Errorf("%d history entries, want the base's %d and the image's %d", len(hist.History), len(base.History), len(ge.Systems[0].Image.Layers))
			} else if len(base.History) > 0 && hist.History[0].CreatedBy != base.History[0].CreatedBy {
				t.Errorf("history starts with %q, want the base's %q", hist.History[0].CreatedBy, base.History[0].CreatedBy)
			}
			for _, want := range []string{`"PATH=/bin"`, `"GREETING=from the base"`, `"EXTRA=and the spec"`} {
				if !strings.Contains(cfg, want) {
					t.Errorf("config lacks %s:\n%s", want, cfg)
				}
			}
			id := strings.TrimSpace(string(run(t, podman, "pull", "-q", "oci:"+dir+":"+tag)))
			defer exec.Command(podman, "rmi", "-f", id).Run()
			got := string(podmanRun(t, podman, "--network", "none", id))
			if want := "hello from the closure\nfrom the base and the spec\n"; got != want {
				t.Errorf("podman run printed %q, want %q", got, want)
			}

			// The same as a docker archive: the base's layers as
			// uncompressed tars, their diff ids as in the base.
			de := *e
			de.Format = format.Format("docker")
			de.Image.Tag = tag + "-docker"
			dge := &plan.Export{Name: de.Name, Format: format.Format("docker"), Output: "image.tar"}
			dge.Systems = append(dge.Systems, *greeting.System(t, "x86_64-linux", &de, "greeting"))
			file, _ := writeDockerFile(t, dge)
			dcfg := string(run(t, skopeo, "inspect", "--config", "docker-archive:"+file))
			for _, l := range base.Layers {
				if !strings.Contains(dcfg, string(l.DiffID)) {
					t.Errorf("the docker archive's config lacks the base's diff id %s", l.DiffID)
				}
			}
			run(t, podman, "load", "-i", file)
			defer exec.Command(podman, "rmi", "-f", de.Image.Tag).Run()
			if got := string(podmanRun(t, podman, "--network", "none", de.Image.Tag)); got != "hello from the closure\nfrom the base and the spec\n" {
				t.Errorf("podman run of the docker archive printed %q", got)
			}
		})
	}

	// A push of an image on the registry base: the base's blobs are there
	// already (skipped), the image runs from the registry.
	pe := &spec.Export{
		Name: "derived", Format: format.Format("oci"),
		Entrypoint: []string{"/bin/busybox", "sh", "-c", `cat ` + msg},
		Symlinks:   map[string]string{},
		Insecure:   true,
		Image:      spec.Image{Tag: "derived:1", Base: pinned},
	}
	pge := &plan.Export{Name: pe.Name, Format: format.Format("oci"), Push: host + "/team/derived:1", Insecure: true}
	pge.Systems = append(pge.Systems, *greeting.System(t, "x86_64-linux", pe, "greeting"))
	report, err := Push(context.Background(), pge, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range pge.Systems[0].Image.Base.Layers {
		if !slices.Contains(report.Skipped, l.Digest) && !slices.Contains(report.Uploaded, l.Digest) {
			t.Errorf("the push report lists no base layer %s", l.Digest)
		}
	}
	got := string(podmanRun(t, podman, "--network", "none", "--tls-verify=false", "docker://"+host+"/team/derived:1"))
	defer exec.Command(podman, "rmi", "-f", host+"/team/derived:1").Run()
	if got != "hello from the closure\n" {
		t.Errorf("podman run of the pushed image printed %q", got)
	}

	// A registry base without a digest is an error that says what to pin.
	e := &spec.Export{Name: "derived", Format: format.Format("oci"), Insecure: true, Image: spec.Image{Tag: "x:1", Base: host + "/library/busybox:1"}}
	sys := &plan.System{Name: "x86_64-linux", Closure: greeting.Items, Roots: []store.Path{greeting.ByName["greeting"]}}
	e.Systems = []spec.System{{Name: "x86_64-linux", Paths: sys.Roots}}
	_, err = gen.PlanImage(context.Background(), e, sys)
	if err == nil || !strings.Contains(err.Error(), "not pinned by digest") || !strings.Contains(err.Error(), pinned) {
		t.Errorf("an unpinned base: %v; want an error naming %s", err, pinned)
	}
}

// TestBaseMultiPlatformAndCache: a multi-platform base gives each system
// its own platform's image; with a layer cache a second export takes the
// base's blobs from the cache, the base itself gone.
func TestBaseMultiPlatformAndCache(t *testing.T) {
	skopeo := oracle.Require(t, "skopeo")
	bb := runnableItems(t)[:1]
	fs := fixture.Write(t, "/gnu/store", "", bb)
	be := &spec.Export{
		Name: "base", Format: format.Format("oci"),
		Symlinks: map[string]string{"/bin": string(fs.ByName["busybox-static"]) + "/bin"},
		Image:    spec.Image{Tag: "base:multi"},
	}
	bge := &plan.Export{Name: be.Name, Format: format.Format("oci"), Output: "base-layout"}
	for _, s := range []string{"x86_64-linux", "aarch64-linux"} {
		be.Systems = append(be.Systems, spec.System{Name: s, Paths: []store.Path{fs.ByName["busybox-static"]}})
	}
	for _, s := range []string{"x86_64-linux", "aarch64-linux"} {
		bge.Systems = append(bge.Systems, *fs.System(t, s, be, "busybox-static"))
	}
	bdir := t.TempDir()
	if _, err := writeExport(&plan.Plan{}, bge, bdir, Options{}); err != nil {
		t.Fatal(err)
	}
	ref := "oci:" + filepath.Join(bdir, "base-layout") + ":base:multi"

	greeting := fixture.Write(t, "/gnu/store", "", []fixture.Item{{Name: "greeting", Files: map[string]string{"msg": "hi\n"}}})
	e := &spec.Export{Name: "derived", Format: format.Format("oci"), Symlinks: map[string]string{}, Image: spec.Image{Tag: "derived:multi", Base: ref}}
	ge := &plan.Export{Name: e.Name, Format: format.Format("oci"), Output: "layout"}
	for _, s := range []string{"x86_64-linux", "aarch64-linux"} {
		e.Systems = append(e.Systems, spec.System{Name: s, Paths: []store.Path{greeting.ByName["greeting"]}})
	}
	for _, s := range []string{"x86_64-linux", "aarch64-linux"} {
		ge.Systems = append(ge.Systems, *greeting.System(t, s, e, "greeting"))
	}
	amd, arm := ge.Systems[0].Image.Base, ge.Systems[1].Image.Base
	if amd.Digest == arm.Digest {
		t.Errorf("both systems got the base manifest %s", amd.Digest)
	}
	for i, img := range []*plan.Image{bge.Systems[0].Image, bge.Systems[1].Image} {
		base := ge.Systems[i].Image.Base
		if base.Layers[len(base.Layers)-1].DiffID == "" || len(base.Layers) != len(img.Layers) {
			t.Errorf("system %d: the base has %d layers, want %d", i, len(base.Layers), len(img.Layers))
		}
	}

	cache, err := layercache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if _, err := writeExport(&plan.Plan{}, ge, out, Options{Cache: cache}); err != nil {
		t.Fatal(err)
	}
	first := run(t, skopeo, "inspect", "--raw", "oci:"+filepath.Join(out, "layout")+":derived:multi")
	if err := os.RemoveAll(bdir); err != nil {
		t.Fatal(err)
	}
	out2 := t.TempDir()
	if _, err := writeExport(&plan.Plan{}, ge, out2, Options{Cache: cache}); err != nil {
		t.Fatalf("a second export with the base gone and its blobs cached: %v", err)
	}
	if second := run(t, skopeo, "inspect", "--raw", "oci:"+filepath.Join(out2, "layout")+":derived:multi"); string(second) != string(first) {
		t.Errorf("the second export's index differs:\n%s\n%s", first, second)
	}
	if _, err := writeExport(&plan.Plan{}, ge, t.TempDir(), Options{}); err == nil || !strings.Contains(err.Error(), "base "+ref) {
		t.Errorf("without the base or a cache: %v; want an error naming the base", err)
	}
}
