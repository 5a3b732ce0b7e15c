package export

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/export/image"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/gen"
	"github.com/storepack/storepack/internal/fixture"
	"github.com/storepack/storepack/internal/oracle"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
)

// The tests here check OCI layouts and archives with the real tools
// (ORACLES.md): skopeo reads them, umoci unpacks them, podman loads and
// runs them. The images are the runnable busybox closure of
// docker_oracle_test.go.

// runnableOCI plans an oci export of the runnable closure in dir.
func runnableOCI(t testing.TB, dir store.Dir, tag string, compression format.Compression, systems ...string) (*plan.Export, *fixture.Store) {
	t.Helper()
	f := fixture.Write(t, dir, "", runnableItems(t))
	hello := string(f.ByName["hello-script"])
	e := &spec.Export{
		Name:       "runnable",
		Format:     format.Format("oci"),
		Entrypoint: []string{hello + "/bin/hello"},
		Cmd:        []string{"from", "cmd"},
		Env:        map[string]string{"LANG": "C.UTF-8"},
		Symlinks:   map[string]string{"/bin": string(f.ByName["busybox-static"]) + "/bin"},
		Image:      spec.Image{Tag: tag, Compression: compression},
	}
	for _, s := range systems {
		e.Systems = append(e.Systems, spec.System{Name: s, Paths: []store.Path{f.ByName["hello-script"]}})
	}
	out := &plan.Export{Name: e.Name, Format: e.Format}
	for _, s := range systems {
		out.Systems = append(out.Systems, *f.System(t, s, e, "hello-script"))
	}
	return out, f
}

