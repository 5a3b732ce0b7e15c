package export

import (
	"archive/tar"
	"bytes"
	"database/sql"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/gen"
	"github.com/storepack/storepack/internal/compress"
	"github.com/storepack/storepack/internal/fixture"
	"github.com/storepack/storepack/internal/nixtest"
	"github.com/storepack/storepack/internal/oracle"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
)

// helloTarball plans a tarball of the Hello fixture's hello-2.12 and
// libc-link (default /bin symlink) in /gnu/store, compressed as c, with
// the store database.
func helloTarball(t testing.TB, root string, c format.Compression) *plan.Export {
	t.Helper()
	e, _ := treeExport(t, format.Format("tarball"), "/gnu/store", root, fixture.Hello(), []string{"hello-2.12", "libc-link"}, func(e *spec.Export) {
		e.Compression, e.Database = c, true
	})
	return e
}

// readTarball reads a tarball file, decompressed as c.
func readTarball(t testing.TB, file string, c format.Compression) []byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, done, err := compress.NewReader(f, c)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTarball writes the tarball in every compression: its name has the
// compression's extension; the tar inside is the same each time (golden
// listing); every entry has the creation time, owner 0 and no other time;
// extracted, the items are NAR-identical to the store and the store
// database registers them.
func TestTarball(t *testing.T) {
	var first []byte
	for _, c := range format.Format("tarball").Def().Compressions {
		t.Run(string(c), func(t *testing.T) {
			e := helloTarball(t, "", c)
			file := writeTreeFile(t, e)
			if want := "hello" + format.Format("tarball").Ext(c); filepath.Base(file) != want {
				t.Errorf("output %s, want %s", filepath.Base(file), want)
			}
			b := readTarball(t, file, c)
			if first == nil {
				first = b
				compareGolden(t, "testdata/tarball", map[string]string{"listing": fixture.Listing(t, b)})
			} else if !bytes.Equal(b, first) {
				t.Errorf("the tar inside differs from the %s tarball's", format.Format("tarball").Def().Compression())
			}
			created, _ := time.Parse(time.RFC3339, treeCreated)
			for _, te := range fixture.ReadTar(t, b) {
				h := te.Hdr
				if !h.ModTime.Equal(created) || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
					t.Errorf("%s: mtime %v atime %v ctime %v owner %d:%d (%q:%q)", h.Name, h.ModTime, h.AccessTime, h.ChangeTime, h.Uid, h.Gid, h.Uname, h.Gname)
				}
			}
			dir := t.TempDir()
			extractTar(t, bytes.NewReader(b), dir)
			checkItemsIdentical(t, dir, e.Systems[0].Closure)
			checkTreeDB(t, dir, "/gnu/store", e.Systems[0].Closure)
			if target, err := os.Readlink(filepath.Join(dir, "bin")); err != nil || !strings.HasSuffix(target, "-hello-2.12/bin") {
				t.Errorf("/bin -> %q (%v), want hello's bin", target, err)
			}
		})
	}
}

// TestTarballHardLinks: a file hard-linked inside an item is whole in the
// tarball, twice (GNU tar would otherwise write a link entry that needs
// the other file extracted first).
func TestTarballHardLinks(t *testing.T) {
	b := readTarball(t, writeTreeFile(t, helloTarball(t, "", format.None)), format.None)
	var hello, again []byte
	for _, te := range fixture.ReadTar(t, b) {
		if te.Hdr.Typeflag == tar.TypeLink {
			t.Errorf("%s: a hard link entry", te.Hdr.Name)
		}
		switch {
		case strings.HasSuffix(te.Hdr.Name, "-hello-2.12/bin/hello"):
			hello = te.Data
		case strings.HasSuffix(te.Hdr.Name, "-hello-2.12/bin/hello-again"):
			again = te.Data
		}
	}
	if len(hello) == 0 || !bytes.Equal(hello, again) {
		t.Errorf("bin/hello %q and its hard link bin/hello-again %q", hello, again)
	}
}

// TestTarballReproducible: the same tarball whatever the umask, time
// zone, working folder, GOMAXPROCS, owners and mtimes of the files.
func TestTarballReproducible(t *testing.T) {
	for _, c := range []format.Compression{format.Gzip, format.Zstd} {
		t.Run(string(c), func(t *testing.T) {
			checkTreeReproducible(t, func(t testing.TB, root string) *plan.Export { return helloTarball(t, root, c) })
		})
	}
}

// TestTarballCreated: the creation time is every entry's mtime and the
// database's registration time.
func TestTarballCreated(t *testing.T) {
	later, err := time.Parse(time.RFC3339, "2030-05-06T07:08:09Z")
	if err != nil {
		t.Fatal(err)
	}
	e, _ := treeExport(t, format.Format("tarball"), "/nix/store", "", fixture.Hello(), []string{"hello-2.12"}, func(e *spec.Export) {
		e.Compression, e.Database, e.Created = format.None, true, later.Format(time.RFC3339)
	})
	b := readTarball(t, writeTreeFile(t, e), format.None)
	for _, te := range fixture.ReadTar(t, b) {
		if !te.Hdr.ModTime.Equal(later) {
			t.Errorf("%s: mtime %v, want %v", te.Hdr.Name, te.Hdr.ModTime, later)
		}
	}
	dir := t.TempDir()
	extractTar(t, bytes.NewReader(b), dir)
	s, err := store.Open(store.Options{Dir: "/nix/store", Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Info(e.Systems[0].Roots[0]); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, store.TreeDB("/nix/store"))+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var times []int64
	rows, err := db.Query("SELECT DISTINCT registrationTime FROM ValidPaths")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		times = append(times, n)
	}
	rows.Close()
	if !slices.Equal(times, []int64{later.Unix()}) {
		t.Errorf("registration times %v, want %d", times, later.Unix())
	}
}

