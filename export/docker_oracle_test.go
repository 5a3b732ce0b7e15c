package export

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storepack/storepack/export/image"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/gen"
	"github.com/storepack/storepack/internal/fixture"
	"github.com/storepack/storepack/internal/oracle"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
)

// The tests here check docker archives with the real tools (ORACLES.md):
// skopeo parses them, podman loads and runs them, umoci unpacks them.
// Their images run without Nix: the closure is busybox (the static
// binary of the busybox-static package) and a script whose #! line runs
// it from the store.

const runnableOutput = "hello from storepack"

// runnableItems is a closure whose entry point prints runnableOutput and
// checks the image's /tmp and /bin.
func runnableItems(t testing.TB) []fixture.Item {
	bb := oracle.Require(t, "busybox")
	if resolved, err := filepath.EvalSymlinks(bb); err == nil {
		bb = resolved
	}
	return []fixture.Item{
		{Name: "busybox-static", Files: map[string]string{"bin/busybox": "copy:" + bb}},
		{Name: "hello-script", Refs: []string{"busybox-static"}, Files: map[string]string{
			"bin/hello": "x:#!@busybox-static@/bin/busybox sh\n" +
				"test -d /tmp -a -w /tmp || exit 3\n" +
				"echo " + runnableOutput + " \"$@\"\n",
			"share/doc/README": "a runnable fixture\n",
		}},
	}
}

// runnableExport plans an image of the runnable closure in dir.
func runnableExport(t testing.TB, dir store.Dir, tag string, maxLayers int, systems ...string) (*plan.Export, *fixture.Store) {
	t.Helper()
	f := fixture.Write(t, dir, "", runnableItems(t))
	hello := string(f.ByName["hello-script"])
	e := &spec.Export{
		Name:       "runnable",
		Format:     format.Format("docker"),
		Entrypoint: []string{hello + "/bin/hello"},
		Cmd:        []string{"from", "cmd"},
		Env:        map[string]string{"LANG": "C.UTF-8"},
		Symlinks:   map[string]string{"/bin": string(f.ByName["busybox-static"]) + "/bin"},
		Image:      spec.Image{Tag: tag, Labels: map[string]string{"org.example.test": "yes"}, MaxLayers: maxLayers},
	}
	// The spec names every system, so that each image is tagged for its
	// platform when there are several, as gen tags them.
	for _, s := range systems {
		e.Systems = append(e.Systems, spec.System{Name: s})
	}
	out := &plan.Export{Name: e.Name, Format: e.Format}
	for _, s := range systems {
		out.Systems = append(out.Systems, *f.System(t, s, e, "hello-script"))
	}
	return out, f
}

// writeDockerFile writes e to a file in a temporary folder and returns
// its path and the images.
func writeDockerFile(t testing.TB, e *plan.Export) (string, *image.Set) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "image.tar")
	b, imgs := writeDockerBytes(t, e)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, imgs
}

func run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

