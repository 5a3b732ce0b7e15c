package storepack

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/storepack/storepack/internal/fixture"
	"github.com/storepack/storepack/internal/oracle"
)

// testCache is a cache folder of the test's own, where exports write
// their profiles (profiles/) instead of the user's cache.
func testCache(t *testing.T) string {
	return t.TempDir()
}

// profileSpec writes a spec exporting a profile of busybox and two
// programs, a and b, from a fake /gnu/store, as a docker image, a tarball
// and a squashfs image; it returns the spec folder.
func profileSpec(t *testing.T) string {
	t.Helper()
	bb := oracle.Require(t, "busybox")
	if r, err := filepath.EvalSymlinks(bb); err == nil {
		bb = r
	}
	dir := t.TempDir()
	items := []fixture.Item{
		{Name: "busybox-static", Files: map[string]string{"bin/busybox": "copy:" + bb, "bin/sh": "-> busybox"}},
		{Name: "tool-a", Refs: []string{"busybox-static"}, Files: map[string]string{"bin/a": "x:#!@busybox-static@/bin/sh\necho a from $0\n", "share/doc/a": "a"}},
		{Name: "tool-b", Refs: []string{"busybox-static"}, Files: map[string]string{"bin/b": "x:#!@busybox-static@/bin/sh\necho b\n", "share/man/man1/b.1": "b"}},
	}
	store := filepath.Join(dir, "root", "gnu", "store")
	must(t, os.MkdirAll(store, 0o755))
	f := fixture.Write(t, "/gnu/store", store, items)
	spec := `store {
  dir  = "/gnu/store"
  root = "root"
  db   = "none"
}

locals {
  paths = ["` + string(f.ByName["busybox-static"]) + `", "` + string(f.ByName["tool-a"]) + `", "` + string(f.ByName["tool-b"]) + `"]
}

export "image" {
  format  = "docker"
  paths   = local.paths
  systems = ["x86_64-linux"]
  profile = true
  tag     = "localhost/storepack-profile:1"
  entrypoint = ["bin/sh", "-c"]
  cmd     = ["a; b"]
}

export "tarball" {
  format   = "tarball"
  paths    = local.paths
  systems  = ["x86_64-linux"]
  profile  = true
  database = true
  symlinks = { "/opt/gnu/bin" = "bin", "/bin" = "bin" }
}

export "squashfs" {
  format     = "squashfs"
  paths      = local.paths
  systems    = ["x86_64-linux"]
  profile    = true
  entrypoint = ["bin/sh", "-c", "echo $PATH; echo $MANPATH; a"]
}
`
	must(t, os.WriteFile(filepath.Join(dir, "storepack.hcl"), []byte(spec), 0o644))
	return dir
}

// TestProfilePacks: the programs of several paths found through the
// profile: podman runs `sh -c 'a; b'` with PATH from the image's Env
// alone; a chrooted tarball runs /opt/gnu/bin/a; the squashfs image's
// runscript sources the profile's etc/profile.
func TestProfilePacks(t *testing.T) {
	podman := oracle.Require(t, "podman")
	oracle.Require(t, "runc")
	unsquashfs := oracle.Require(t, "unsquashfs")
	tarBin := oracle.Require(t, "tar")
	oracle.RequireRoot(t)

	dir := profileSpec(t)
	out := t.TempDir()
	files, err := Export(Options{SpecDir: dir, OutDir: out, CacheDir: testCache(t)})
	if err != nil {
		t.Fatal(err)
	}
	path := map[string]string{}
	for _, f := range files {
		path[f.Export] = filepath.Join(out, f.Path)
	}

	t.Run("podman", func(t *testing.T) {
		const tag = "localhost/storepack-profile:1"
		if b, err := exec.Command(podman, "load", "-i", path["image"]).CombinedOutput(); err != nil {
			t.Fatalf("podman load: %v\n%s", err, b)
		}
		t.Cleanup(func() { exec.Command(podman, "rmi", "-f", tag).Run() })
		b, runErr, err := oracle.PodmanRun(podman, "--network", "none", tag)
		// a is found through PATH alone: in the profile's bin.
		if err != nil || !strings.HasPrefix(string(b), "a from /gnu/store/") || !strings.HasSuffix(string(b), "-profile/bin/a\nb\n") {
			t.Errorf("podman run: %q, %v\n%s", b, err, runErr)
		}
	})
	t.Run("tarball under chroot", func(t *testing.T) {
		root := t.TempDir()
		if b, err := exec.Command(tarBin, "-xf", path["tarball"], "-C", root).CombinedOutput(); err != nil {
			t.Fatalf("tar -xf: %v\n%s", err, b)
		}
		b, err := exec.Command("chroot", root, "/opt/gnu/bin/a").CombinedOutput()
		if err != nil || string(b) != "a from /opt/gnu/bin/a\n" {
			t.Errorf("chroot /opt/gnu/bin/a: %q, %v", b, err)
		}
		target, err := os.Readlink(filepath.Join(root, "var/guix/profiles/per-user/root/guix-profile"))
		if err != nil || !strings.HasSuffix(target, "-profile") {
			t.Errorf("the Guix profile link: %q, %v", target, err)
		}
		b, err = exec.Command("chroot", root, "/bin/sh", "-c", ". "+target+"/etc/profile; a; b; echo $MANPATH").CombinedOutput()
		if err != nil || string(b) != "a from "+target+"/bin/a\nb\n"+target+"/share/man\n" {
			t.Errorf(". etc/profile; a; b: %q, %v", b, err)
		}
	})
	t.Run("squashfs runscript", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "sq")
		if b, err := exec.Command(unsquashfs, "-d", root, path["squashfs"]).CombinedOutput(); err != nil {
			t.Fatalf("unsquashfs: %v\n%s", err, b)
		}
		b, err := exec.Command("chroot", root, "/.singularity.d/runscript").CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		// PATH is the profile's bin before what it held.
		if err != nil || len(lines) != 3 || !strings.Contains(lines[0], "-profile/bin:") || !strings.HasSuffix(lines[1], "-profile/share/man") || !strings.HasPrefix(lines[2], "a from ") {
			t.Errorf("runscript: %q, %v", b, err)
		}
	})
}

