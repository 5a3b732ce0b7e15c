package export

import (
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

// helloRPM plans an rpm of the Hello fixture's hello-2.12 in /gnu/store,
// payload compressed as c, with the store database and a symlink.
func helloRPM(t testing.TB, root string, c format.Compression) *plan.Export {
	t.Helper()
	e, _ := treeExport(t, format.Format("rpm"), "/gnu/store", root, fixture.Hello(), []string{"hello-2.12"}, func(e *spec.Export) {
		p := helloPackage
		e.Compression, e.Database, e.Package = c, true, &p
		e.Symlinks = map[string]string{"/usr/bin/hello": string(fixture.StorePath("/gnu/store", "hello-2.12")) + "/bin/hello"}
	})
	return e
}

// rpmQuery runs rpm with args and returns its stdout; Debian's rpm's
// advice to use alien (on stderr) is ignored.
func rpmQuery(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(oracle.Require(t, "rpm"), args...)
	cmd.Env = append(os.Environ(), "TZ=UTC") // rpm -qpi prints the build date in local time
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rpm %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// TestRPM writes the rpm with every payload compression and reads it with
// rpm: the metadata (rpm -qpi), the file list with modes, sizes and link
// targets as the tree has them (rpm -qplv against the tree's tar), the
// digests (rpm -K --nosignature), which a changed byte breaks.
func TestRPM(t *testing.T) {
	for _, c := range format.Format("rpm").Def().Compressions {
		t.Run(string(c), func(t *testing.T) {
			e := helloRPM(t, "", c)
			file := writeTreeFile(t, e)
			info := rpmQuery(t, "-qpi", file)
			for _, want := range []string{
				"Name        : hello\n", "Version     : 2.12\n", "Release     : 3\n", "Architecture: x86_64\n",
				"License     : GPL-3.0-or-later\n", "URL         : https://example.org/hello\n",
				"Summary     : GNU Hello, packed from its store closure\n", "Description :\nIt greets.\n\nTwice.\n",
				"Build Date  : Tue Jan  2 03:04:05 2024\n", "Packager    : Release Team <release@example.org>\n",
			} {
				if !strings.Contains(info, want) {
					t.Errorf("rpm -qpi lacks %q:\n%s", want, info)
				}
			}
			if got := rpmQuery(t, "-qp", "--qf", "%{PAYLOADCOMPRESSOR}", file); got != string(c) {
				t.Errorf("payload compressor %q, want %s", got, c)
			}
			// The file list: what the tree's tar holds, but the folders
			// rpm makes itself (above the symlink and the database).
			tarball := e.Systems[0]
			tarball.Tree = &plan.TreeOutput{Created: tarball.Tree.Created, Compression: format.None, Tree: tarball.Tree.Tree}
			want := map[string]string{}
			for _, te := range fixture.ReadTar(t, readTarball(t, writeTreeFile(t, &plan.Export{Name: "t", Format: format.Format("tarball"), Systems: []plan.System{tarball}}), format.None)) {
				name := "/" + strings.TrimSuffix(te.Hdr.Name, "/")
				if strings.HasSuffix(te.Hdr.Name, "/") && !strings.HasPrefix(name, "/gnu") {
					continue
				}
				want[name] = os.FileMode(te.Hdr.Mode).String()
			}
			lines := strings.Split(strings.TrimSpace(rpmQuery(t, "-qplv", file)), "\n")
			if len(lines) != len(want) {
				t.Errorf("rpm -qplv lists %d files, the tree %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
			}
			for _, l := range lines {
				f := strings.Fields(l)
				name := f[8]
				if _, ok := want[name]; !ok {
					t.Errorf("rpm lists %s, which the tree does not hold", name)
				}
				if strings.HasPrefix(l, "-") && f[2] != "root" {
					t.Errorf("%s: owner %s", name, f[2])
				}
			}
			rpmQuery(t, "-K", "--nosignature", file)
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)-100] ^= 0xff
			bad := filepath.Join(t.TempDir(), "bad.rpm")
			if err := os.WriteFile(bad, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("rpm", "-K", "--nosignature", bad).CombinedOutput(); err == nil {
				t.Errorf("rpm -K passes a changed package:\n%s", out)
			}
		})
	}
}

// TestRPMReproducible: the same rpm whatever the umask, time zone,
// working folder, GOMAXPROCS, owners and mtimes of the files.
func TestRPMReproducible(t *testing.T) {
	checkTreeReproducible(t, func(t testing.TB, root string) *plan.Export { return helloRPM(t, root, format.Zstd) })
}

// TestRPMInstall checks rpms of a real Nix closure, in the /nix/store and
// /gnu/store layouts, with rpm: it installs each (--nodeps) into an empty
// root after --initdb, the entry point runs under chroot, every item is
// NAR-identical to the store's, Nix verifies the database, and rpm -e
// removes the package.
func TestRPMInstall(t *testing.T) {
	oracle.RequireRoot(t)
	oracle.Require(t, "rpm")
	oracle.Require(t, "chroot")
	nixtest.ForEachLayout(t, func(t *testing.T, c *nixtest.Closure) {
		for _, comp := range format.Format("rpm").Def().Compressions {
			e := nixTree(t, c, format.Format("rpm"), func(e *spec.Export) { e.Compression = comp })
			file := writeTreeFile(t, e)
			rpmQuery(t, "-K", "--nosignature", file)
			root := t.TempDir()
			rpmQuery(t, "--root", root, "--initdb")
			rpmQuery(t, "--root", root, "-i", "--nodeps", file)
			checkNixTree(t, c, root, &e.Systems[0], []string{c.HelloScript})
			rpmQuery(t, "--root", root, "-e", "nixtest")
			if _, err := os.Lstat(filepath.Join(root, c.Root)); err == nil {
				t.Errorf("%s: %s is still there after rpm -e", comp, c.Root)
			}
		}
	})
}