// TestTarballNixClosure checks tarballs of a real Nix closure, in the
// /nix/store and /gnu/store layouts, with the tools their users run:
// GNU tar extracts each (as root, into an empty folder), the entry point
// runs under chroot, every item is NAR-identical to the store's
// (nix-store --dump), and Nix takes the tree's database as its own.
func TestTarballNixClosure(t *testing.T) {
	oracle.RequireRoot(t)
	tarPath := oracle.Require(t, "tar")
	for _, tool := range []string{"gzip", "zstd", "xz", "chroot"} {
		oracle.Require(t, tool)
	}
	nixtest.ForEachLayout(t, func(t *testing.T, c *nixtest.Closure) {
		for _, comp := range format.Format("tarball").Def().Compressions {
			e := nixTree(t, c, format.Format("tarball"), func(e *spec.Export) { e.Compression = comp })
			file := writeTreeFile(t, e)
			dir := t.TempDir()
			if out, err := exec.Command(tarPath, "-xf", file, "-C", dir).CombinedOutput(); err != nil {
				t.Fatalf("%s: tar -xf: %v\n%s", comp, err, out)
			}
			checkNixTree(t, c, dir, &e.Systems[0], []string{c.HelloScript})
		}
	})
}

// nixTree plans an export of format f (a tree) of a real Nix closure,
// with the store database and entry point bin/hello; set changes the spec
// first.
func nixTree(t testing.TB, c *nixtest.Closure, f format.Format, set func(*spec.Export)) *plan.Export {
	t.Helper()
	sys := nixClosure(t, c)
	e := &spec.Export{
		Name: "nixtest", Format: f, Compression: f.Def().Compression(), Database: true, Created: treeCreated,
		Systems:    []spec.System{{Name: sys.Name, Paths: sys.Roots}},
		Entrypoint: []string{c.HelloScript},
		Package:    &spec.Package{Name: "nixtest", Version: "1.0", Release: "1", Maintainer: "Tests <tests@example.org>"},
	}
	if set != nil {
		set(e)
	}
	e.Output = f.Output(e.Name, e.Compression)
	t2, err := gen.PlanTree(e, &sys)
	if err != nil {
		t.Fatal(err)
	}
	sys.Tree, sys.Output = t2, e.Output
	return &plan.Export{Name: e.Name, Format: f, Output: e.Output, Compression: e.Compression, Systems: []plan.System{sys}}
}

// checkNixTree checks a tree of a real Nix closure extracted at dir: run
// (an entry point, or a script and its arguments) runs under chroot and
// prints the closure's greeting; every item is NAR-identical to the
// store's; and, with the store database, Nix verifies the tree as a
// chroot store and lists the closure from it.
func checkNixTree(t *testing.T, c *nixtest.Closure, dir string, sys *plan.System, run []string) {
	t.Helper()
	out, err := exec.Command("chroot", append([]string{dir}, run...)...).CombinedOutput()
	if err != nil || string(out) != nixtest.HelloOutput {
		t.Errorf("chroot %s %q: %v, printed %q; want %q", dir, run, err, out, nixtest.HelloOutput)
	}
	for _, it := range sys.Closure {
		want := c.Output(t, "nix-store", "--dump", string(it.Path))
		if got := c.Output(t, "nix-store", "--dump", filepath.Join(dir, string(it.Path))); !bytes.Equal(got, want) {
			t.Errorf("%s: the tree's NAR differs from the store's", it.Path)
		}
	}
	if !slices.ContainsFunc(sys.Tree.Entries, func(e plan.Entry) bool { return e.Type == plan.EntryDatabase }) {
		return
	}
	if _, err := os.Stat(filepath.Join(dir, store.TreeDB(store.Dir(c.StoreDir)))); err != nil {
		t.Fatalf("no store database in the tree: %v", err)
	}
	chroot := c.Layout.ChrootStore(dir)
	c.Output(t, "nix-store", "--store", chroot, "--verify", "--check-contents")
	want := c.Paths(t)
	if got := c.Lines(t, "nix-store", "--store", chroot, "-qR", c.Root); !slices.Equal(got, want) {
		t.Errorf("nix-store --store %s -qR %s = %q, want %q", chroot, c.Root, got, want)
	}
	// The check can fail: a changed file is found.
	if err := os.WriteFile(filepath.Join(dir, c.HelloScript), []byte("#!/bin/sh\necho changed\n"), 0o555); err != nil {
		t.Fatal(err)
	}
	out, err = c.Command("nix-store", "--store", chroot, "--verify", "--check-contents").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "was modified") {
		t.Errorf("nix-store --verify --check-contents on a changed tree: %v, printed %s", err, out)
	}
}
