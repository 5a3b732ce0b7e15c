package export

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/fixture"
	"github.com/storepack/storepack/internal/platform"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/nar"
)

// treeCreated is the creation time of the test trees.
const treeCreated = "2024-01-02T03:04:05Z"

// treeExport plans an export of format f (a file system tree format) of
// the fixture's closure of roots, one system, in store folder dir with the
// items below root (a new temporary folder when empty); set changes the
// spec before planning.
func treeExport(t testing.TB, f format.Format, dir store.Dir, root string, items []fixture.Item, roots []string, set func(*spec.Export)) (*plan.Export, *fixture.Store) {
	t.Helper()
	st := fixture.Write(t, dir, root, items)
	e := &spec.Export{Name: "hello", Format: f, Compression: f.Def().Compression(), Created: treeCreated}
	if set != nil {
		set(e)
	}
	e.Output = f.Output(e.Name, e.Compression)
	sys := st.System(t, "x86_64-linux", e, roots...)
	sys.Output = e.Output
	return &plan.Export{Name: e.Name, Format: f, Output: e.Output, Compression: e.Compression, Systems: []plan.System{*sys}}, st
}

// writeTreeFile writes e (one system) into a new temporary folder and
// returns the output file's path.
func writeTreeFile(t testing.TB, e *plan.Export) string {
	t.Helper()
	dir := t.TempDir()
	files, err := writeExport(&plan.Plan{}, e, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Path != e.Systems[0].Output {
		t.Fatalf("files %+v, want %s", files, e.Systems[0].Output)
	}
	return filepath.Join(dir, e.Systems[0].Output)
}

// extractTar extracts a tar into dir as storepack's trees hold it
// (folders, regular files, symlinks), then gives every entry its mode, so
// that read-only folders are filled first.
func extractTar(t testing.TB, r io.Reader, dir string) {
	t.Helper()
	tr := tar.NewReader(r)
	type modeOf struct {
		path string
		mode os.FileMode
	}
	var modes []modeOf
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
			modes = append(modes, modeOf{p, os.FileMode(hdr.Mode).Perm()})
		case tar.TypeReg:
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(p, b, 0o644)
			}
			modes = append(modes, modeOf{p, os.FileMode(hdr.Mode).Perm()})
		case tar.TypeSymlink:
			err = os.Symlink(hdr.Linkname, p)
		default:
			t.Fatalf("%s: unexpected entry type %c", hdr.Name, hdr.Typeflag)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Reverse(modes) // children before their folders
	for _, m := range modes {
		if err := os.Chmod(m.path, m.mode); err != nil {
			t.Fatal(err)
		}
	}
}

// checkItemsIdentical checks that every item of closure is in the tree
// extracted at root with the NAR hash the store has.
func checkItemsIdentical(t testing.TB, root string, closure []plan.Item) {
	t.Helper()
	for _, it := range closure {
		sum, size, err := nar.Hash(filepath.Join(root, string(it.Path)))
		if err != nil {
			t.Errorf("%s: %v", it.Path, err)
			continue
		}
		if sum != it.NarHash || size != it.NarSize {
			t.Errorf("%s: NAR %s (%d bytes) in the tree, %s (%d bytes) in the store", it.Path, sum, size, it.NarHash, it.NarSize)
		}
	}
}

