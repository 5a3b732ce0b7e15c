package export

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/fixture"
	"github.com/storepack/storepack/internal/oracle"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
)

// scriptLog is the file the test scripts append their name and arguments
// to, and scriptMarker the one postinst makes and postrm removes, both
// inside the root the package is installed into.
const (
	scriptLog    = "/var/lib/storepack-test-log"
	scriptMarker = "/var/lib/storepack-test-marker"
)

// testScripts are maintainer scripts as the spec gives them (with their
// #! lines): each logs its name and arguments; prerm has an interpreter
// with an argument.
var testScripts = plan.Scripts{
	Preinst:  "#!/bin/sh\nset -e\necho \"preinst $*\" >> " + scriptLog + "\n",
	Postinst: "#!/bin/sh\nset -e\necho \"postinst $*\" >> " + scriptLog + "\n: > " + scriptMarker + "\n",
	Prerm:    "#!/bin/busybox sh\necho \"prerm $*\" >> " + scriptLog + "\n",
	Postrm:   "#!/bin/sh\nset -e\necho \"postrm $*\" >> " + scriptLog + "\n/bin/busybox rm -f " + scriptMarker + "\n",
}

// scriptsPackage plans a package (deb or rpm) of the Hello fixture with
// testScripts.
func scriptsPackage(t testing.TB, f format.Format) *plan.Export {
	t.Helper()
	e, _ := treeExport(t, f, "/gnu/store", "", fixture.Hello(), []string{"hello-2.12"}, func(e *spec.Export) {
		p := helloPackage
		p.Priority = "optional"
		p.Scripts = testScripts
		e.Package = &p
	})
	return e
}

// scriptRoot makes an empty root the packages' scripts can run in under
// chroot: busybox (static, Debian's busybox-static) as /bin/busybox and
// /bin/sh, and the folders dpkg and rpm write in.
func scriptRoot(t *testing.T) string {
	t.Helper()
	busybox := oracle.Require(t, "busybox")
	f, err := elf.Open(busybox)
	if err != nil {
		t.Fatalf("%s: %v", busybox, err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("%s is not statically linked: install busybox-static", busybox)
		}
	}
	f.Close()
	root := t.TempDir()
	for _, d := range []string{"bin", "tmp", "var/tmp", "var/lib/dpkg/info", "var/lib/dpkg/updates"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("busybox", filepath.Join(root, "bin/sh")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// checkScriptLog checks what the scripts logged in root, and whether the
// marker is there.
func checkScriptLog(t *testing.T, root, step string, want []string, marker bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, scriptLog))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			got = append(got, l)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("after %s the scripts logged %q, want %q", step, got, want)
	}
	if _, err := os.Stat(filepath.Join(root, scriptMarker)); (err == nil) != marker {
		t.Errorf("after %s: marker there = %v, want %v", step, err == nil, marker)
	}
}