// podmanRun runs `podman run ARGS...` (oracle.PodmanRun) and returns its
// standard output; it fails the test when podman fails.
func podmanRun(t testing.TB, podman string, args ...string) []byte {
	t.Helper()
	out, stderr, err := oracle.PodmanRun(podman, args...)
	if err != nil {
		t.Fatalf("podman run %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return out
}

func TestDockerSkopeoInspect(t *testing.T) {
	skopeo := oracle.Require(t, "skopeo")
	tests := []struct {
		name      string
		dir       store.Dir
		maxLayers int
		systems   []string
	}{
		{"nix", "/nix/store", 0, []string{"x86_64-linux"}},
		{"gnu single layer", "/gnu/store", 1, []string{"x86_64-linux"}},
		{"gnu two systems", "/gnu/store", 2, []string{"x86_64-linux", "aarch64-linux"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := runnableExport(t, tt.dir, "localhost/runnable:1.0", tt.maxLayers, tt.systems...)
			file, imgs := writeDockerFile(t, e)
			for j, sys := range e.Systems {
				img := sys.Image
				ref := "docker-archive:" + file
				if len(e.Systems) > 1 {
					ref += ":" + img.Tag
				}
				var got struct {
					Architecture, Os, Variant string
					Layers                    []string
					Env                       []string
					Labels                    map[string]string
					RepoTags                  []string
				}
				if err := json.Unmarshal(run(t, skopeo, "inspect", ref), &got); err != nil {
					t.Fatal(err)
				}
				if got.Architecture != img.Platform.Architecture || got.Os != "linux" || got.Labels["org.example.test"] != "yes" {
					t.Errorf("%s: inspect says %s/%s labels %v; want %s/linux", sys.Name, got.Architecture, got.Os, got.Labels, img.Platform.Architecture)
				}
				if len(got.Layers) != len(img.Layers) {
					t.Errorf("%s: %d layers, want %d", sys.Name, len(got.Layers), len(img.Layers))
				}
				for i := range got.Layers {
					if i < len(img.Layers) && got.Layers[i] != string(imgs.Images[j].Blobs[i].DiffID) {
						t.Errorf("%s: layer %d is %s, want %s", sys.Name, i, got.Layers[i], imgs.Images[j].Blobs[i].DiffID)
					}
				}
				var cfg struct {
					Config struct{ Entrypoint, Cmd, Env []string }
				}
				if err := json.Unmarshal(run(t, skopeo, "inspect", "--config", ref), &cfg); err != nil {
					t.Fatal(err)
				}
				if strings.Join(cfg.Config.Entrypoint, " ") != strings.Join(img.Config.Entrypoint, " ") ||
					strings.Join(cfg.Config.Cmd, " ") != "from cmd" || strings.Join(cfg.Config.Env, " ") != "LANG=C.UTF-8" {
					t.Errorf("%s: config %+v", sys.Name, cfg.Config)
				}
			}
		})
	}
}

func TestDockerPodmanRun(t *testing.T) {
	podman := oracle.Require(t, "podman")
	oracle.Require(t, "runc")
	tests := []struct {
		name      string
		dir       store.Dir
		maxLayers int
	}{
		{"nix", "/nix/store", 0},
		{"gnu", "/gnu/store", 0},
		{"gnu single layer", "/gnu/store", 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tag := "localhost/storepack-test-podman:" + string(rune('a'+i))
			e, _ := runnableExport(t, tt.dir, tag, tt.maxLayers, "x86_64-linux")
			file, _ := writeDockerFile(t, e)
			run(t, podman, "load", "-i", file)
			defer exec.Command(podman, "rmi", "-f", tag).Run()
			out := strings.TrimSpace(string(podmanRun(t, podman, "--network", "none", tag)))
			if want := runnableOutput + " from cmd"; out != want {
				t.Errorf("podman run printed %q, want %q", out, want)
			}
			// The /bin symlink works as a PATH entry.
			out = strings.TrimSpace(string(podmanRun(t, podman, "--network", "none", "--entrypoint", "/bin/busybox", tag, "readlink", "/bin")))
			if want := string(e.Systems[0].Closure[0].Path) + "/bin"; !strings.HasSuffix(out, "-busybox-static/bin") {
				t.Errorf("readlink /bin printed %q, want %q", out, want)
			}
		})
	}
}

func TestDockerUmociUnpack(t *testing.T) {
	skopeo := oracle.Require(t, "skopeo")
	umoci := oracle.Require(t, "umoci")
	for _, dir := range []store.Dir{"/nix/store", "/gnu/store"} {
		t.Run(string(dir), func(t *testing.T) {
			e, f := runnableExport(t, dir, "localhost/runnable:1.0", 0, "x86_64-linux")
			// The hello fixture adds hard links, long and non-ASCII names.
			more := fixture.Write(t, dir, f.Root, fixture.Hello())
			e.Systems[0].Closure = append(e.Systems[0].Closure, more.Items...)
			sys := &e.Systems[0]
			spe := &spec.Export{Name: "runnable", Format: format.Format("docker"), Image: spec.Image{Tag: "localhost/runnable:1.0"}}
			img, err := gen.PlanImage(context.Background(), spe, sys)
			if err != nil {
				t.Fatal(err)
			}
			sys.Image = img
			file, _ := writeDockerFile(t, e)
			tmp := t.TempDir()
			layout, bundle := filepath.Join(tmp, "oci"), filepath.Join(tmp, "bundle")
			run(t, skopeo, "copy", "docker-archive:"+file, "oci:"+layout+":test")
			run(t, umoci, "unpack", "--image", layout+":test", bundle)
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
			fi, err := os.Lstat(filepath.Join(rootfs, "tmp"))
			if err != nil || fi.Mode()&fs.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
				t.Errorf("/tmp: %v, %v; want a sticky 0777 folder", fi, err)
			}
		})
	}
}

// compareTrees checks that got (unpacked from an image) holds what want
// (a store item's source) holds: same types, contents, executable bits and
// link targets, and nothing more.
func compareTrees(t *testing.T, want, got string) {
	t.Helper()
	seen := 0
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		seen++
		rel, _ := filepath.Rel(want, p)
		g := filepath.Join(got, rel)
		wi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		gi, err := os.Lstat(g)
		if err != nil {
			t.Errorf("%s: missing from the image: %v", rel, err)
			return nil
		}
		if wi.Mode().Type() != gi.Mode().Type() {
			t.Errorf("%s: type %v in the image, %v in the store", g, gi.Mode().Type(), wi.Mode().Type())
			return nil
		}
		switch {
		case wi.Mode().IsRegular():
			wb, _ := os.ReadFile(p)
			gb, _ := os.ReadFile(g)
			if !bytes.Equal(wb, gb) {
				t.Errorf("%s: contents differ", g)
			}
			if (wi.Mode()&0o100 != 0) != (gi.Mode()&0o100 != 0) {
				t.Errorf("%s: mode %v in the image, %v in the store", g, gi.Mode(), wi.Mode())
			}
		case wi.Mode()&fs.ModeSymlink != 0:
			wt, _ := os.Readlink(p)
			gt, _ := os.Readlink(g)
			if wt != gt {
				t.Errorf("%s: target %q in the image, %q in the store", g, gt, wt)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	filepath.WalkDir(got, func(string, fs.DirEntry, error) error { count++; return nil })
	if count != seen {
		t.Errorf("%s: %d entries in the image, %d in the store", got, count, seen)
	}
}
