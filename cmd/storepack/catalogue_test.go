package main

import (
	"context"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/storepack/storepack/export"
	"github.com/storepack/storepack/gen"
	"github.com/storepack/storepack/internal/storetest"
	"github.com/storepack/storepack/spec"
)

// catEnv is the world of one catalogue case: a spec folder, an output
// folder (not made unless the case makes it) and a fake Nix store with a
// database, holding lib and hello (which refers to lib).
type catEnv struct {
	root, dir, out string
	st             *storetest.Store
	// keep are files of the output folder the case put there itself.
	keep []string
}

// expand replaces the placeholders a case's text may hold.
func (c *catEnv) expand(s string) string {
	return strings.NewReplacer(
		"{store}", "store {\n  dir = \""+c.st.Dir+"\"\n}\n",
		"{storedir}", c.st.Dir,
		"{hello}", c.st.Path("hello"),
		"{lib}", c.st.Path("lib"),
		"{db}", c.st.DB,
		"{dir}", c.dir,
		"{out}", c.out,
		"{root}", c.root,
	).Replace(s)
}

// write writes rel under the spec folder.
func (c *catEnv) write(t *testing.T, rel, data string) string {
	t.Helper()
	p := filepath.Join(c.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// helloSpec exports hello's closure in format, with extra attributes.
// Packages get a package block.
func helloSpec(format, extra string) string {
	if format == "deb" || format == "rpm" {
		extra += "  package {\n    version = \"1.0\"\n    maintainer = \"Tests <tests@example.org>\"\n  }\n"
	}
	return "{store}\nlocals {\n  hello = \"{hello}\"\n}\n\nexport \"hello\" {\n  format = \"" + format + "\"\n  paths  = [local.hello]\n" + extra + "}\n"
}

// sourceSpec exports the source "app" at path as a nar bundle.
const sourceSpec = "{store}\nsource \"app\" {\n  path = \"app\"\n}\n\nexport \"app\" {\n  format = \"nar\"\n  paths  = [source.app.store_path]\n}\n"

// catCase is one bad input.
type catCase struct {
	name  string
	files map[string]string // spec folder files (placeholders expanded)
	setup func(t *testing.T, c *catEnv)
	// hold runs while the command runs (set up before it, undone after).
	hold func(t *testing.T, c *catEnv) (release func())
	args []string // default: export -C {dir} --out {out}
	env  []string
	// nobody runs the command as the user nobody (root reads anything).
	nobody bool
	code   int
	want   []string // substrings of stderr (placeholders expanded)
}

// catalogue lists the bad inputs: specs, stores and outputs.
var catalogue = []catCase{
	// Specs: syntax.
	{name: "syntax: unclosed block", files: map[string]string{"bad.hcl": "export \"x\" {\n  format = \"nar\"\n"},
		code: 1, want: []string{"bad.hcl:1:12", "Unclosed configuration block"}},
	{name: "syntax: unterminated string", files: map[string]string{"bad.hcl": "locals {\n  a = \"abc\n}\n"},
		code: 1, want: []string{"bad.hcl:2:", "Unterminated template string"}},
	{name: "syntax: attribute without equals", files: map[string]string{"bad.hcl": "locals {\n  a \"b\"\n}\n"},
		code: 1, want: []string{"bad.hcl:2:8", "Invalid block definition"}},
	// Specs: types.
	{name: "type: paths is a string", files: map[string]string{"s.hcl": "{store}\nexport \"x\" {\n  format = \"nar\"\n  paths  = \"{hello}\"\n}\n"},
		code: 1, want: []string{"s.hcl:7:12", "Incorrect attribute value type", "list of string required"}},
	{name: "type: max_layers is a word", files: map[string]string{"s.hcl": helloSpec("docker", "  max_layers = \"many\"\n")},
		code: 1, want: []string{"s.hcl:12:16", "max_layers", "a number is required"}},
	{name: "type: env is a list", files: map[string]string{"s.hcl": helloSpec("docker", "  env = [\"A=1\"]\n")},
		code: 1, want: []string{"s.hcl:12:9", "env", "map of string required"}},
	{name: "type: variable default of another type", files: map[string]string{"s.hcl": "variable \"n\" {\n  type    = number\n  default = \"abc\"\n}\n" + helloSpec("nar", "")},
		code: 1, want: []string{"s.hcl:3:13", "a number is required"}},
	// Specs: unknown names.
	{name: "unknown block", files: map[string]string{"s.hcl": helloSpec("nar", "") + "frobnicate {\n}\n"},
		code: 1, want: []string{"s.hcl:13:1", "Unsupported block type", "frobnicate"}},
	{name: "unknown export attribute", files: map[string]string{"s.hcl": helloSpec("nar", "  colour = \"red\"\n")},
		code: 1, want: []string{"s.hcl:12:3", "Unsupported argument", "colour"}},
	{name: "unknown store attribute", files: map[string]string{"s.hcl": "store {\n  dir   = \"{storedir}\"\n  speed = 1\n}\n"},
		code: 1, want: []string{"s.hcl:3:3", "Unsupported argument", "speed"}},
	{name: "unknown format", files: map[string]string{"s.hcl": helloSpec("zip", "")},
		code: 1, want: []string{"s.hcl:10:12", "Unknown format", "zip"}},
	{name: "unknown system", files: map[string]string{"s.hcl": helloSpec("nar", "  systems = [\"pdp11-unix\"]\n")},
		code: 1, want: []string{"s.hcl:12:14", "Unknown system", "pdp11-unix"}},
	{name: "unknown variable", files: map[string]string{"s.hcl": "{store}\nexport \"x\" {\n  format = \"nar\"\n  paths  = [var.nope]\n}\n"},
		code: 1, want: []string{"s.hcl:7:16", "Unsupported attribute", "\"nope\""}},
	{name: "unknown function", files: map[string]string{"s.hcl": "{store}\nexport \"x\" {\n  format = \"nar\"\n  paths  = [frob(\"x\")]\n}\n"},
		code: 1, want: []string{"s.hcl:7:13", "Call to unknown function", "frob"}},
	{name: "cyclic locals", files: map[string]string{"s.hcl": "locals {\n  a = local.b\n  b = local.a\n}\n"},
		code: 1, want: []string{"s.hcl:2:", "local.a", "local.b", "ycle"}},
	{name: "variable without a value", files: map[string]string{"s.hcl": "variable \"v\" {\n  type = string\n}\n" + helloSpec("nar", "")},
		code: 1, want: []string{"s.hcl:1:", "\"v\""}},
	{name: "missing format", files: map[string]string{"s.hcl": "{store}\nexport \"x\" {\n  paths = [\"{hello}\"]\n}\n"},
		code: 1, want: []string{"s.hcl:5:", "format"}},
	// Specs: store paths.
	{name: "store path missing from the store", files: map[string]string{"s.hcl": "{store}\nexport \"x\" {\n  format = \"nar\"\n  paths  = [\"{storedir}/00000000000000000000000000000000-gone\"]\n}\n"},
		code: 1, want: []string{"s.hcl:7:13", "Store path not found", "{storedir}/00000000000000000000000000000000-gone"}},
	{name: "path outside the store", files: map[string]string{"s.hcl": "{store}\nexport \"x\" {\n  format = \"nar\"\n  paths  = [\"/etc/passwd\"]\n}\n"},
		code: 1, want: []string{"s.hcl:7:13", "Path outside the store", "/etc/passwd", "{storedir}"}},
	{name: "path inside a store item", files: map[string]string{"s.hcl": "{store}\nexport \"x\" {\n  format = \"nar\"\n  paths  = [\"{hello}/bin/hello\"]\n}\n"},
		code: 1, want: []string{"s.hcl:7:13", "Not a store item", "{hello}/bin/hello"}},
	{name: "not a store path name", files: map[string]string{"s.hcl": "{store}\nexport \"x\" {\n  format = \"nar\"\n  paths  = [\"{storedir}/not-a-store-path\"]\n}\n"},
		code: 1, want: []string{"s.hcl:7:13", "Invalid store path", "{storedir}/not-a-store-path"}},
	// Specs: image settings and outputs.
	{name: "max_layers 0", files: map[string]string{"s.hcl": helloSpec("docker", "  max_layers = 0\n")},
		code: 1, want: []string{"s.hcl:12:16", "max_layers out of range", "not 0"}},
	{name: "max_layers 128", files: map[string]string{"s.hcl": helloSpec("docker", "  max_layers = 128\n")},
		code: 1, want: []string{"s.hcl:12:16", "max_layers out of range", "not 128"}},
	{name: "image attribute on a nar export", files: map[string]string{"s.hcl": helloSpec("nar", "  tag = \"x:1\"\n")},
		code: 1, want: []string{"s.hcl:12:3", "Attribute only for images", "tag"}},
	{name: "bad tag", files: map[string]string{"s.hcl": helloSpec("docker", "  tag = \"Hello World\"\n")},
		code: 1, want: []string{"s.hcl:12:9", "Invalid tag", "Hello World"}},
	{name: "duplicate outputs", files: map[string]string{"s.hcl": helloSpec("docker", "  output = \"same.tar\"\n") +
		"\nexport \"other\" {\n  format = \"docker\"\n  paths  = [local.hello]\n  output = \"same.tar\"\n}\n"},
		code: 1, want: []string{"s.hcl:18:12", "Duplicate output", "same.tar"}},
	{name: "duplicate export names", files: map[string]string{"s.hcl": helloSpec("nar", "") + "\nexport \"hello\" {\n  format = \"nar\"\n  paths  = [local.hello]\n}\n"},
		code: 1, want: []string{"s.hcl:14:8", "Duplicate export", "s.hcl:9:1"}},
	{name: "output outside the output folder", files: map[string]string{"s.hcl": helloSpec("nar", "  output = \"../escape.nar\"\n")},
		code: 1, want: []string{"s.hcl:12:12", "Invalid output", "../escape.nar"}},
	{name: "file() of a device", files: map[string]string{"s.hcl": "locals {\n  z = file(\"/dev/zero\")\n}\n"},
		code: 1, want: []string{"s.hcl:2:", "/dev/zero", "not a regular file (a character device)"}},
	{name: "file() of a FIFO", files: map[string]string{"s.hcl": "locals {\n  z = file(\"pipe\")\n}\n"},
		setup: func(t *testing.T, c *catEnv) { mkfifo(t, filepath.Join(c.dir, "pipe")) },
		code:  1, want: []string{"s.hcl:2:", "pipe", "not a regular file (a FIFO)"}},
	// Specs: folders and command lines.
	{name: "spec folder without *.hcl files", files: map[string]string{"README": "no spec here\n"},
		code: 1, want: []string{"{dir}", "no *.hcl files"}},
	{name: "spec folder missing", args: []string{"export", "-C", "{root}/nowhere", "--out", "{out}"},
		code: 1, want: []string{"{root}/nowhere"}},
	{name: "unknown export named", files: map[string]string{"s.hcl": helloSpec("nar", "")}, args: []string{"export", "-C", "{dir}", "--out", "{out}", "nope"},
		code: 1, want: []string{"\"nope\""}},
	{name: "unknown export in STOREPACK_EXPORTS", files: map[string]string{"s.hcl": helloSpec("nar", "")}, env: []string{"STOREPACK_EXPORTS=nope"},
		code: 1, want: []string{"STOREPACK_EXPORTS", "\"nope\""}},
	{name: "--var without a value", files: map[string]string{"s.hcl": helloSpec("nar", "")}, args: []string{"export", "-C", "{dir}", "--var", "novalue"},
		code: 2, want: []string{"novalue", "name=value"}},
	{name: "unknown flag", args: []string{"export", "--colour", "-C", "{dir}"},
		code: 2, want: []string{"colour"}},
	// Sources.
	{name: "source path missing", files: map[string]string{"s.hcl": sourceSpec},
		code: 1, want: []string{"s.hcl:6:10", "Source not found", "spec folder {dir}"}},
	{name: "source path is a symlink loop", files: map[string]string{"s.hcl": sourceSpec},
		setup: func(t *testing.T, c *catEnv) { symlink(t, "app", filepath.Join(c.dir, "app")) },
		code:  1, want: []string{"s.hcl:6:10", "Source is a symbolic link loop", "{dir}/app", "too many levels of symbolic links"}},
	{name: "source holding a FIFO", files: map[string]string{"s.hcl": sourceSpec, "app/ok": "fine\n"},
		setup: func(t *testing.T, c *catEnv) { mkfifo(t, filepath.Join(c.dir, "app/pipe")) },
		code:  1, want: []string{"{dir}/app/pipe", "FIFO", "cannot be stored in a NAR"}},
	{name: "source holding a socket", files: map[string]string{"s.hcl": sourceSpec, "app/ok": "fine\n"},
		setup: func(t *testing.T, c *catEnv) { mksocket(t, filepath.Join(c.dir, "app/sock")) },
		code:  1, want: []string{"{dir}/app/sock", "socket", "cannot be stored in a NAR"}},
	{name: "source holding an unreadable file", files: map[string]string{"s.hcl": sourceSpec, "app/ok": "fine\n", "app/secret": "no\n"},
		setup: func(t *testing.T, c *catEnv) { chmod(t, filepath.Join(c.dir, "app/secret"), 0) }, nobody: true,
		code: 1, want: []string{"{dir}/app/secret", "permission denied"}},
	// Store databases.
	{name: "database missing", files: map[string]string{"s.hcl": strings.Replace(helloSpec("nar", ""), "{store}", "store {\n  dir = \"{storedir}\"\n  db  = \"{root}/none.sqlite\"\n}\n", 1)},
		code: 1, want: []string{"store database {root}/none.sqlite", "no such file"}},
	{name: "database not SQLite", files: map[string]string{"s.hcl": helloSpec("nar", "")},
		setup: func(t *testing.T, c *catEnv) { writeFile(t, c.st.DB, "not a database\n") },
		code:  1, want: []string{"store database {db}", "not an SQLite database"}},
	{name: "database is a FIFO", files: map[string]string{"s.hcl": helloSpec("nar", "")},
		setup: func(t *testing.T, c *catEnv) {
			removeAll(t, c.st.DB)
			mkfifo(t, c.st.DB)
		},
		code: 1, want: []string{"store database {db}: not a regular file"}},
	{name: "database corrupt", files: map[string]string{"s.hcl": helloSpec("nar", "")},
		setup: func(t *testing.T, c *catEnv) { corrupt(t, c.st.DB) },
		code:  1, want: []string{"store database {db}: corrupt"}},
	{name: "database of another schema", files: map[string]string{"s.hcl": helloSpec("nar", "")},
		setup: func(t *testing.T, c *catEnv) {
			c.st.Exec(t, "DROP TABLE Refs")
			c.st.Exec(t, "CREATE TABLE Refs (a integer, b integer)")
		},
		code: 1, want: []string{"store database {db}", "not a store database", "table Refs has no column referrer"}},
	{name: "database locked by a writer", files: map[string]string{"s.hcl": helloSpec("nar", "")},
		hold: holdExclusive,
		code: 1, want: []string{"store database {db}: locked by a writer"}},
	{name: "database with a malformed NAR hash", files: map[string]string{"s.hcl": helloSpec("nar", "")},
		setup: func(t *testing.T, c *catEnv) {
			c.st.Exec(t, "UPDATE ValidPaths SET hash = 'md5:0123' WHERE path = ?", c.st.Path("lib"))
		},
		code: 1, want: []string{"{lib}", "store database {db}", "md5:0123"}},
	// Store items.
	{name: "store folder missing", files: map[string]string{"s.hcl": "store {\n  dir = \"{root}/gone/nix/store\"\n  db  = \"none\"\n}\n\nexport \"x\" {\n  format = \"nar\"\n  paths  = [\"{root}/gone/nix/store/00000000000000000000000000000000-x\"]\n}\n"},
		code: 1, want: []string{"s.hcl:8:13", "{root}/gone/nix/store"}},
	{name: "item registered but not on disk", files: map[string]string{"s.hcl": helloSpec("nar", "")},
		setup: func(t *testing.T, c *catEnv) { removeAll(t, c.st.Path("lib")) },
		code:  1, want: []string{"{lib}", "not on disk"}},
	{name: "item on disk but not registered", files: map[string]string{"s.hcl": "{store}\nexport \"x\" {\n  format = \"nar\"\n  paths  = [\"{storedir}/11111111111111111111111111111111-stray\"]\n}\n"},
		setup: func(t *testing.T, c *catEnv) {
			writeFile(t, c.st.Dir+"/11111111111111111111111111111111-stray", "stray\n")
		},
		code: 1, want: []string{"{storedir}/11111111111111111111111111111111-stray", "not a valid path in the store database {db}"}},
	{name: "store item holding a FIFO, scanning", files: map[string]string{"s.hcl": strings.Replace(helloSpec("nar", ""), "{store}", "store {\n  dir = \"{storedir}\"\n  db  = \"none\"\n}\n", 1)},
		setup: func(t *testing.T, c *catEnv) { mkfifo(t, c.st.Path("lib")+"/pipe") },
		code:  1, want: []string{"{lib}/pipe", "FIFO"}},
	{name: "store item holding a socket, docker", files: map[string]string{"s.hcl": helloSpec("docker", "")},
		setup: func(t *testing.T, c *catEnv) { mksocket(t, c.st.Path("lib")+"/sock") },
		code:  1, want: []string{"{lib}/sock", "socket"}},
	{name: "store item holding an unreadable file", files: map[string]string{"s.hcl": helloSpec("docker", "")},
		setup: func(t *testing.T, c *catEnv) {
			writeFile(t, c.st.Path("lib")+"/secret", "")
			chmod(t, c.st.Path("lib")+"/secret", 0)
		},
		nobody: true, code: 1, want: []string{"{lib}/secret", "permission denied"}},
	{name: "NAR hash mismatch, --check, docker", files: map[string]string{"s.hcl": helloSpec("docker", "")},
		setup: tamper, args: []string{"export", "--check", "-C", "{dir}", "--out", "{out}"},
		code: 1, want: []string{"{lib}", "recorded sha256:", "actual sha256:"}},
	{name: "NAR hash mismatch, STOREPACK_CHECK=1, binary-cache", files: map[string]string{"s.hcl": helloSpec("binary-cache", "  compression = \"none\"\n")},
		setup: tamper, env: []string{"STOREPACK_CHECK=1"},
		code: 1, want: []string{"{lib}", "recorded sha256:", "actual sha256:"}},
	{name: "NAR hash mismatch, --check, squashfs", files: map[string]string{"s.hcl": helloSpec("squashfs", "")},
		setup: tamper, args: []string{"export", "--check", "-C", "{dir}", "--out", "{out}"},
		code: 1, want: []string{"{lib}", "recorded sha256:", "actual sha256:"}},
	{name: "package block on docker", files: map[string]string{"s.hcl": helloSpec("docker", "  package {\n    version = \"1\"\n  }\n")},
		code: 1, want: []string{"s.hcl:12:3", "Block only for deb and rpm"}},
	{name: "deb without version", files: map[string]string{"s.hcl": helloSpec("tarball", "") + "export \"pkg\" {\n  format = \"deb\"\n  paths = [local.hello]\n  package {\n    maintainer = \"a <b@c>\"\n  }\n}\n"},
		code: 1, want: []string{"s.hcl:16:11", "Missing required argument", "version"}},
	{name: "unknown tarball compression", files: map[string]string{"s.hcl": helloSpec("tarball", "  compression = \"lz4\"\n")},
		code: 1, want: []string{"s.hcl:12:17", "Unknown compression", "lz4"}},
	{name: "NAR hash mismatch, nar bundle", files: map[string]string{"s.hcl": helloSpec("nar", "")},
		setup: tamper,
		code:  1, want: []string{"{lib}", "have changed", "recorded sha256:"}},
	// Output folders.
	{name: "output folder is a file", files: map[string]string{"s.hcl": helloSpec("nar", "")},
		setup: func(t *testing.T, c *catEnv) { writeFile(t, c.out, "a file\n") },
		code:  1, want: []string{"output folder {out}", "not a directory"}},
	{name: "output folder's parent is a file", files: map[string]string{"s.hcl": helloSpec("nar", "")},
		setup: func(t *testing.T, c *catEnv) { writeFile(t, c.root+"/file", "a file\n") },
		args:  []string{"export", "-C", "{dir}", "--out", "{root}/file/out"},
		code:  1, want: []string{"output folder {root}/file/out", "not a directory"}},
	{name: "output folder not writable", files: map[string]string{"s.hcl": helloSpec("nar", "")},
		setup: func(t *testing.T, c *catEnv) { mkdir(t, c.out) }, nobody: true,
		code: 1, want: []string{"output folder {out}: cannot create the lock file", "permission denied"}},
	{name: "output is an existing folder", files: map[string]string{"s.hcl": helloSpec("nar", "")},
		setup: func(t *testing.T, c *catEnv) {
			writeFile(t, c.out+"/hello.nar/keep", "old\n")
			c.keep = append(c.keep, "hello.nar/keep")
		},
		code: 1, want: []string{"{out}/hello.nar: a folder is in the way"}},
}

// TestCatalogue runs every bad input through the command: exit status 1
// (2 for usage), no panic, a message naming what is wrong and where, and
// nothing left in the output folder but what was there.
func TestCatalogue(t *testing.T) {
	if len(catalogue) < 40 {
		t.Errorf("the catalogue has %d cases, want at least 40", len(catalogue))
	}
	for _, tc := range catalogue {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.nobody && os.Geteuid() != 0 {
				t.Skip("needs root to run the command as nobody")
			}
			c := newCatEnv(t)
			for rel, data := range tc.files {
				c.write(t, rel, c.expand(data))
			}
			if tc.setup != nil {
				tc.setup(t, c)
			}
			args := tc.args
			if args == nil {
				args = []string{"export", "-C", "{dir}", "--out", "{out}"}
			}
			for i := range args {
				args = slices.Clone(args)
				args[i] = c.expand(args[i])
			}
			if tc.hold != nil {
				defer tc.hold(t, c)()
			}
			var r result
			if tc.nobody {
				r = runAsNobody(t, c, tc.env, args...)
			} else {
				r = storepackEnv(t, tc.env, args...)
			}
			stderr := string(r.stderr)
			t.Logf("storepack %s: exit %d\n%s", strings.Join(args, " "), r.code, stderr)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", r.code, tc.code, stderr)
			}
			for _, bad := range []string{"panic:", "goroutine ", "runtime error"} {
				if strings.Contains(stderr, bad) {
					t.Errorf("stderr holds %q:\n%s", bad, stderr)
				}
			}
			// Words are looked for with the test's folders (whose names
			// hold the case's) taken out.
			plain := strings.ReplaceAll(stderr, filepath.Dir(c.root), "TMP")
			for _, w := range tc.want {
				in := plain
				if strings.Contains(w, "{") {
					in = stderr
				}
				if w = c.expand(w); !strings.Contains(in, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if tc.code == 1 && !strings.HasPrefix(lines[len(lines)-1], "storepack: ") {
				t.Errorf("the last line of stderr is not \"storepack: ...\":\n%s", stderr)
			}
			checkNoOutput(t, c)
		})
	}
}

// newCatEnv makes a case's folders and the fake store.
func newCatEnv(t *testing.T) *catEnv {
	t.Helper()
	root := t.TempDir()
	c := &catEnv{root: root, dir: filepath.Join(root, "spec"), out: filepath.Join(root, "out")}
	if err := os.Mkdir(c.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c.st = storetest.New(t, false,
		storetest.Item{Name: "lib", Files: map[string]string{"lib/libx.so": "library\n"}},
		storetest.Item{Name: "hello", Files: map[string]string{"bin/hello": "#!/bin/sh\necho hello\n"}, Refs: []string{"lib"}},
	)
	return c
}

// checkNoOutput fails when the output folder holds anything but the export
// lock file and what the case put there: no output, no temporary file.
func checkNoOutput(t *testing.T, c *catEnv) {
	t.Helper()
	fi, err := os.Stat(c.out)
	if err != nil || !fi.IsDir() {
		return
	}
	filepath.WalkDir(c.out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(c.out, p)
		if rel != export.OutLockFile && !slices.Contains(c.keep, rel) {
			t.Errorf("the failed export left %s in the output folder", rel)
		}
		return nil
	})
	for _, k := range c.keep {
		if _, err := os.Stat(filepath.Join(c.out, k)); err != nil {
			t.Errorf("the failed export removed %s: %v", k, err)
		}
	}
}

// storepackEnv runs the binary with extra environment variables.
func storepackEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(cleanEnv(), env...)
	return runCmd(t, cmd)
}