// TestDebScripts: control.tar holds the maintainer scripts after control
// and md5sums, in name order as dpkg-deb writes them, executable, owned
// by root, as the spec gives them; a package without scripts has none.
func TestDebScripts(t *testing.T) {
	tests := []struct {
		name    string
		scripts plan.Scripts
		want    []string // control.tar's names
	}{
		{"none", plan.Scripts{}, []string{"./", "./control", "./md5sums"}},
		{"postinst", plan.Scripts{Postinst: testScripts.Postinst}, []string{"./", "./control", "./md5sums", "./postinst"}},
		{"all", testScripts, []string{"./", "./control", "./md5sums", "./postinst", "./postrm", "./preinst", "./prerm"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := scriptsPackage(t, format.Format("deb"))
			e.Systems[0].Tree.Package.Scripts = tt.scripts
			b, err := os.ReadFile(writeTreeFile(t, e))
			if err != nil {
				t.Fatal(err)
			}
			members := readAr(t, b)
			f := filepath.Join(t.TempDir(), members[1].name)
			if err := os.WriteFile(f, members[1].data, 0o644); err != nil {
				t.Fatal(err)
			}
			texts := map[string]string{"./preinst": tt.scripts.Preinst, "./postinst": tt.scripts.Postinst, "./prerm": tt.scripts.Prerm, "./postrm": tt.scripts.Postrm}
			var names []string
			for _, te := range fixture.ReadTar(t, readTarball(t, f, e.Compression)) {
				names = append(names, te.Hdr.Name)
				if te.Hdr.Uname != "root" || te.Hdr.Gname != "root" || te.Hdr.ModTime.Unix() != e.Systems[0].Tree.MTime() {
					t.Errorf("%s: owner %s:%s, mtime %v", te.Hdr.Name, te.Hdr.Uname, te.Hdr.Gname, te.Hdr.ModTime)
				}
				text, ok := texts[te.Hdr.Name]
				if !ok {
					continue
				}
				if te.Hdr.Mode != 0o755 || te.Hdr.Typeflag != '0' || string(te.Data) != text {
					t.Errorf("%s: mode %o, type %c, text %q; want 755, a file, %q", te.Hdr.Name, te.Hdr.Mode, te.Hdr.Typeflag, te.Data, text)
				}
			}
			if strings.Join(names, " ") != strings.Join(tt.want, " ") {
				t.Errorf("control.tar holds %q, want %q", names, tt.want)
			}
		})
	}
}

// TestDebScriptsDpkg: dpkg -i runs preinst and postinst (which makes the
// marker), dpkg -r runs prerm and postrm (which removes it), with dpkg's
// arguments, in the root; dpkg-deb --info lists them.
func TestDebScriptsDpkg(t *testing.T) {
	oracle.RequireRoot(t)
	dpkg := oracle.Require(t, "dpkg")
	dpkgDeb := oracle.Require(t, "dpkg-deb")
	file := writeTreeFile(t, scriptsPackage(t, format.Format("deb")))
	info, err := exec.Command(dpkgDeb, "--info", file).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb --info: %v\n%s", err, info)
	}
	for _, s := range []string{"preinst", "postinst", "prerm", "postrm"} {
		if !strings.Contains(string(info), " "+s+" ") {
			t.Errorf("dpkg-deb --info does not list %s:\n%s", s, info)
		}
	}
	root := scriptRoot(t)
	if out, err := exec.Command(dpkg, "--root", root, "-i", file).CombinedOutput(); err != nil || strings.Contains(string(out), "warning") {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	checkScriptLog(t, root, "dpkg -i", []string{"preinst install", "postinst configure"}, true)
	if b, err := os.ReadFile(filepath.Join(root, "var/lib/dpkg/info/hello.postinst")); err != nil || string(b) != testScripts.Postinst {
		t.Errorf("dpkg keeps the postinst as %q (%v), want %q", b, err, testScripts.Postinst)
	}
	if out, err := exec.Command(dpkg, "--root", root, "-r", "hello").CombinedOutput(); err != nil {
		t.Fatalf("dpkg -r: %v\n%s", err, out)
	}
	checkScriptLog(t, root, "dpkg -r", []string{"preinst install", "postinst configure", "prerm remove", "postrm remove"}, false)
}

// TestDebScriptsLintian: lintian on a deb with maintainer, section,
// priority, description, scripts and created set reports no error tags
// but those inherent to a store closure (docs/trees.md).
// Its prerm runs with /bin/sh: lintian knows the interpreters of Debian's
// own packages only, and reports unknown-control-interpreter for others
// (busybox).
func TestDebScriptsLintian(t *testing.T) {
	e := scriptsPackage(t, format.Format("deb"))
	e.Systems[0].Tree.Package.Scripts.Prerm = "#!/bin/sh\nset -e\necho prerm \"$@\"\n"
	oracle.CheckLint(t, oracle.Require(t, "lintian"), writeTreeFile(t, e))
}

