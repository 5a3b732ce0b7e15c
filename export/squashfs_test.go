package export

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/fixture"
	"github.com/storepack/storepack/internal/nixtest"
	"github.com/storepack/storepack/internal/oracle"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
)

// helloSquashfs plans a squashfs image of the Hello fixture's hello-2.12 in
// /gnu/store, compressed as c, with the store database, an entry point,
// cmd and env.
func helloSquashfs(t testing.TB, root string, c format.Compression) *plan.Export {
	t.Helper()
	hello := string(fixture.StorePath("/gnu/store", "hello-2.12"))
	e, _ := treeExport(t, format.Format("squashfs"), "/gnu/store", root, fixture.Hello(), []string{"hello-2.12"}, func(e *spec.Export) {
		e.Compression, e.Database = c, true
		e.Entrypoint = []string{hello + "/bin/hello", "--from", "it's"}
		e.Cmd = []string{"default arg"}
		e.Env = map[string]string{"LANG": "C.UTF-8", "GREETING": "a 'quoted' $value"}
	})
	return e
}

// unsquash extracts an image with unsquashfs into a new folder.
func unsquash(t testing.TB, file string) string {
	t.Helper()
	unsquashfs := oracle.Require(t, "unsquashfs")
	dir := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command(unsquashfs, "-no-xattrs", "-d", dir, file).CombinedOutput(); err != nil {
		t.Fatalf("unsquashfs -d: %v\n%s", err, out)
	}
	return dir
}

// TestSquashfs writes the image in every compression: unsquashfs -s shows
// the compression, unsquashfs extracts it, the items are NAR-identical and
// the store database registers them, and the Apptainer layout is there: a
// runscript that execs the entry point and cmd with its arguments, the
// environment, the mount points.
func TestSquashfs(t *testing.T) {
	unsquashfs := oracle.Require(t, "unsquashfs")
	for _, c := range format.Format("squashfs").Def().Compressions {
		t.Run(string(c), func(t *testing.T) {
			e := helloSquashfs(t, "", c)
			file := writeTreeFile(t, e)
			if filepath.Base(file) != "hello.squashfs" {
				t.Errorf("output %s", filepath.Base(file))
			}
			out, err := exec.Command(unsquashfs, "-s", file).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Compression "+string(c)+"\n") {
				t.Errorf("unsquashfs -s: %v\n%s", err, out)
			}
			dir := unsquash(t, file)
			checkItemsIdentical(t, dir, e.Systems[0].Closure)
			checkTreeDB(t, dir, "/gnu/store", e.Systems[0].Closure)
			hello := string(fixture.StorePath("/gnu/store", "hello-2.12"))
			for name, want := range map[string]string{
				".singularity.d/runscript":             "#!/bin/sh\n. /.singularity.d/env/90-environment.sh\nexec '" + hello + "/bin/hello' '--from' 'it'\\''s' 'default arg' \"$@\"\n",
				".singularity.d/env/90-environment.sh": "#!/bin/sh\nexport GREETING='a '\\''quoted'\\'' $value'\nexport LANG='C.UTF-8'\n",
			} {
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil || string(b) != want {
					t.Errorf("%s: %q (%v), want %q", name, b, err, want)
				}
				if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != 0o755 {
					t.Errorf("%s: mode %v", name, fi.Mode())
				}
			}
			for _, mp := range []string{"dev", "etc", "home", "proc", "sys", "tmp", ".singularity.d/actions", ".singularity.d/libs"} {
				if fi, err := os.Stat(filepath.Join(dir, mp)); err != nil || !fi.IsDir() {
					t.Errorf("mount point /%s: %v", mp, err)
				}
			}
			if fi, err := os.Stat(filepath.Join(dir, "tmp")); err == nil && fi.Mode()&os.ModeSticky == 0 {
				t.Errorf("/tmp: mode %v, want the sticky bit", fi.Mode())
			}
			// The image's listing is the tree's.
			listing, err := exec.Command(unsquashfs, "-lls", file).Output()
			if err != nil {
				t.Fatal(err)
			}
			compareGolden(t, "testdata/squashfs", map[string]string{"listing": squashfsListing(string(listing))})
		})
	}
}

// squashfsListing keeps the names and modes of unsquashfs -lls, one a line,
// the rest (owners, sizes, times) checked elsewhere.
func squashfsListing(lls string) string {
	var b strings.Builder
	for _, l := range strings.Split(lls, "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || !strings.Contains(l, "squashfs-root") {
			continue
		}
		name := strings.TrimPrefix(strings.Join(f[5:], " "), "squashfs-root")
		fmt.Fprintf(&b, "%s %s %s\n", f[0], f[1], name)
	}
	return b.String()
}

// TestSquashfsReproducible: the same image whatever the umask, time zone,
// working folder, GOMAXPROCS, owners and mtimes of the files.
func TestSquashfsReproducible(t *testing.T) {
	checkTreeReproducible(t, func(t testing.TB, root string) *plan.Export { return helloSquashfs(t, root, format.Gzip) })
}

// TestSquashfsNixClosure checks images of a real Nix closure, in the
// /nix/store and /gnu/store layouts: unsquashfs extracts each, the
// runscript runs the entry point under chroot, every item is
// NAR-identical to the store's, and Nix verifies the database.
func TestSquashfsNixClosure(t *testing.T) {
	oracle.RequireRoot(t)
	oracle.Require(t, "chroot")
	nixtest.ForEachLayout(t, func(t *testing.T, c *nixtest.Closure) {
		for _, comp := range format.Format("squashfs").Def().Compressions {
			e := nixTree(t, c, format.Format("squashfs"), func(e *spec.Export) {
				e.Compression = comp
				// The runscript's /bin/sh.
				e.Symlinks = map[string]string{"/bin/sh": c.Items[nixtest.Busybox] + "/bin/busybox"}
			})
			dir := unsquash(t, writeTreeFile(t, e))
			checkNixTree(t, c, dir, &e.Systems[0], []string{"/.singularity.d/runscript"})
		}
	})
}

// TestSquashfsMount mounts an image with the kernel's squashfs (as
// Apptainer does) and runs its runscript from the mount.
func TestSquashfsMount(t *testing.T) {
	oracle.RequireRoot(t)
	oracle.Require(t, "chroot")
	nixtest.ForEachLayout(t, func(t *testing.T, c *nixtest.Closure) {
		e := nixTree(t, c, format.Format("squashfs"), func(e *spec.Export) {
			e.Symlinks = map[string]string{"/bin/sh": c.Items[nixtest.Busybox] + "/bin/busybox"}
		})
		file := writeTreeFile(t, e)
		mnt := t.TempDir()
		if out, err := exec.Command("mount", "-t", "squashfs", "-o", "loop,ro", file, mnt).CombinedOutput(); err != nil {
			t.Skipf("cannot mount a squashfs image on a loop device here: %v: %s", err, out)
		}
		defer exec.Command("umount", mnt).Run()
		out, err := exec.Command("chroot", mnt, "/.singularity.d/runscript").CombinedOutput()
		if err != nil || string(out) != nixtest.HelloOutput {
			t.Errorf("runscript in the mounted image: %v, %q", err, out)
		}
		for _, it := range e.Systems[0].Closure {
			want := c.Output(t, "nix-store", "--dump", string(it.Path))
			if got := c.Output(t, "nix-store", "--dump", filepath.Join(mnt, string(it.Path))); string(got) != string(want) {
				t.Errorf("%s: the mounted image's NAR differs from the store's", it.Path)
			}
		}
	})
}
