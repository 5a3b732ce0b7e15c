// Package nixtest builds, during a test run, a real store closure with Nix
// (closure.nix) in a Nix /nix/store layout or a Guix /gnu/store layout, for
// tests that compare storepack with the real tools. Building needs nix-build
// (Debian package nix-bin) and /bin/busybox (busybox-static); a missing tool
// skips or fails the test as internal/oracle decides. Each layout is built
// once per test process.
//
// The closure (see closure.nix) has references forming a chain and a
// diamond, a reference found only in a symlink target, a self-reference,
// symlinks (dangling ones too), executables, empty files and folders, hard
// links, long and non-ASCII names, an item that is a single file, one that
// is a symlink, one with a 200-character name, and a script bin/hello whose
// "#!" interpreter is a copy of busybox in the store, so it runs where there
// is no /bin/sh.
package nixtest

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/storepack/storepack/internal/oracle"
)

//go:embed closure.nix
var closureNix []byte

// Layout is a store layout: where the store, its state and its logs live.
type Layout int

// The layouts a closure can be built in.
const (
	// NixLayout is Nix's default: /nix/store, database
	// /nix/var/nix/db/db.sqlite.
	NixLayout Layout = 1 << iota
	// GuixLayout is a Guix system's: /gnu/store, database
	// /var/guix/db/db.sqlite (Nix run with NIX_STORE_DIR=/gnu/store
	// NIX_STATE_DIR=/var/guix NIX_LOG_DIR=/var/log/guix).
	GuixLayout
)

// Layouts lists every layout, for table-driven tests.
var Layouts = []Layout{NixLayout, GuixLayout}

// String names the layout: "nix" or "guix".
func (l Layout) String() string {
	switch l {
	case NixLayout:
		return "nix"
	case GuixLayout:
		return "guix"
	}
	return fmt.Sprintf("Layout(%d)", int(l))
}

// StoreDir is the layout's store folder.
func (l Layout) StoreDir() string { return l.dirs()[0] }

// StateDir is the layout's state folder (NIX_STATE_DIR).
func (l Layout) StateDir() string { return l.dirs()[1] }

// LogDir is the layout's log folder (NIX_LOG_DIR).
func (l Layout) LogDir() string { return l.dirs()[2] }

// DBPath is the layout's store database.
func (l Layout) DBPath() string { return filepath.Join(l.StateDir(), "db", "db.sqlite") }

func (l Layout) dirs() [3]string {
	switch l {
	case NixLayout:
		return [3]string{"/nix/store", "/nix/var/nix", "/nix/var/log/nix"}
	case GuixLayout:
		return [3]string{"/gnu/store", "/var/guix", "/var/log/guix"}
	}
	panic(fmt.Sprintf("nixtest: %v is not a single layout", l))
}

// Env is the environment for running Nix's tools on the layout's store as
// root without a daemon or build users (oracle.NixEnv), with the store,
// state and log folders set.
func (l Layout) Env() []string {
	return oracle.NixEnv(
		"NIX_STORE_DIR="+l.StoreDir(),
		"NIX_STATE_DIR="+l.StateDir(),
		"NIX_LOG_DIR="+l.LogDir(),
	)
}

// ChrootStore is the --store argument that makes Nix's tools use the
// tree at root as a store of this layout: its store folder, state (and
// database) and logs below root. (`--store ROOT` alone puts them at
// ROOT/nix/store and ROOT/nix/var/nix whatever the store folder.)
func (l Layout) ChrootStore(root string) string {
	return "local?root=" + root + "&real=" + root + l.StoreDir() + "&state=" + root + l.StateDir() + "&log=" + root + l.LogDir()
}

// Attribute names of closure.nix, each one store item.
const (
	Leaf    = "leaf"        // a folder: data, an empty file, an empty folder, an executable
	Left    = "left"        // refers to leaf in a file's contents
	Right   = "right"       // refers to leaf only through a symlink's target
	Busybox = "busyboxItem" // bin/busybox, a copy of /bin/busybox
	Hello   = "hello"       // bin/hello, a "#!<busybox> sh" script; refers to busybox
	Odd     = "odd"         // odd names, hard links, dangling symlinks, a self-reference
	Link    = "link"        // the item is a symlink into leaf
	File    = "file"        // the item is a single executable file
	Long    = "long"        // an item whose name has 200 characters
	Top     = "top"         // the root: refers to left, right, hello, odd, link, file, long
)

// Attrs lists every attribute of closure.nix.
var Attrs = []string{Leaf, Left, Right, Busybox, Hello, Odd, Link, File, Long, Top}

// HelloOutput is what bin/hello of the Hello item prints.
const HelloOutput = "hello from storepack\n"

// Closure is a closure built in one layout.
type Closure struct {
	// Layout is where it was built.
	Layout Layout
	// StoreDir, StateDir and DBPath are the layout's folders and database.
	StoreDir, StateDir, DBPath string
	// Root is the store path of the Top item, whose closure is every item.
	Root string
	// Items maps each name in Attrs to its store path.
	Items map[string]string
	// HelloScript is the full path of the Hello item's bin/hello.
	HelloScript string
}

// Env is the environment for running Nix's tools on the closure's store.
func (c *Closure) Env() []string { return c.Layout.Env() }

// Command is exec.Command with the closure's environment.
func (c *Closure) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = c.Env()
	return cmd
}

// Output runs a command (typically one of Nix's tools) in the closure's
// environment and returns its stdout, failing the test with its stderr when
// it fails.
func (c *Closure) Output(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	return oracle.Output(t, c.Command(name, args...))
}

