package oracle

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// LintErrors are the error tags lintian and rpmlint report on any package
// of a store closure, by the nature of one (docs/trees.md lists them): its
// files are at their store paths, outside the file system hierarchy;
// they are read-only (files and folders) and statically linked as the
// store builds them; its scripts' #! lines name interpreters in the
// store, not /bin/sh; a closure has no Debian copyright file or
// changelog; the package is not signed with a GPG key; it is built for
// its system even when it holds no ELF file (store paths are per
// system); and its shared libraries (lib/libc.so.6 of every closure with
// a libc) are found through the store paths programs name, never through
// ld.so.cache, so the package's scriptlets do not run ldconfig.
// package-contains-ancient-file is there while the example's created
// time is 1970.
var LintErrors = map[string]bool{
	"non-standard-toplevel-dir":       true,
	"statically-linked-binary":        true,
	"no-copyright-file":               true,
	"no-changelog":                    true,
	"package-contains-ancient-file":   true,
	"non-standard-executable-perm":    true,
	"non-standard-dir-perm":           true,
	"no-signature":                    true,
	"wrong-path-for-interpreter":      true,
	"wrong-script-interpreter":        true,
	"no-binary":                       true,
	"library-without-ldconfig-postin": true,
	"library-without-ldconfig-postun": true,
	"postin-without-ldconfig":         true,
	"postun-without-ldconfig":         true,
}

// CheckLint runs lintian or rpmlint (the path tool) on pkg and fails t
// on an error tag outside LintErrors.
func CheckLint(t testing.TB, tool, pkg string) {
	t.Helper()
	cmd := exec.Command(tool, pkg)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	b, _ := cmd.CombinedOutput() // both exit non-zero on any error tag
	errors := 0                  // the error tags seen
	for _, line := range strings.Split(string(b), "\n") {
		// lintian: "E: app: TAG ..."; rpmlint: "app.x86_64: E: TAG ...".
		f := strings.Fields(line)
		for i := range f {
			if f[i] == "E:" && i+1 < len(f) {
				tag := f[i+1]
				if strings.HasSuffix(tag, ":") && i+2 < len(f) { // lintian's package name
					tag = f[i+2]
				}
				errors++
				if !LintErrors[tag] {
					t.Errorf("%s %s: error %s", filepath.Base(tool), filepath.Base(pkg), line)
				}
				break
			}
		}
	}
	if len(b) == 0 {
		t.Errorf("%s printed nothing", tool)
	}
	t.Logf("%s %s: %d error tags, each inherent to a store closure", filepath.Base(tool), filepath.Base(pkg), errors)
}