// runCmd runs cmd and collects what it printed and its exit status.
func runCmd(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{[]byte(stdout.String()), []byte(stderr.String()), 0}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
		}
		r.code = ee.ExitCode()
	}
	return r
}

// runAsNobody runs the binary as the user nobody, after letting
// nobody reach the case's folders: every folder under them is opened up
// (files keep their modes) and the output folder, unless the case made it,
// is nobody's.
func runAsNobody(t *testing.T, c *catEnv, env []string, args ...string) result {
	t.Helper()
	if _, err := os.Stat(c.out); os.IsNotExist(err) {
		mkdir(t, c.out)
		if err := os.Chown(c.out, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	for _, top := range []string{c.root, c.st.Root} {
		for d := filepath.Dir(top); d != "/" && d != filepath.Clean(os.TempDir()); d = filepath.Dir(d) {
			chmod(t, d, 0o755)
		}
		filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() && p != c.out {
				chmod(t, p, 0o755)
			}
			return nil
		})
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(cleanEnv(), env...)
	cmd.Dir = c.root
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	return runCmd(t, cmd)
}

// holdExclusive takes an exclusive lock on the store database, as a writer
// in the middle of a transaction does, until released.
func holdExclusive(t *testing.T, c *catEnv) func() {
	t.Helper()
	ctx := context.Background()
	db := c.st.Writer(t)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "UPDATE ValidPaths SET registrationTime = 2"); err != nil {
		t.Fatal(err)
	}
	return func() {
		conn.ExecContext(ctx, "ROLLBACK")
		conn.Close()
		db.Close()
	}
}

