package export

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/compress"
	"github.com/storepack/storepack/internal/fixture"
	"github.com/storepack/storepack/internal/nixtest"
	"github.com/storepack/storepack/internal/oracle"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
)

// helloPackage is the package block of the test debs and rpms.
var helloPackage = spec.Package{
	Name: "hello", Version: "2.12", Release: "3",
	Maintainer:  "Release Team <release@example.org>",
	Description: "GNU Hello, packed from its store closure\nIt greets.\n\nTwice.",
	License:     "GPL-3.0-or-later", Homepage: "https://example.org/hello",
	Section: "utils",
}

// helloDeb plans a deb of the Hello fixture's hello-2.12 in /gnu/store,
// data compressed as c, with the store database.
func helloDeb(t testing.TB, root string, c format.Compression) *plan.Export {
	t.Helper()
	e, _ := treeExport(t, format.Format("deb"), "/gnu/store", root, fixture.Hello(), []string{"hello-2.12"}, func(e *spec.Export) {
		p := helloPackage
		e.Compression, e.Database, e.Package = c, true, &p
	})
	return e
}

// arMember is one member of an ar archive.
type arMember struct {
	name  string
	mtime int64
	data  []byte
}

// readAr reads an ar archive as dpkg reads a deb: the magic, then 60-byte
// headers each followed by the member, padded to an even length.
func readAr(t testing.TB, b []byte) []arMember {
	t.Helper()
	rest, ok := bytes.CutPrefix(b, []byte("!<arch>\n"))
	if !ok {
		t.Fatalf("no ar magic: %q", b[:min(8, len(b))])
	}
	var out []arMember
	for len(rest) > 0 {
		if len(rest) < 60 || string(rest[58:60]) != "`\n" {
			t.Fatalf("bad ar header %q", rest[:min(60, len(rest))])
		}
		h := rest[:60]
		size, err := strconv.ParseInt(strings.TrimSpace(string(h[48:58])), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		mtime, err := strconv.ParseInt(strings.TrimSpace(string(h[16:28])), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Fields(string(h[28:48])); !slices.Equal(got, []string{"0", "0", "100644"}) {
			t.Errorf("member %q: owner and mode %q", h[:16], got)
		}
		out = append(out, arMember{strings.TrimSpace(string(h[:16])), mtime, rest[60 : 60+size]})
		rest = rest[60+size+size%2:]
	}
	return out
}

// debParts reads a deb file: its members, the control file, md5sums and
// the data tar, decompressed as c.
func debParts(t testing.TB, file string, c format.Compression) (members []arMember, control, md5sums string, data []byte) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	members = readAr(t, b)
	if len(members) != 3 {
		t.Fatalf("%d members", len(members))
	}
	ext := compress.Ext(c)
	var names []string
	for _, m := range members {
		names = append(names, m.name)
	}
	if want := []string{"debian-binary", "control.tar" + ext, "data.tar" + ext}; !slices.Equal(names, want) {
		t.Fatalf("members %q, want %q", names, want)
	}
	if string(members[0].data) != "2.0\n" {
		t.Errorf("debian-binary %q", members[0].data)
	}
	unpack := func(m arMember) []byte {
		dir := t.TempDir()
		f := filepath.Join(dir, m.name)
		if err := os.WriteFile(f, m.data, 0o644); err != nil {
			t.Fatal(err)
		}
		return readTarball(t, f, c)
	}
	for _, te := range fixture.ReadTar(t, unpack(members[1])) {
		switch te.Hdr.Name {
		case "./control":
			control = string(te.Data)
		case "./md5sums":
			md5sums = string(te.Data)
		case "./":
		default:
			t.Errorf("control.tar holds %s", te.Hdr.Name)
		}
	}
	return members, control, md5sums, unpack(members[2])
}

// TestDeb writes the deb with every data compression: an ar of
// debian-binary, control.tar and data.tar; the control file as dpkg-deb
// writes one; md5sums of every regular file of the data; the data is the
// tree of the tarball with "./" before each name, the items NAR-identical
// and the store database in it.
func TestDeb(t *testing.T) {
	for _, c := range format.Format("deb").Def().Compressions {
		t.Run(string(c), func(t *testing.T) {
			e := helloDeb(t, "", c)
			file := writeTreeFile(t, e)
			if filepath.Base(file) != "hello.deb" {
				t.Errorf("output %s", filepath.Base(file))
			}
			members, control, md5sums, data := debParts(t, file, c)
			for _, m := range members {
				if m.mtime != e.Systems[0].Tree.MTime() {
					t.Errorf("%s: mtime %d", m.name, m.mtime)
				}
			}
			entries := fixture.ReadTar(t, data)
			var wantSums strings.Builder
			var installed int64
			for _, te := range entries {
				if !strings.HasPrefix(te.Hdr.Name, "./") {
					t.Errorf("data entry %q does not start with ./", te.Hdr.Name)
				}
				if te.Hdr.Typeflag != '0' {
					installed++
					continue
				}
				installed += (te.Hdr.Size + 1023) / 1024
				sum := md5.Sum(te.Data)
				wantSums.WriteString(hex.EncodeToString(sum[:]) + "  " + strings.TrimPrefix(te.Hdr.Name, "./") + "\n")
			}
			if md5sums != wantSums.String() {
				t.Errorf("md5sums:\n%s\nwant:\n%s", md5sums, wantSums.String())
			}
			wantControl := "Package: hello\nVersion: 2.12\nArchitecture: amd64\nMaintainer: Release Team <release@example.org>\n" +
				"Installed-Size: " + strconv.FormatInt(installed, 10) + "\nSection: utils\nPriority: optional\nHomepage: https://example.org/hello\n" +
				"Description: GNU Hello, packed from its store closure\n It greets.\n .\n Twice.\n"
			if control != wantControl {
				t.Errorf("control:\n%s\nwant:\n%s", control, wantControl)
			}
			compareGolden(t, "testdata/deb", map[string]string{"data.listing": fixture.Listing(t, data)})
			dir := t.TempDir()
			extractTar(t, bytes.NewReader(data), dir)
			checkItemsIdentical(t, dir, e.Systems[0].Closure)
			checkTreeDB(t, dir, "/gnu/store", e.Systems[0].Closure)
			if _, err := os.Lstat(filepath.Join(dir, "bin")); err == nil {
				t.Error("the deb has a /bin symlink, which would clash with the root's /bin")
			}
		})
	}
}

// TestDebDescriptionDefault: without a description, the control file
// names the closure's roots (by name, without their hashes) in a
// capitalised synopsis, and says what the package installs in an
// extended description; Section and Priority have Debian's defaults.
func TestDebDescriptionDefault(t *testing.T) {
	e, _ := treeExport(t, format.Format("deb"), "/nix/store", "", fixture.Hello(), []string{"hello-2.12", "greeting"}, func(e *spec.Export) {
		e.Package = &spec.Package{Name: "hello", Version: "1"}
	})
	_, control, _, _ := debParts(t, writeTreeFile(t, e), format.XZ)
	for _, want := range []string{
		"\nSection: misc\nPriority: optional\n",
		"\nDescription: Store closure of greeting, hello-2.12\n The store items greeting, hello-2.12 and every item they reference, installed\n at their paths in /nix/store.\n",
	} {
		if !strings.Contains(control, want) {
			t.Errorf("control has no %q:\n%s", want, control)
		}
	}
	if strings.Contains(control, "Maintainer") || strings.Contains(control, "Homepage") {
		t.Errorf("empty fields written:\n%s", control)
	}
}

// TestDebReproducible: the same deb whatever the umask, time zone,
// working folder, GOMAXPROCS, owners and mtimes of the files.
func TestDebReproducible(t *testing.T) {
	checkTreeReproducible(t, func(t testing.TB, root string) *plan.Export { return helloDeb(t, root, format.XZ) })
}

// TestDebDpkg checks debs of a real Nix closure, in the /nix/store and
// /gnu/store layouts, with dpkg: dpkg-deb reads the control file and the
// contents, dpkg installs the package into an empty root (with a minimal
// admin folder), the entry point runs under chroot, every item is
// NAR-identical to the store's, Nix verifies the database, and dpkg
// removes the package again.
func TestDebDpkg(t *testing.T) {
	oracle.RequireRoot(t)
	dpkg := oracle.Require(t, "dpkg")
	dpkgDeb := oracle.Require(t, "dpkg-deb")
	oracle.Require(t, "chroot")
	nixtest.ForEachLayout(t, func(t *testing.T, c *nixtest.Closure) {
		for _, comp := range format.Format("deb").Def().Compressions {
			e := nixTree(t, c, format.Format("deb"), func(e *spec.Export) { e.Compression = comp })
			file := writeTreeFile(t, e)
			info, err := exec.Command(dpkgDeb, "--info", file).CombinedOutput()
			if err != nil || !strings.Contains(string(info), "Package: nixtest") || !strings.Contains(string(info), "Architecture: amd64") || !strings.Contains(string(info), "md5sums") {
				t.Errorf("%s: dpkg-deb --info: %v\n%s", comp, err, info)
			}
			contents, err := exec.Command(dpkgDeb, "--contents", file).CombinedOutput()
			if err != nil || !strings.Contains(string(contents), " ."+c.HelloScript+"\n") {
				t.Errorf("%s: dpkg-deb --contents: %v\n%s", comp, err, contents)
			}
			root := t.TempDir()
			for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates"} {
				if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(dpkg, "--root", root, "-i", file).CombinedOutput(); err != nil || strings.Contains(string(out), "warning") {
				t.Fatalf("%s: dpkg -i: %v\n%s", comp, err, out)
			}
			checkNixTree(t, c, root, &e.Systems[0], []string{c.HelloScript})
			if out, err := exec.Command(dpkg, "--root", root, "-r", "nixtest").CombinedOutput(); err != nil {
				t.Fatalf("%s: dpkg -r: %v\n%s", comp, err, out)
			}
			if _, err := os.Lstat(filepath.Join(root, c.Root)); err == nil {
				t.Errorf("%s: %s is still there after dpkg -r", comp, c.Root)
			}
		}
	})
}