// writeOCIOutputs writes e as a layout folder and as an oci-archive
// through writeExport, returning both paths and e's images as
// image.Digest computes them.
func writeOCIOutputs(t testing.TB, e *plan.Export) (dir, archive string, imgs *image.Set) {
	t.Helper()
	out := t.TempDir()
	for _, o := range []string{"layout", "image.tar"} {
		e.Output = o
		if _, err := writeExport(&plan.Plan{}, e, out, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	imgs, err := image.Digest(e, nil)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(out, "layout"), filepath.Join(out, "image.tar"), imgs
}

func TestOCISkopeoInspect(t *testing.T) {
	skopeo := oracle.Require(t, "skopeo")
	tests := []struct {
		name        string
		compression format.Compression
		systems     []string
	}{
		{"one system none", "none", []string{"x86_64-linux"}},
		{"one system gzip", "gzip", []string{"x86_64-linux"}},
		{"one system zstd", "zstd", []string{"aarch64-linux"}},
		{"three systems gzip", "gzip", []string{"x86_64-linux", "aarch64-linux", "armhf-linux"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := runnableOCI(t, "/gnu/store", "localhost/runnable:1.0", tt.compression, tt.systems...)
			dir, archive, imgs := writeOCIOutputs(t, e)
			for _, ref := range []string{"oci:" + dir, "oci-archive:" + archive, "oci:" + dir + ":localhost/runnable:1.0"} {
				raw := run(t, skopeo, "inspect", "--raw", ref)
				var m struct {
					MediaType string
					Manifests []ocispec.Descriptor
					Layers    []ocispec.Descriptor
				}
				if err := json.Unmarshal(raw, &m); err != nil {
					t.Fatal(err)
				}
				if len(e.Systems) == 1 {
					img := imgs.Images[0]
					if digest.FromBytes(raw) != img.ManifestDigest || m.MediaType != ocispec.MediaTypeImageManifest || len(m.Layers) != len(img.Blobs) {
						t.Errorf("%s: %s with %d layers, want the manifest %s", ref, m.MediaType, len(m.Layers), img.ManifestDigest)
					}
					continue
				}
				if m.MediaType != ocispec.MediaTypeImageIndex || len(m.Manifests) != len(e.Systems) {
					t.Fatalf("%s: %s with %d manifests, want an index of %d", ref, m.MediaType, len(m.Manifests), len(e.Systems))
				}
				for i, d := range m.Manifests {
					img, plan := imgs.Images[i], e.Systems[i].Image
					if d.Digest != img.ManifestDigest || d.Platform == nil || d.Platform.Architecture != plan.Platform.Architecture || d.Platform.Variant != plan.Platform.Variant {
						t.Errorf("%s: manifest %d is %+v, want %s for %+v", ref, i, d, img.ManifestDigest, plan.Platform)
					}
				}
			}
			// skopeo picks each system's image out of the layout; its
			// Digest is that of what the reference names: the index when
			// there is one.
			top := imgs.Root().Digest
			for j, sys := range e.Systems {
				p := sys.Image.Platform
				args := []string{"inspect", "--override-os", "linux", "--override-arch", p.Architecture}
				if p.Variant != "" {
					args = append(args, "--override-variant", p.Variant)
				}
				var got struct {
					Digest       digest.Digest
					Architecture string
					Layers       []string
				}
				if err := json.Unmarshal(run(t, skopeo, append(args, "oci:"+dir)...), &got); err != nil {
					t.Fatal(err)
				}
				if got.Digest != top || got.Architecture != p.Architecture || len(got.Layers) != len(sys.Image.Layers) {
					t.Errorf("%s: inspect says %s %s %d layers; want %s %s %d", sys.Name, got.Digest, got.Architecture, len(got.Layers), top, p.Architecture, len(sys.Image.Layers))
				}
				for i, l := range got.Layers {
					if l != string(imgs.Images[j].Blobs[i].Digest) {
						t.Errorf("%s: layer %d is %s, want %s", sys.Name, i, l, imgs.Images[j].Blobs[i].Digest)
					}
				}
			}
		})
	}
}

// TestOCIUmociUnpack unpacks layouts with umoci and compares the root file
// system with the store. Debian's umoci (0.4.7) predates zstd layers:
// zstd layouts are first converted by skopeo (which decompresses them) to
// gzip ones.
func TestOCIUmociUnpack(t *testing.T) {
	umoci := oracle.Require(t, "umoci")
	skopeo := oracle.Require(t, "skopeo")
	for _, compression := range []format.Compression{format.None, format.Gzip, format.Zstd} {
		for _, dir := range []store.Dir{"/nix/store", "/gnu/store"} {
			t.Run(string(compression)+string(dir), func(t *testing.T) {
				e, f := runnableOCI(t, dir, "localhost/runnable:1.0", compression, "x86_64-linux")
				more := fixture.Write(t, dir, f.Root, fixture.Hello())
				sys := &e.Systems[0]
				sys.Closure = append(sys.Closure, more.Items...)
				spe := &spec.Export{Name: "runnable", Format: format.Format("oci"), Image: spec.Image{Tag: "localhost/runnable:1.0", Compression: compression}}
				img, err := gen.PlanImage(context.Background(), spe, sys)
				if err != nil {
					t.Fatal(err)
				}
				sys.Image = img
				layout, _, _ := writeOCIOutputs(t, e)
				if compression == "zstd" {
					gz := filepath.Join(t.TempDir(), "gzip")
					run(t, skopeo, "copy", "--dest-compress-format", "gzip", "oci:"+layout+":localhost/runnable:1.0", "oci:"+gz+":localhost/runnable:1.0")
					layout = gz
				}
				bundle := filepath.Join(t.TempDir(), "bundle")
				run(t, umoci, "unpack", "--image", layout+":localhost/runnable:1.0", bundle)
				rootfs := filepath.Join(bundle, "rootfs")
				for _, it := range sys.Closure {
					compareTrees(t, it.FSPath, filepath.Join(rootfs, string(it.Path)))
				}
				entries, err := os.ReadDir(filepath.Join(rootfs, string(dir)))
				if err != nil {
					t.Fatal(err)
				}
				if len(entries) != len(sys.Closure) {
					t.Errorf("%s holds %d entries, the closure %d items", dir, len(entries), len(sys.Closure))
				}
			})
		}
	}
}

// TestOCIPodmanRun loads an oci-archive into podman and runs it, and runs
// a docker archive pulled through the oci-archive transport.
func TestOCIPodmanRun(t *testing.T) {
	podman := oracle.Require(t, "podman")
	oracle.Require(t, "runc")
	tests := []struct {
		name        string
		compression format.Compression
		how         string // load: podman load -i; pull: podman pull oci-archive:
		docker      bool
	}{
		{"oci-archive gzip load", "gzip", "load", false},
		{"oci-archive zstd pull", "zstd", "pull", false},
		{"docker archive as oci-archive", "", "pull", true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tag := "localhost/storepack-test-oci:" + string(rune('a'+i))
			var file string
			if tt.docker {
				e, _ := runnableExport(t, "/gnu/store", tag, 0, "x86_64-linux")
				file, _ = writeDockerFile(t, e)
			} else {
				e, _ := runnableOCI(t, "/gnu/store", tag, tt.compression, "x86_64-linux")
				_, file, _ = writeOCIOutputs(t, e)
			}
			exec.Command(podman, "rmi", "-f", tag).Run()
			defer exec.Command(podman, "rmi", "-f", tag).Run()
			switch tt.how {
			case "load":
				out := string(run(t, podman, "load", "-i", file))
				if !strings.Contains(out, tag) {
					t.Errorf("podman load printed %q, want it to name %s", out, tag)
				}
			case "pull":
				run(t, podman, "pull", "oci-archive:"+file)
			}
			out := strings.TrimSpace(string(podmanRun(t, podman, "--network", "none", tag)))
			if want := runnableOutput + " from cmd"; out != want {
				t.Errorf("podman run printed %q, want %q", out, want)
			}
		})
	}
}

// TestOCIUmociMultiSystem: umoci 0.4.7 unpacks a tag that names one
// manifest; a multi-system layout's tag names an index, so each system's
// image is first copied out by skopeo (choosing by platform), as
// docs/oci.md says, and unpacked from there.
func TestOCIUmociMultiSystem(t *testing.T) {
	umoci := oracle.Require(t, "umoci")
	skopeo := oracle.Require(t, "skopeo")
	e, _ := runnableOCI(t, "/nix/store", "localhost/runnable:1.0", "gzip", "x86_64-linux", "aarch64-linux")
	layout, _, imgs := writeOCIOutputs(t, e)
	for j, sys := range e.Systems {
		p := sys.Image.Platform
		one := filepath.Join(t.TempDir(), "one")
		run(t, skopeo, "copy", "--override-os", "linux", "--override-arch", p.Architecture, "oci:"+layout+":localhost/runnable:1.0", "oci:"+one+":"+sys.Image.Tag)
		var m ocispec.Manifest
		if err := json.Unmarshal(run(t, skopeo, "inspect", "--raw", "oci:"+one), &m); err != nil {
			t.Fatal(err)
		}
		if len(m.Layers) != len(sys.Image.Layers) || m.Layers[0].Digest != imgs.Images[j].Blobs[0].Digest {
			t.Errorf("%s: skopeo copied %+v, want the layers of %s", sys.Name, m.Layers, imgs.Images[j].ManifestDigest)
		}
		bundle := filepath.Join(t.TempDir(), "bundle")
		run(t, umoci, "unpack", "--image", one+":"+sys.Image.Tag, bundle)
		for _, it := range sys.Closure {
			compareTrees(t, it.FSPath, filepath.Join(bundle, "rootfs", string(it.Path)))
		}
	}
}
