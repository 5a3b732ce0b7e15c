package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/storepack/storepack/internal/nixtest"
	"github.com/storepack/storepack/internal/oracle"
)

// bin is the storepack binary built for this test run.
var bin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "storepack-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The user nobody runs the binary too (runAsNobody): it must reach it.
	// Making it reachable here, rather than copying it for each test, keeps
	// a file open for writing out of the forks of parallel tests, which
	// would make exec fail with "text file busy".
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Layer caches go to a folder of this run, not the user's.
	cacheHome = filepath.Join(dir, "cache")
	bin = filepath.Join(dir, "storepack")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building storepack:", err)
		return 1
	}
	return m.Run()
}

// result is what one run of storepack gave.
type result struct {
	stdout, stderr []byte
	code           int
}

// cleanEnv is the test's environment without Nix's variables, so that
// storepack finds the database from --store alone.
func cleanEnv() []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "NIX_") || strings.HasPrefix(kv, "XDG_CACHE_HOME=")
	})
	return append(env, "XDG_CACHE_HOME="+cacheHome)
}

// cacheHome is XDG_CACHE_HOME for the commands a test runs.
var cacheHome string

// storepack runs the binary with args and stdin (nil for none).
func storepack(t *testing.T, stdin io.Reader, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv()
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout.Bytes(), stderr.Bytes(), 0}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("storepack %s: %v", strings.Join(args, " "), err)
		}
		r.code = ee.ExitCode()
	}
	return r
}

