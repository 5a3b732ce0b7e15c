package export

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/gen"
	"github.com/storepack/storepack/internal/nixtest"
	"github.com/storepack/storepack/internal/oracle"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
)

// nixSystem describes a real Nix-built closure (internal/nixtest) as
// `nix-store -q` reports it, and plans its image, entry point bin/hello.
func nixSystem(t *testing.T, c *nixtest.Closure, tag string, maxLayers int) *plan.Export {
	t.Helper()
	sys := nixClosure(t, c)
	e := &spec.Export{
		Name: "nixtest", Format: format.Format("docker"),
		Systems:    []spec.System{{Name: sys.Name, Paths: sys.Roots}},
		Entrypoint: []string{c.HelloScript}, Image: spec.Image{Tag: tag, MaxLayers: maxLayers},
	}
	img, err := gen.PlanImage(context.Background(), e, &sys)
	if err != nil {
		t.Fatal(err)
	}
	sys.Image = img
	return &plan.Export{Name: e.Name, Format: e.Format, Systems: []plan.System{sys}}
}

// nixClosure describes a real Nix-built closure (internal/nixtest) as
// `nix-store -q` reports it: the closure of a system, not yet planned.
func nixClosure(t testing.TB, c *nixtest.Closure) plan.System {
	t.Helper()
	sys := plan.System{Name: "x86_64-linux", Roots: []store.Path{store.Path(c.Root)}, ClosureDigest: digest.Digest("sha256:" + strings.Repeat("0", 64))}
	for _, p := range c.Paths(t) {
		it := plan.Item{Path: store.Path(p), FSPath: p, References: []store.Path{}}
		h, err := store.ParseHash(strings.TrimSpace(string(c.Output(t, "nix-store", "-q", "--hash", p))))
		if err != nil {
			t.Fatal(err)
		}
		it.NarHash = h
		it.NarSize = nixSize(t, c, p)
		if d := strings.TrimSpace(string(c.Output(t, "nix-store", "-q", "--deriver", p))); d != "unknown-deriver" {
			it.Deriver = d
		}
		for _, r := range c.Lines(t, "nix-store", "-q", "--references", p) {
			it.References = append(it.References, store.Path(r))
		}
		sys.Closure = append(sys.Closure, it)
	}
	return sys
}

// nixSize is the NAR size of p as Nix records it.
func nixSize(t testing.TB, c *nixtest.Closure, p string) int64 {
	t.Helper()
	out := strings.TrimSpace(string(c.Output(t, "nix-store", "-q", "--size", p)))
	n, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		t.Fatalf("nix-store -q --size %s: %q", p, out)
	}
	return n
}

// TestDockerNixClosure checks images of a real Nix closure, in a /nix/store
// and a /gnu/store layout, with skopeo, podman and umoci.
func TestDockerNixClosure(t *testing.T) {
	skopeo := oracle.Require(t, "skopeo")
	umoci := oracle.Require(t, "umoci")
	podman := oracle.Require(t, "podman")
	oracle.Require(t, "runc")
	nixtest.ForEachLayout(t, func(t *testing.T, c *nixtest.Closure) {
		for _, maxLayers := range []int{0, 4} {
			tag := "localhost/storepack-nixtest-" + c.Layout.String() + ":" + strings.Repeat("m", maxLayers+1)
			e := nixSystem(t, c, tag, maxLayers)
			sys := &e.Systems[0]
			file, _ := writeDockerFile(t, e)

			var got struct {
				Architecture, Os string
				Layers           []string
			}
			if err := json.Unmarshal(run(t, skopeo, "inspect", "docker-archive:"+file), &got); err != nil {
				t.Fatal(err)
			}
			wantLayers := len(sys.Closure) + 1
			if maxLayers != 0 {
				wantLayers = maxLayers
			}
			if got.Architecture != "amd64" || got.Os != "linux" || len(got.Layers) != wantLayers {
				t.Errorf("max_layers %d: skopeo inspect: %s/%s, %d layers; want amd64/linux, %d", maxLayers, got.Architecture, got.Os, len(got.Layers), wantLayers)
			}

			run(t, podman, "load", "-i", file)
			out := string(podmanRun(t, podman, "--network", "none", tag))
			exec.Command(podman, "rmi", "-f", tag).Run()
			if out != nixtest.HelloOutput {
				t.Errorf("max_layers %d: podman run printed %q, want %q", maxLayers, out, nixtest.HelloOutput)
			}

			tmp := t.TempDir()
			layout, bundle := filepath.Join(tmp, "oci"), filepath.Join(tmp, "bundle")
			run(t, skopeo, "copy", "docker-archive:"+file, "oci:"+layout+":test")
			run(t, umoci, "unpack", "--image", layout+":test", bundle)
			rootfs := filepath.Join(bundle, "rootfs")
			for _, it := range sys.Closure {
				compareTrees(t, it.FSPath, filepath.Join(rootfs, string(it.Path)))
			}
			entries, err := os.ReadDir(filepath.Join(rootfs, c.StoreDir))
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != len(sys.Closure) {
				t.Errorf("%s holds %d entries, the closure %d items", c.StoreDir, len(entries), len(sys.Closure))
			}
		}
	})
}