// checkTreeDB opens the store database in the tree extracted at root, as
// a chroot store, and checks that it registers closure as the store did.
func checkTreeDB(t testing.TB, root string, dir store.Dir, closure []plan.Item) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(root, store.TreeDB(dir))); err != nil {
		t.Fatalf("no store database in the tree: %v", err)
	}
	s, err := store.Open(store.Options{Dir: dir, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, it := range closure {
		info, err := s.Info(it.Path)
		if err != nil {
			t.Error(err)
			continue
		}
		if store.Hash(info.NarHash) != it.NarHash || info.NarSize != it.NarSize || !slices.Equal(info.References, it.References) || info.Deriver != it.Deriver {
			t.Errorf("%s: the tree's database has %+v, the plan %+v", it.Path, info, it)
		}
	}
}

// checkTreeReproducible is checkReproducible of a tree export's output
// file.
func checkTreeReproducible(t *testing.T, build func(t testing.TB, root string) *plan.Export) {
	t.Helper()
	checkReproducible(t, build, func(t testing.TB, e *plan.Export) []byte {
		b, err := os.ReadFile(writeTreeFile(t, e))
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

// checkReproducible writes the export build gives twice (write returns
// the bytes written): from a fixture written normally, and from one with
// other owners and mtimes written under another umask, time zone, working
// folder and GOMAXPROCS. The bytes are equal.
func checkReproducible(t *testing.T, build func(t testing.TB, root string) *plan.Export, write func(t testing.TB, e *plan.Export) []byte) {
	t.Helper()
	want := write(t, build(t, ""))
	oldUmask := syscall.Umask(0o022 ^ 0o077)
	defer syscall.Umask(oldUmask)
	oldLocal := time.Local
	time.Local = time.FixedZone("UTC-11", -11*3600)
	defer func() { time.Local = oldLocal }()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	t.Chdir(t.TempDir())
	root := t.TempDir()
	e := build(t, root)
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
	if got := write(t, e); !bytes.Equal(want, got) {
		t.Errorf("outputs differ: %d and %d bytes", len(want), len(got))
	}
}

// TestTreeFormatsPerSystem writes an export of two systems in every file
// system tree format: one output per system, each with its system's
// package architecture where the format has one.
func TestTreeFormatsPerSystem(t *testing.T) {
	for _, f := range format.OfKind(format.Tree) {
		t.Run(string(f), func(t *testing.T) {
			st := fixture.Write(t, "/gnu/store", "", fixture.Hello())
			e := &spec.Export{Name: "hello", Format: f, Compression: f.Def().Compression(), Created: treeCreated}
			_, isPackage := f.Def().Block("package")
			if isPackage {
				p := helloPackage
				e.Package = &p
			}
			if _, ok := f.Def().Block("appimage"); ok {
				e.Entrypoint = []string{string(fixture.StorePath("/gnu/store", "hello-2.12")) + "/bin/hello"}
				e.AppImage = &spec.AppImage{Runtime: tinyELF(t), Name: "hello", Categories: []string{"Utility"}}
			}
			out := &plan.Export{Name: e.Name, Format: f, Compression: e.Compression}
			for _, s := range []string{"x86_64-linux", "aarch64-linux"} {
				sys := st.System(t, s, e, "hello-2.12")
				sys.Output = "hello-" + s + f.Ext(e.Compression)
				out.Systems = append(out.Systems, *sys)
			}
			dir := t.TempDir()
			files, err := writeExport(&plan.Plan{}, out, dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != 2 || files[0].System != "x86_64-linux" || files[1].System != "aarch64-linux" || files[0].SHA256 == files[1].SHA256 && isPackage {
				t.Fatalf("files %+v", files)
			}
			for i, file := range files {
				if file.Path != out.Systems[i].Output {
					t.Errorf("file %s, want %s", file.Path, out.Systems[i].Output)
				}
				if _, err := os.Stat(filepath.Join(dir, file.Path)); err != nil {
					t.Error(err)
				}
			}
			if isPackage {
				want := map[format.Format]map[string]string{
					"deb": {"x86_64-linux": "amd64", "aarch64-linux": "arm64"},
					"rpm": {"x86_64-linux": "x86_64", "aarch64-linux": "aarch64"},
				}[f]
				for _, sys := range out.Systems {
					if sys.Tree.Package.Architecture != want[sys.Name] {
						t.Errorf("%s: architecture %s, want %s", sys.Name, sys.Tree.Package.Architecture, want[sys.Name])
					}
				}
			}
		})
	}
}

// platformOf looks system up.
func platformOf(t testing.TB, system string) platform.Platform {
	t.Helper()
	p, err := platform.Lookup(system)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestClosureDescription: the default package description's synopsis
// stays within 80 characters, naming as many roots as fit.
func TestClosureDescription(t *testing.T) {
	var roots []store.Path
	for i := range 12 {
		roots = append(roots, fixture.StorePath("/gnu/store", fmt.Sprintf("package-number-%d-1.0", i)))
	}
	tests := []struct {
		roots    []store.Path
		synopsis string
	}{
		{roots[:1], "Store closure of package-number-0-1.0"},
		{roots[:2], "Store closure of package-number-0-1.0, package-number-1-1.0"},
		{roots, "Store closure of package-number-0-1.0, package-number-1-1.0 and 10 more"},
	}
	for _, tt := range tests {
		d := closureDescription(tt.roots)
		synopsis, rest, _ := strings.Cut(d, "\n")
		if synopsis != tt.synopsis {
			t.Errorf("%d roots: synopsis %q, want %q", len(tt.roots), synopsis, tt.synopsis)
		}
		for _, l := range strings.Split(rest, "\n") {
			if len(l) > 79 || l == "" {
				t.Errorf("%d roots: extended description line %q", len(tt.roots), l)
			}
		}
	}
}
