package export

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/gen"
	"github.com/storepack/storepack/internal/nixtest"
	"github.com/storepack/storepack/internal/oracle"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
)

// TestOCINixClosure checks OCI images of a real Nix closure, in a
// /nix/store and a /gnu/store layout: umoci unpacks the layout to the
// closure's files, podman loads the oci-archive and runs its entry point.
func TestOCINixClosure(t *testing.T) {
	umoci := oracle.Require(t, "umoci")
	podman := oracle.Require(t, "podman")
	oracle.Require(t, "runc")
	nixtest.ForEachLayout(t, func(t *testing.T, c *nixtest.Closure) {
		tag := "localhost/storepack-ocinix-" + c.Layout.String() + ":1"
		e := nixSystem(t, c, tag, 0)
		sys := &e.Systems[0]
		spe := &spec.Export{
			Name: "nixtest", Format: format.Format("oci"),
			Systems:    []spec.System{{Name: sys.Name, Paths: sys.Roots}},
			Entrypoint: []string{c.HelloScript}, Image: spec.Image{Tag: tag, Compression: "gzip"},
		}
		img, err := gen.PlanImage(context.Background(), spe, sys)
		if err != nil {
			t.Fatal(err)
		}
		sys.Image = img
		e.Format = format.Format("oci")
		layout, archive, imgs := writeOCIOutputs(t, e)
		checkLayout(t, e, imgs.Images, layoutFiles(t, layout))

		bundle := filepath.Join(t.TempDir(), "bundle")
		run(t, umoci, "unpack", "--image", layout+":"+tag, bundle)
		for _, it := range sys.Closure {
			compareTrees(t, it.FSPath, filepath.Join(bundle, "rootfs", string(it.Path)))
		}

		exec.Command(podman, "rmi", "-f", tag).Run()
		defer exec.Command(podman, "rmi", "-f", tag).Run()
		if out := string(run(t, podman, "load", "-i", archive)); !strings.Contains(out, tag) {
			t.Errorf("podman load printed %q, want it to name %s", out, tag)
		}
		if out := string(podmanRun(t, podman, "--network", "none", tag)); out != nixtest.HelloOutput {
			t.Errorf("podman run printed %q, want %q", out, nixtest.HelloOutput)
		}
	})
}

// TestImageDatabase checks database = true on images of a real Nix
// closure, in both layouts and with both image formats: the top layer
// holds the store database, and on the rootfs umoci unpacks, the entry
// point runs under chroot, Nix verifies the database and lists the
// closure from it.
func TestImageDatabase(t *testing.T) {
	oracle.RequireRoot(t)
	umoci := oracle.Require(t, "umoci")
	skopeo := oracle.Require(t, "skopeo")
	oracle.Require(t, "chroot")
	nixtest.ForEachLayout(t, func(t *testing.T, c *nixtest.Closure) {
		for _, f := range format.OfKind(format.Image) {
			sys := nixClosure(t, c)
			spe := &spec.Export{
				Name: "nixtest", Format: f, Database: true,
				Systems:    []spec.System{{Name: sys.Name, Paths: sys.Roots}},
				Entrypoint: []string{c.HelloScript}, Image: spec.Image{Tag: "localhost/storepack-db:1", MaxLayers: 4},
			}
			img, err := gen.PlanImage(context.Background(), spe, &sys)
			if err != nil {
				t.Fatal(err)
			}
			sys.Image = img
			e := &plan.Export{Name: spe.Name, Format: f, Output: "nixtest", Systems: []plan.System{sys}}
			layout := filepath.Join(t.TempDir(), "layout")
			if f == format.Format("docker") {
				file, _ := writeDockerFile(t, e)
				run(t, skopeo, "copy", "docker-archive:"+file, "oci:"+layout+":db")
			} else {
				var err error
				if _, err = writeOCILayout(layout, job{e: e}); err != nil {
					t.Fatal(err)
				}
				run(t, skopeo, "copy", "oci:"+layout+":localhost/storepack-db:1", "oci:"+layout+":db")
			}
			bundle := filepath.Join(t.TempDir(), "bundle")
			run(t, umoci, "unpack", "--image", layout+":db", bundle)
			checkNixTree(t, c, filepath.Join(bundle, "rootfs"), &plan.System{Closure: sys.Closure, Tree: &plan.TreeOutput{Tree: img.Layers[len(img.Layers)-1].Tree}}, []string{c.HelloScript})
		}
	})
}