// ok runs storepack and fails the test unless it succeeds.
func ok(t *testing.T, stdin io.Reader, args ...string) []byte {
	t.Helper()
	r := storepack(t, stdin, args...)
	if r.code != 0 {
		t.Fatalf("storepack %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	if len(r.stderr) != 0 {
		t.Errorf("storepack %s: wrote to stderr: %s", strings.Join(args, " "), r.stderr)
	}
	return r.stdout
}

// localTree writes a tree outside any store with each kind of node.
func localTree(t *testing.T, name string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), name)
	for _, d := range []string{"sub/deeper", "empty-dir", "dør"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := []struct {
		rel  string
		data string
		mode fs.FileMode
	}{
		{"file", "some contents\n", 0o644},
		{"sub/deeper/exec", "#!/bin/sh\necho hi\n", 0o700},
		{"empty", "", 0o600},
		{"dør/café-日本", "non-ASCII\n", 0o644},
		{strings.Repeat("long-", 45), "long name\n", 0o644},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(root, f.rel), []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"link": "file", "sub/dangling": "../nowhere"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// makeRemovable lets t.TempDir's cleanup remove the read-only trees that
// restore creates, also when not running as root.
func makeRemovable(t *testing.T, dir string) {
	t.Cleanup(func() {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})
}

// dumpPaths are the paths dump, hash and restore are checked on: every item
// of the closure, some paths inside items, and a tree outside the store.
func dumpPaths(t *testing.T, c *nixtest.Closure) []string {
	t.Helper()
	paths := c.Paths(t)
	odd := c.Items[nixtest.Odd]
	return append(paths,
		odd+"/sub",
		odd+"/dangling",
		odd+"/self",
		c.Items[nixtest.Leaf]+"/share/empty-dir",
		c.HelloScript,
		localTree(t, "local"),
	)
}

// TestDump compares `storepack dump` with `nix-store --dump`, byte for byte.
func TestDump(t *testing.T) {
	nixtest.ForEachLayout(t, func(t *testing.T, c *nixtest.Closure) {
		for _, p := range dumpPaths(t, c) {
			want := c.Output(t, "nix-store", "--dump", p)
			if got := ok(t, nil, "dump", p); !bytes.Equal(got, want) {
				t.Errorf("dump %s: %d bytes differ from nix-store --dump's %d", p, len(got), len(want))
			}
		}
	})
}

// TestHash compares `storepack hash` with `nix-hash --type sha256`, in hex
// and in Nix base32, the flag before and after the operand.
func TestHash(t *testing.T) {
	nixHash := oracle.Require(t, "nix-hash")
	nixtest.ForEachLayout(t, func(t *testing.T, c *nixtest.Closure) {
		for _, p := range dumpPaths(t, c) {
			tests := []struct {
				ours, theirs []string
			}{
				{[]string{"hash", p}, []string{"--type", "sha256", p}},
				{[]string{"hash", "--base32", p}, []string{"--type", "sha256", "--base32", p}},
				{[]string{"hash", p, "--base32"}, []string{"--type", "sha256", "--base32", p}},
			}
			for _, tt := range tests {
				want := c.Output(t, nixHash, tt.theirs...)
				if got := ok(t, nil, tt.ours...); !bytes.Equal(got, want) {
					t.Errorf("storepack %s: %q, nix-hash %s: %q", strings.Join(tt.ours, " "), got, strings.Join(tt.theirs, " "), want)
				}
			}
		}
		// Several paths at once: a line each, in order.
		paths := dumpPaths(t, c)
		want := c.Output(t, nixHash, append([]string{"--type", "sha256", "--base32"}, paths...)...)
		if got := ok(t, nil, append([]string{"hash", "--base32"}, paths...)...); !bytes.Equal(got, want) {
			t.Errorf("storepack hash of %d paths:\n%s\nnix-hash:\n%s", len(paths), got, want)
		}
	})
}

// rootSets are the roots closure and bundle are checked on.
var rootSets = [][]string{
	{nixtest.Top},
	{nixtest.Leaf},
	{nixtest.Odd},
	{nixtest.Hello},
	{nixtest.Left, nixtest.Right},
	{nixtest.Link, nixtest.File, nixtest.Long},
}

func roots(c *nixtest.Closure, attrs []string) []string {
	var out []string
	for _, a := range attrs {
		out = append(out, c.Items[a])
	}
	return out
}

// TestClosure compares `storepack closure` with `nix-store -qR`, through
// the database (found from --store, or named) and by scanning.
func TestClosure(t *testing.T) {
	nixtest.ForEachLayout(t, func(t *testing.T, c *nixtest.Closure) {
		dbFlags := [][]string{
			{"--store", c.StoreDir},
			{"--store", c.StoreDir, "--db", "auto"},
			{"--store", c.StoreDir, "--db", c.DBPath},
			{"--store", c.StoreDir, "--db", "none"},
		}
		for _, attrs := range rootSets {
			rs := roots(c, attrs)
			want := c.Output(t, "nix-store", append([]string{"-qR"}, rs...)...)
			for _, flags := range dbFlags {
				args := append(append([]string{"closure"}, flags...), rs...)
				if got := ok(t, nil, args...); !bytes.Equal(got, want) {
					t.Errorf("storepack %s:\n%s\nnix-store -qR:\n%s", strings.Join(args, " "), got, want)
				}
			}
			// Flags after the operands.
			args := append(append([]string{"closure"}, rs...), "--db", "none", "--store", c.StoreDir)
			if got := ok(t, nil, args...); !bytes.Equal(got, want) {
				t.Errorf("storepack %s:\n%s\nnix-store -qR:\n%s", strings.Join(args, " "), got, want)
			}
		}
	})
}

// TestBundle compares `storepack bundle` with
// `nix-store --export $(nix-store -qR ROOTS)`, byte for byte.
func TestBundle(t *testing.T) {
	nixtest.ForEachLayout(t, func(t *testing.T, c *nixtest.Closure) {
		for _, attrs := range rootSets {
			rs := roots(c, attrs)
			closure := c.Lines(t, "nix-store", append([]string{"-qR"}, rs...)...)
			want := c.Output(t, "nix-store", append([]string{"--export"}, closure...)...)
			for _, flags := range [][]string{{"--store", c.StoreDir}, {"--store", c.StoreDir, "--db", c.DBPath}} {
				args := append(append([]string{"bundle"}, flags...), rs...)
				if got := ok(t, nil, args...); !bytes.Equal(got, want) {
					t.Errorf("storepack %s: %d bytes differ from nix-store --export's %d", strings.Join(args, " "), len(got), len(want))
				}
			}
		}
	})
}

// TestBundleImport has Nix import our bundle: into the store it came from
// (`nix-store --import`, which parses it all and finds the paths valid)
// and into an empty chroot store (`nix-store --store DIR --import`), whose
// contents Nix then verifies against the hashes it recorded.
func TestBundleImport(t *testing.T) {
	nixtest.ForEachLayout(t, func(t *testing.T, c *nixtest.Closure) {
		bundle := ok(t, nil, "bundle", "--store", c.StoreDir, c.Root)
		closure := c.Paths(t)
		for _, target := range [][]string{nil, {"--store", t.TempDir()}} {
			cmd := c.Command("nix-store", append(target, "--import")...)
			cmd.Stdin = bytes.NewReader(bundle)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("nix-store %s --import: %v\n%s", strings.Join(target, " "), err, stderr.Bytes())
			}
			if got := strings.Fields(string(out)); !slices.Equal(got, closure) {
				t.Errorf("nix-store %s --import printed %q, want %q", strings.Join(target, " "), got, closure)
			}
			if target == nil {
				continue
			}
			c.Output(t, "nix-store", append(target, "--verify", "--check-contents")...)
			if got := c.Lines(t, "nix-store", append(target, "-qR", c.Root)...); !slices.Equal(got, closure) {
				t.Errorf("imported closure %q, want %q", got, closure)
			}
			for _, p := range closure {
				drv := c.Lines(t, "nix-store", "-q", "--deriver", p)
				if got := c.Lines(t, "nix-store", append(target, "-q", "--deriver", p)...); !slices.Equal(got, drv) {
					t.Errorf("%s: imported deriver %q, want %q", p, got, drv)
				}
			}
		}
	})
}

// TestAdd compares `storepack add` with the path `nix-store --add` gives
// (which does write to the store), for a file and a folder, with and
// without --name.
func TestAdd(t *testing.T) {
	nixtest.ForEachLayout(t, func(t *testing.T, c *nixtest.Closure) {
		tree := localTree(t, "tree")
		named := localTree(t, "other-name")
		tests := []struct {
			ours   []string
			theirs string // what nix-store --add adds
		}{
			{[]string{"add", "--store", c.StoreDir, tree}, tree},
			{[]string{"add", "--store", c.StoreDir, filepath.Join(tree, "file")}, filepath.Join(tree, "file")},
			{[]string{"add", "--store", c.StoreDir, filepath.Join(tree, "sub/deeper/exec")}, filepath.Join(tree, "sub/deeper/exec")},
			{[]string{"add", "--store", c.StoreDir, filepath.Join(tree, "empty")}, filepath.Join(tree, "empty")},
			{[]string{"add", "--store", c.StoreDir, "--name", "other-name", tree}, named},
			{[]string{"add", tree, "--name", "other-name", "--store", c.StoreDir}, named},
		}
		for _, tt := range tests {
			want := c.Output(t, "nix-store", "--add", tt.theirs)
			if got := ok(t, nil, tt.ours...); !bytes.Equal(got, want) {
				t.Errorf("storepack %s: %q, nix-store --add %s: %q", strings.Join(tt.ours, " "), got, tt.theirs, want)
			}
		}
	})
}

// TestRestore restores `nix-store --dump` output with `storepack restore`
// and dumps the result again with Nix: the bytes must be the same.
func TestRestore(t *testing.T) {
	nixtest.ForEachLayout(t, func(t *testing.T, c *nixtest.Closure) {
		tmp := t.TempDir()
		makeRemovable(t, tmp)
		for i, p := range dumpPaths(t, c) {
			want := c.Output(t, "nix-store", "--dump", p)
			dir := filepath.Join(tmp, fmt.Sprint(i))
			ok(t, bytes.NewReader(want), "restore", dir)
			if got := c.Output(t, "nix-store", "--dump", dir); !bytes.Equal(got, want) {
				t.Errorf("%s restored to %s: nix-store --dump gives %d bytes, not the original %d", p, dir, len(got), len(want))
			}
		}
	})
}

// TestErrors checks failures: exit status 1 and one line on stderr,
// "storepack: <path>: ...", naming the path at fault.
func TestErrors(t *testing.T) {
	c := nixtest.Build(t, nixtest.NixLayout)
	tmp := t.TempDir()
	fifoDir := filepath.Join(tmp, "with-fifo")
	if err := os.Mkdir(fifoDir, 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(fifoDir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	notSQLite := filepath.Join(tmp, "db.sqlite")
	if err := os.WriteFile(notSQLite, []byte("not a database\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := c.StoreDir + "/00000000000000000000000000000000-missing"
	invalid := c.StoreDir + "/not-a-store-path"
	outside := tmp
	exists := t.TempDir()
	st := []string{"--store", c.StoreDir}
	tests := []struct {
		name  string
		args  []string
		stdin string
		path  string // the path the line must start with
	}{
		{"dump missing", []string{"dump", filepath.Join(tmp, "missing")}, "", filepath.Join(tmp, "missing")},
		{"dump fifo", []string{"dump", fifoDir}, "", fifo},
		{"hash fifo", []string{"hash", fifoDir}, "", fifo},
		{"hash fifo base32", []string{"hash", "--base32", fifo}, "", fifo},
		{"add fifo", append([]string{"add", fifoDir}, st...), "", fifo},
		{"closure outside", append([]string{"closure", outside}, st...), "", outside},
		{"closure invalid", append([]string{"closure", invalid}, st...), "", invalid},
		{"closure missing", append([]string{"closure", missing}, st...), "", missing},
		{"closure missing scanning", append([]string{"closure", "--db", "none", missing}, st...), "", missing},
		{"closure one bad root", append([]string{"closure", c.Root, missing}, st...), "", missing},
		{"bundle outside", append([]string{"bundle", outside}, st...), "", outside},
		{"bundle invalid", append([]string{"bundle", invalid}, st...), "", invalid},
		{"bundle missing", append([]string{"bundle", missing}, st...), "", missing},
		{"closure no database", append([]string{"closure", "--db", "/nonexistent/db.sqlite", c.Root}, st...), "", "/nonexistent/db.sqlite"},
		{"bundle no database", append([]string{"bundle", "--db", "/nonexistent/db.sqlite", c.Root}, st...), "", "/nonexistent/db.sqlite"},
		{"closure not sqlite", append([]string{"closure", "--db", notSQLite, c.Root}, st...), "", notSQLite},
		{"bundle not sqlite", append([]string{"bundle", "--db", notSQLite, c.Root}, st...), "", notSQLite},
		{"add bad name", []string{"add", "--name", "bad/name", outside}, "", outside},
		{"restore exists", []string{"restore", exists}, "", exists},
		{"restore not a NAR", []string{"restore", filepath.Join(tmp, "new")}, "not a NAR\n", filepath.Join(tmp, "new")},
		{"restore empty input", []string{"restore", filepath.Join(tmp, "new2")}, "", filepath.Join(tmp, "new2")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := storepack(t, strings.NewReader(tt.stdin), tt.args...)
			if r.code != 1 {
				t.Errorf("exit %d, want 1; stderr %q", r.code, r.stderr)
			}
			lines := strings.Split(strings.TrimSuffix(string(r.stderr), "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "storepack: "+tt.path+": ") {
				t.Errorf("stderr %q, want one line starting %q", r.stderr, "storepack: "+tt.path+": ")
			}
		})
	}
	if _, err := os.Lstat(filepath.Join(tmp, "new")); err == nil {
		t.Errorf("a failed restore left %s behind", filepath.Join(tmp, "new"))
	}
}

// TestUsage checks usage errors (exit status 2, a message and the usage on
// stderr) and help (exit status 0, the usage on stdout).
func TestUsage(t *testing.T) {
	tests := []struct {
		args    []string
		code    int
		message string // in the first line of stderr; "" for help
	}{
		{nil, 2, "no verb"},
		{[]string{"frobnicate"}, 2, `unknown verb "frobnicate"`},
		{[]string{"dump"}, 2, "missing operand"},
		{[]string{"dump", "a", "b"}, 2, `unexpected operand "b"`},
		{[]string{"hash", "--base32=maybe", "x"}, 2, "base32"},
		{[]string{"hash", "--md5", "x"}, 2, "md5"},
		{[]string{"closure"}, 2, "missing operand"},
		{[]string{"closure", "--db"}, 2, "db"},
		{[]string{"bundle", "--store"}, 2, "store"},
		{[]string{"add"}, 2, "missing operand"},
		{[]string{"add", "--db", "none", "x"}, 2, "db"},
		{[]string{"restore"}, 2, "missing operand"},
		{[]string{"restore", "a", "b"}, 2, `unexpected operand "b"`},
		{[]string{"help"}, 0, ""},
		{[]string{"--help"}, 0, ""},
		{[]string{"help", "bundle"}, 0, ""},
		{[]string{"closure", "--help"}, 0, ""},
		{[]string{"help", "closure"}, 0, ""},
		{[]string{"hash", "--help"}, 0, ""},
	}
	for _, tt := range tests {
		r := storepack(t, nil, tt.args...)
		if r.code != tt.code {
			t.Errorf("storepack %q: exit %d, want %d", tt.args, r.code, tt.code)
		}
		usage := r.stderr
		if tt.code == 0 {
			usage = r.stdout
			if len(r.stderr) != 0 {
				t.Errorf("storepack %q: stderr %q, want none", tt.args, r.stderr)
			}
		} else {
			first, _, _ := strings.Cut(string(r.stderr), "\n")
			if !strings.HasPrefix(first, "storepack: ") || !strings.Contains(first, tt.message) {
				t.Errorf("storepack %q: first line %q, want storepack: ...%s...", tt.args, first, tt.message)
			}
		}
		if !bytes.Contains(usage, []byte("usage: storepack")) {
			t.Errorf("storepack %q: no usage in\n%s", tt.args, usage)
		}
		// A verb's usage lists its flags.
		if len(tt.args) > 0 {
			name := tt.args[0]
			if name == "help" && len(tt.args) > 1 {
				name = tt.args[1]
			}
			if v := findVerb(name); v != nil {
				fs := flagSet(v)
				v.setup(fs)
				fs.VisitAll(func(f *flag.Flag) {
					if !bytes.Contains(usage, []byte("--"+f.Name)) {
						t.Errorf("storepack %q: usage does not list --%s:\n%s", tt.args, f.Name, usage)
					}
				})
			}
		}
	}
}

// TestEveryVerbDocumented: the usage, the package documentation and the
// README's table of verbs name every verb.
func TestEveryVerbDocumented(t *testing.T) {
	var usage bytes.Buffer
	writeUsage(&usage)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range verbs {
		if !strings.Contains(usage.String(), "  "+v.name+" ") {
			t.Errorf("the usage does not list %s", v.name)
		}
		if !strings.Contains(string(doc), "//\tstorepack "+v.name+" ") {
			t.Errorf("the package documentation does not list %s", v.name)
		}
		if !strings.Contains(string(readme), "storepack "+v.name) {
			t.Errorf("README.md does not list %s", v.name)
		}
	}
}