// TestRelocatableTarball: a relocatable tarball of the profile, unpacked
// by nobody into a fresh folder under /tmp, runs its programs through
// the pack's relative /bin link: the wrapper makes the pack's store appear
// at /gnu/store, where the programs' interpreter is; two copies in two
// folders run at once, and exit statuses pass through.
func TestRelocatableTarball(t *testing.T) {
	tarBin := oracle.Require(t, "tar")
	setpriv := oracle.Require(t, "setpriv")
	oracle.RequireRoot(t)

	dir := profileSpec(t)
	b, err := os.ReadFile(filepath.Join(dir, "storepack.hcl"))
	must(t, err)
	spec := string(b) + `
export "relocatable" {
  format      = "tarball"
  paths       = local.paths
  systems     = ["x86_64-linux"]
  profile     = true
  relocatable = true
}
`
	must(t, os.WriteFile(filepath.Join(dir, "storepack.hcl"), []byte(spec), 0o644))
	out := t.TempDir()
	files, err := Export(Options{SpecDir: dir, OutDir: out, CacheDir: testCache(t), Exports: []string{"relocatable"}})
	if err != nil {
		t.Fatal(err)
	}
	var tarball string
	for _, f := range files {
		tarball = filepath.Join(out, f.Path)
	}
	asNobody := func(args ...string) *exec.Cmd {
		cmd := exec.Command(setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups"}, args...)...)
		cmd.Dir = "/tmp"
		return cmd
	}
	one, two := unpackAsNobody(t, tarBin, setpriv, tarball), unpackAsNobody(t, tarBin, setpriv, tarball)
	if target, err := os.Readlink(filepath.Join(one, "bin")); err != nil || strings.HasPrefix(target, "/") {
		t.Errorf("/bin -> %q (%v), want a relative link", target, err)
	}
	if _, err := os.Stat("/gnu/store/" + filepath.Base(filepath.Dir(mustGlob(t, filepath.Join(one, "gnu/store/*-tool-a/bin"))))); err == nil {
		t.Fatal("the host has the pack's items at /gnu/store: the test would not show relocation")
	}
	a1, a2 := asNobody(filepath.Join(one, "bin/a")), asNobody(filepath.Join(two, "bin/b"))
	var o1, o2 strings.Builder
	a1.Stdout, a1.Stderr, a2.Stdout, a2.Stderr = &o1, &o1, &o2, &o2
	must(t, a1.Start())
	must(t, a2.Start())
	e1, e2 := a1.Wait(), a2.Wait()
	if e1 != nil || !strings.HasPrefix(o1.String(), "a from ") {
		t.Errorf("%s/bin/a as nobody: %q, %v", one, o1.String(), e1)
	}
	if e2 != nil || o2.String() != "b\n" {
		t.Errorf("%s/bin/b as nobody: %q, %v", two, o2.String(), e2)
	}
	sh := asNobody(filepath.Join(one, "bin/sh"), "-c", "exit 3")
	if err := sh.Run(); sh.ProcessState == nil || sh.ProcessState.ExitCode() != 3 {
		t.Errorf("bin/sh -c 'exit 3': %v, want exit status 3", err)
	}
}

// unpackAsNobody extracts the gzipped tarball as nobody (setpriv) into
// a fresh folder of nobody's own under /tmp, removed when the test ends,
// and returns the folder.
func unpackAsNobody(t *testing.T, tarBin, setpriv, tarball string) string {
	t.Helper()
	root, err := os.MkdirTemp("/tmp", "storepack-reloc-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(root) })
	must(t, os.Chmod(root, 0o755))
	must(t, os.Chown(root, 65534, 65534))
	f, err := os.Open(tarball) // read by the test: nobody cannot enter its folder
	must(t, err)
	defer f.Close()
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", tarBin, "-xzf", "-", "-C", root)
	cmd.Stdin = f
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar -xf as nobody: %v\n%s", err, b)
	}
	return root
}

// mustGlob is the one match of pattern.
func mustGlob(t *testing.T, pattern string) string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) != 1 {
		t.Fatalf("%s: %v, %v", pattern, m, err)
	}
	return m[0]
}