// Lines runs a command like Output and splits its stdout into lines.
func (c *Closure) Lines(t testing.TB, name string, args ...string) []string {
	t.Helper()
	return strings.Fields(string(c.Output(t, name, args...)))
}

// Paths is the closure of Root as `nix-store -qR` prints it: every item,
// dependencies first.
func (c *Closure) Paths(t testing.TB) []string {
	t.Helper()
	return c.Lines(t, "nix-store", "-qR", c.Root)
}

type build struct {
	once sync.Once
	c    *Closure
	err  error
}

var builds = map[Layout]*build{NixLayout: {}, GuixLayout: {}}

// Build returns the closure built in layout (NixLayout or GuixLayout),
// building it with nix-build the first time in the process. It writes to
// that layout's store and database (creating /gnu/store and /var/guix for
// GuixLayout). It needs nix-build, nix-store and /bin/busybox.
func Build(t testing.TB, layout Layout) *Closure {
	t.Helper()
	b, ok := builds[layout]
	if !ok {
		t.Fatalf("nixtest.Build: %v is not one layout (want NixLayout or GuixLayout)", layout)
	}
	oracle.Require(t, "nix-build")
	oracle.Require(t, "nix-store")
	busybox := BusyboxPath(t)
	b.once.Do(func() { b.c, b.err = buildClosure(layout, busybox) })
	if b.err != nil {
		t.Fatalf("building the test closure in the %v layout: %v", layout, b.err)
	}
	return b.c
}

// BusyboxPath is the static busybox that closure.nix copies into the store:
// /bin/busybox, or busybox on PATH. Like oracle.Require, it skips or fails
// the test when there is none.
func BusyboxPath(t testing.TB) string {
	t.Helper()
	if fi, err := os.Stat("/bin/busybox"); err == nil && fi.Mode().IsRegular() {
		return "/bin/busybox"
	}
	p := oracle.Require(t, "busybox")
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	return p
}

// ForEachLayout runs f as a subtest named after each layout, with the
// closure built in it.
func ForEachLayout(t *testing.T, f func(t *testing.T, c *Closure)) {
	t.Helper()
	for _, l := range Layouts {
		t.Run(l.String(), func(t *testing.T) { f(t, Build(t, l)) })
	}
}

func buildClosure(layout Layout, busybox string) (*Closure, error) {
	tmp, err := os.MkdirTemp("", "storepack-nixtest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	file := filepath.Join(tmp, "closure.nix")
	if err := os.WriteFile(file, closureNix, 0o644); err != nil {
		return nil, err
	}
	args := []string{"--option", "sandbox", "false", "--option", "substituters", "", "--no-out-link", file, "--argstr", "busybox", busybox}
	for _, a := range Attrs {
		args = append(args, "-A", a)
	}
	c := &Closure{
		Layout:   layout,
		StoreDir: layout.StoreDir(),
		StateDir: layout.StateDir(),
		DBPath:   layout.DBPath(),
		Items:    map[string]string{},
	}
	out, err := run(c, tmp, "nix-build", args...)
	if err != nil {
		return nil, err
	}
	paths := strings.Fields(string(out))
	if len(paths) != len(Attrs) {
		return nil, fmt.Errorf("nix-build printed %d paths for %d attributes: %q", len(paths), len(Attrs), paths)
	}
	for i, a := range Attrs {
		if !strings.HasPrefix(paths[i], c.StoreDir+"/") {
			return nil, fmt.Errorf("nix-build printed %s for %s, not in %s", paths[i], a, c.StoreDir)
		}
		c.Items[a] = paths[i]
	}
	c.Root = c.Items[Top]
	c.HelloScript = c.Items[Hello] + "/bin/hello"
	return c, nil
}

// run runs a command in dir with c's environment and returns its stdout,
// or, when it fails, an error holding its stderr.
func run(c *Closure, dir, name string, args ...string) ([]byte, error) {
	cmd := c.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	return out, nil
}

//go:embed scale.nix
var scaleNix []byte

// Scale is a closure built from scale.nix: Root and its closure of Items
// items, each with Files files of Size random bytes.
type Scale struct {
	Root               string
	Items, Files, Size int
}

// BuildScale builds scale.nix with items items of files files of size
// bytes each in the Nix layout (tag names them apart from other builds)
// and returns its root. It needs nix-build; it writes to the Nix store.
func BuildScale(items, files, size int, tag string) (*Scale, error) {
	return BuildScaleRelease(items, files, size, tag, Release{Bump: -1})
}

// Release picks a release of scale.nix's closure: Bump (>= 0) rebuilds
// that item, and so every item above it; Extra adds an item only the
// root refers to.
type Release struct {
	Bump  int
	Extra bool
}

// BuildScaleRelease builds the release r of BuildScale's closure.
func BuildScaleRelease(items, files, size int, tag string, r Release) (*Scale, error) {
	tmp, err := os.MkdirTemp("", "storepack-scale-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	file := filepath.Join(tmp, "scale.nix")
	if err := os.WriteFile(file, scaleNix, 0o644); err != nil {
		return nil, err
	}
	c := &Closure{Layout: NixLayout}
	out, err := run(c, tmp, "nix-build", "--option", "sandbox", "false", "--option", "substituters", "", "--no-out-link", file,
		"--arg", "items", fmt.Sprint(items), "--arg", "files", fmt.Sprint(files), "--arg", "size", fmt.Sprint(size), "--argstr", "tag", tag,
		"--arg", "bump", fmt.Sprint(r.Bump), "--arg", "extra", fmt.Sprint(r.Extra), "-A", "root")
	if err != nil {
		return nil, err
	}
	return &Scale{Root: strings.TrimSpace(string(out)), Items: items, Files: files, Size: size}, nil
}