// TestRPMScripts: rpm reads the scriptlets, each body without its #!
// line, with the line's interpreter (and its argument) as the program.
func TestRPMScripts(t *testing.T) {
	file := writeTreeFile(t, scriptsPackage(t, format.Format("rpm")))
	tests := []struct {
		tag, prog string // the rpm query tags
		script    string
		interp    []string
	}{
		{"PREIN", "PREINPROG", testScripts.Preinst, []string{"/bin/sh"}},
		{"POSTIN", "POSTINPROG", testScripts.Postinst, []string{"/bin/sh"}},
		{"PREUN", "PREUNPROG", testScripts.Prerm, []string{"/bin/busybox", "sh"}},
		{"POSTUN", "POSTUNPROG", testScripts.Postrm, []string{"/bin/sh"}},
	}
	for _, tt := range tests {
		_, body, _ := strings.Cut(tt.script, "\n")
		if got := rpmQuery(t, "-qp", "--qf", "%{"+tt.tag+"}", file); got != strings.TrimSuffix(body, "\n") && got != body {
			t.Errorf("%s %q, want %q", tt.tag, got, body)
		}
		if got := rpmQuery(t, "-qp", "--qf", "[%{"+tt.prog+"}\n]", file); got != strings.Join(tt.interp, "\n")+"\n" {
			t.Errorf("%s %q, want %q", tt.prog, got, tt.interp)
		}
	}
	scripts := rpmQuery(t, "-qp", "--scripts", file)
	for _, want := range []string{
		"preinstall scriptlet (using /bin/sh):\nset -e\necho \"preinst $*\"",
		"postinstall scriptlet (using /bin/sh):\nset -e\n",
		"preuninstall scriptlet (using /bin/busybox sh):\necho \"prerm $*\"",
		"postuninstall scriptlet (using /bin/sh):\nset -e\necho \"postrm $*\"",
	} {
		if !strings.Contains(scripts, want) {
			t.Errorf("rpm -qp --scripts lacks %q:\n%s", want, scripts)
		}
	}
	rpmQuery(t, "-K", "--nosignature", file)
}

// TestRPMScriptsInstall: rpm -i runs %pre and %post (which makes the
// marker), rpm -e runs %preun and %postun (which removes it), with rpm's
// counts of installed instances, in the root.
func TestRPMScriptsInstall(t *testing.T) {
	oracle.RequireRoot(t)
	file := writeTreeFile(t, scriptsPackage(t, format.Format("rpm")))
	root := scriptRoot(t)
	rpmQuery(t, "--root", root, "--initdb")
	rpmQuery(t, "--root", root, "-i", "--nodeps", file)
	checkScriptLog(t, root, "rpm -i", []string{"preinst 1", "postinst 1"}, true)
	rpmQuery(t, "--root", root, "-e", "hello")
	checkScriptLog(t, root, "rpm -e", []string{"preinst 1", "postinst 1", "prerm 0", "postrm 0"}, false)
}

// TestRPMScriptsRpmlint: rpmlint on an rpm with maintainer, description,
// scriptlets and created set reports no error tags but those inherent to
// a store closure (docs/trees.md), whichever scriptlets it has: the
// fixture's libc-2.39/lib/libc.so.6 is a shared library to rpmlint, which
// wants %post and %postun to run ldconfig (library-without-ldconfig-* when
// there is no such scriptlet, *-without-ldconfig when it does not call
// ldconfig). As in TestDebScriptsLintian, prerm runs with /bin/sh: rpmlint
// reports invalid-shell-in-%preun for an interpreter outside its list
// (busybox).
func TestRPMScriptsRpmlint(t *testing.T) {
	rpmlint := oracle.Require(t, "rpmlint")
	prerm := "#!/bin/sh\nset -e\necho prerm \"$@\"\n"
	tests := []struct {
		name    string
		scripts plan.Scripts
	}{
		{"all", plan.Scripts{Preinst: testScripts.Preinst, Postinst: testScripts.Postinst, Prerm: prerm, Postrm: testScripts.Postrm}},
		{"postinst", plan.Scripts{Postinst: testScripts.Postinst}},
		{"postrm", plan.Scripts{Postrm: testScripts.Postrm}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := scriptsPackage(t, format.Format("rpm"))
			e.Systems[0].Tree.Package.Scripts = tt.scripts
			oracle.CheckLint(t, rpmlint, writeTreeFile(t, e))
		})
	}
}