// TestAppImage: an AppImage of the profile, busybox standing in for the
// type-2 runtime (Debian packages none): libappimage reports type 2,
// finds the squashfs where the runtime's ELF ends and lists the AppDir;
// unsquashfs extracts it from that offset, and its AppRun runs the entry
// point as nobody from the extracted folder, through the wrapper.
func TestAppImage(t *testing.T) {
	unsquashfs := oracle.Require(t, "unsquashfs")
	setpriv := oracle.Require(t, "setpriv")
	python := oracle.Require(t, "python3")
	oracle.RequireRoot(t)

	dir := profileSpec(t)
	bb, err := filepath.EvalSymlinks(oracle.Require(t, "busybox"))
	must(t, err)
	b, err := os.ReadFile(filepath.Join(dir, "storepack.hcl"))
	must(t, err)
	spec := string(b) + `
export "app" {
  format      = "appimage"
  paths       = local.paths
  systems     = ["x86_64-linux"]
  profile     = true
  relocatable = true
  entrypoint  = ["bin/a"]
  appimage {
    runtime    = "` + bb + `"
    name       = "Tool A"
    categories = ["Utility", "Development"]
  }
}
`
	must(t, os.WriteFile(filepath.Join(dir, "storepack.hcl"), []byte(spec), 0o644))
	out := t.TempDir()
	files, err := Export(Options{SpecDir: dir, OutDir: out, CacheDir: testCache(t), Exports: []string{"app"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Path != "app.AppImage" {
		t.Fatalf("files %+v", files)
	}
	image := filepath.Join(out, files[0].Path)
	probe := `import ctypes, sys
lib = ctypes.CDLL("libappimage.so.1.0abi1")
lib.appimage_get_type.restype = ctypes.c_int
lib.appimage_get_payload_offset.restype = ctypes.c_longlong
lib.appimage_list_files.restype = ctypes.POINTER(ctypes.c_char_p)
p = sys.argv[1].encode()
print(lib.appimage_get_type(p, False))
print(lib.appimage_get_payload_offset(p))
files = lib.appimage_list_files(p)
i = 0
while files[i]:
    print(files[i].decode())
    i += 1
`
	cmd := exec.Command(python, "-c", probe, image)
	res, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("libappimage: %v\n%s", err, res)
	}
	lines := strings.Split(strings.TrimSpace(string(res)), "\n")
	if len(lines) < 3 || lines[0] != "2" {
		t.Fatalf("libappimage: %q, want type 2", res)
	}
	offset := lines[1]
	for _, want := range []string{"AppRun", "app.desktop", "app.svg", ".DirIcon"} {
		if !slices.Contains(lines[2:], want) {
			t.Errorf("libappimage lists no %s in %v", want, lines[2:])
		}
	}
	root, err := os.MkdirTemp("/tmp", "storepack-appimage-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(root) })
	must(t, os.Chmod(root, 0o755))
	appDir := filepath.Join(root, "AppDir")
	if b, err := exec.Command(unsquashfs, "-o", offset, "-d", appDir, image).CombinedOutput(); err != nil {
		t.Fatalf("unsquashfs -o %s: %v\n%s", offset, err, b)
	}
	desktop, err := os.ReadFile(filepath.Join(appDir, "app.desktop"))
	if err != nil || !strings.Contains(string(desktop), "Name=Tool A\n") || !strings.Contains(string(desktop), "Categories=Utility;Development;\n") {
		t.Errorf("app.desktop: %q, %v", desktop, err)
	}
	run := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", filepath.Join(appDir, "AppRun"))
	run.Dir = "/tmp"
	got, err := run.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(got), "a from ") {
		t.Errorf("AppRun as nobody: %q, %v", got, err)
	}
}

// TestProfilesFollowTheCache: profiles are written into the cache
// folder's profiles/, and with the cache turned off into a temporary
// folder removed at the end of the run; the outputs are the same.
func TestProfilesFollowTheCache(t *testing.T) {
	dir := profileSpec(t)
	cache := testCache(t)
	var sums []string
	for _, noCache := range []bool{false, true} {
		files, err := Export(Options{SpecDir: dir, OutDir: t.TempDir(), CacheDir: cache, NoCache: noCache, Exports: []string{"tarball"}})
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, files[0].SHA256)
		profiles, _ := filepath.Glob(filepath.Join(cache, "profiles", "*-profile"))
		if len(profiles) != 1 {
			t.Errorf("no-cache %v: the cache holds profiles %v, want the first run's one", noCache, profiles)
		}
	}
	if sums[0] != sums[1] {
		t.Errorf("the tarball differs with the cache turned off: %s, %s", sums[0], sums[1])
	}
	left, _ := filepath.Glob(filepath.Join(os.TempDir(), "storepack-profiles-*"))
	if len(left) != 0 {
		t.Errorf("temporary profile folders left: %v", left)
	}
}