// tamper changes lib's files after the database recorded their NAR hash.
func tamper(t *testing.T, c *catEnv) {
	writeFile(t, c.st.Path("lib")+"/lib/libx.so", "tampered\n")
}

// corrupt overwrites everything after the first page header of an SQLite
// file, keeping its magic.
func corrupt(t *testing.T, p string) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := 100; i < len(data); i++ {
		data[i] = byte(i*7 + 3)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	mkdir(t, filepath.Dir(p))
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func chmod(t *testing.T, p string, mode fs.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

func removeAll(t *testing.T, p string) {
	t.Helper()
	if err := os.RemoveAll(p); err != nil {
		t.Fatal(err)
	}
}

func mkfifo(t *testing.T, p string) {
	t.Helper()
	mkdir(t, filepath.Dir(p))
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
}

// mksocket leaves a Unix socket file at p (its listener closed).
func mksocket(t *testing.T, p string) {
	t.Helper()
	mkdir(t, filepath.Dir(p))
	// Socket addresses are short: bind in a short folder, then move.
	tmp, err := os.MkdirTemp("", "sock")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(tmp, "s"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if err := os.Rename(filepath.Join(tmp, "s"), p); err != nil {
		t.Fatal(err)
	}
}

// TestChangedAfterPlan plans an export, then removes or changes a store
// item before writing it, through the library as a long pipeline would
// meet it: writing fails naming the item and leaves no output and no
// temporary file. Docker and OCI archives read what is there (only
// Options.Check re-hashes before writing), so a changed item is not an
// error for them; a vanished one always is.
func TestChangedAfterPlan(t *testing.T) {
	for _, format := range []string{"nar", "docker", "oci", "binary-cache", "tarball", "squashfs", "deb", "rpm"} {
		for _, change := range []string{"vanished", "changed"} {
			t.Run(format+" "+change, func(t *testing.T) {
				c := newCatEnv(t)
				c.write(t, "s.hcl", c.expand(helloSpec(format, "")))
				sp, diags := spec.Load(spec.LoadOptions{Dir: c.dir})
				if diags.HasErrors() {
					t.Fatal(diags)
				}
				plan, err := gen.Generate(context.Background(), sp)
				if err != nil {
					t.Fatal(err)
				}
				lib := c.st.Path("lib")
				if change == "vanished" {
					removeAll(t, lib)
				} else {
					tamper(t, c)
				}
				_, err = export.Write(plan, c.out, export.Options{})
				t.Logf("export.Write: %v", err)
				// Images and trees take the files as they are (--check
				// checks them first).
				if change == "changed" && format != "nar" && format != "binary-cache" {
					if err != nil {
						t.Errorf("export.Write: %v", err)
					}
					return
				}
				if err == nil {
					t.Fatalf("export.Write succeeded after %s was %s", lib, change)
				}
				if !strings.Contains(err.Error(), lib) {
					t.Errorf("error %q does not name %s", err, lib)
				}
				checkNoOutput(t, c)
			})
		}
	}
}

// TestCatalogueGood holds the inputs next to the catalogue's that must
// work: a symlink loop inside a source (a NAR stores links, never follows
// them), --check on an untouched store in every format, and a WAL-mode
// database while a writer holds a transaction (readers are not blocked).
func TestCatalogueGood(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		setup func(t *testing.T, c *catEnv)
		hold  func(t *testing.T, c *catEnv) func()
		args  []string
		wal   bool
	}{
		{name: "symlink loop inside a source", files: map[string]string{"s.hcl": sourceSpec, "app/ok": "fine\n"},
			setup: func(t *testing.T, c *catEnv) { symlink(t, "loop", filepath.Join(c.dir, "app/loop")) }},
		{name: "--check nar", files: map[string]string{"s.hcl": helloSpec("nar", "")}, args: []string{"--check"}},
		{name: "--check docker", files: map[string]string{"s.hcl": helloSpec("docker", "")}, args: []string{"--check"}},
		{name: "--check oci", files: map[string]string{"s.hcl": helloSpec("oci", "")}, args: []string{"--check"}},
		{name: "--check binary-cache", files: map[string]string{"s.hcl": helloSpec("binary-cache", "")}, args: []string{"--check"}},
		{name: "--check tarball", files: map[string]string{"s.hcl": helloSpec("tarball", "  database = true\n")}, args: []string{"--check"}},
		{name: "--check squashfs", files: map[string]string{"s.hcl": helloSpec("squashfs", "")}, args: []string{"--check"}},
		{name: "--check deb", files: map[string]string{"s.hcl": helloSpec("deb", "")}, args: []string{"--check"}},
		{name: "--check rpm", files: map[string]string{"s.hcl": helloSpec("rpm", "")}, args: []string{"--check"}},
		{name: "WAL database with a writer", files: map[string]string{"s.hcl": helloSpec("nar", "")}, hold: holdExclusive, wal: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCatEnv(t)
			if tt.wal {
				c.st.Exec(t, "PRAGMA journal_mode=WAL")
			}
			for rel, data := range tt.files {
				c.write(t, rel, c.expand(data))
			}
			if tt.setup != nil {
				tt.setup(t, c)
			}
			if tt.hold != nil {
				defer tt.hold(t, c)()
			}
			args := append([]string{"export", "-C", c.dir, "--out", c.out}, tt.args...)
			r := storepackEnv(t, nil, args...)
			if r.code != 0 {
				t.Fatalf("exit %d\n%s", r.code, r.stderr)
			}
			if len(r.stdout) == 0 {
				t.Error("the export printed no file")
			}
		})
	}
}
