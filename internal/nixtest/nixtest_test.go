package nixtest

import (
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/storepack/storepack/internal/oracle"
)

// TestReferences checks that Nix recorded the references the closure is
// meant to exercise.
func TestReferences(t *testing.T) {
	tests := []struct {
		item string
		want []string // attribute names
	}{
		{Leaf, nil},
		{Left, []string{Leaf}},
		{Right, []string{Leaf}}, // only through a symlink target
		{Busybox, nil},
		{Hello, []string{Busybox}},
		{Odd, []string{Odd}}, // itself
		{Link, []string{Leaf}},
		{File, nil},
		{Long, nil},
		{Top, []string{Left, Right, Hello, Odd, Link, File, Long}},
	}
	ForEachLayout(t, func(t *testing.T, c *Closure) {
		for _, tt := range tests {
			got := c.Lines(t, "nix-store", "-q", "--references", c.Items[tt.item])
			var want []string
			for _, a := range tt.want {
				want = append(want, c.Items[a])
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("references of %s: got %q, want %q", tt.item, got, want)
			}
		}
		all := c.Paths(t)
		if len(all) != len(Attrs) || all[len(all)-1] != c.Root {
			t.Errorf("nix-store -qR %s: got %q, want all %d items, the root last", c.Root, all, len(Attrs))
		}
		if db, err := os.Stat(c.DBPath); err != nil || !db.Mode().IsRegular() {
			t.Errorf("database %s: %v", c.DBPath, err)
		}
	})
}

// TestFiles checks that the items hold the kinds of files they are meant to.
func TestFiles(t *testing.T) {
	const (
		regular = "regular"
		exec    = "executable"
		dir     = "folder"
		symlink = "symlink"
	)
	tests := []struct {
		item, rel, kind string
		size            int64  // for files; -1 for any
		target          string // for symlinks; "" for any
	}{
		{Leaf, "/share/empty", regular, 0, ""},
		{Leaf, "/share/empty-dir/nested-empty", dir, 0, ""},
		{Leaf, "/bin/leaf", exec, -1, ""},
		{Right, "/leaf-link", symlink, 0, ""},
		{Busybox, "/bin/busybox", exec, -1, ""},
		{Hello, "/bin/hello", exec, -1, ""},
		{Odd, "/empty", regular, 0, ""},
		{Odd, "/B/empty-executable", exec, 0, ""},
		{Odd, "/empty-dir", dir, 0, ""},
		{Odd, "/dangling", symlink, 0, "does-not-exist"},
		{Odd, "/dangling-absolute", symlink, 0, "/nonexistent/storepack/target"},
		{Odd, "/café-日本-ü", regular, -1, ""},
		{Odd, "/dør/exéc", exec, -1, ""},
		{Odd, "/" + "file-" + strings.Repeat("0123456789abcdefghij-_=+.", 9), regular, 5, ""},
		{Link, "", symlink, 0, ""},
		{File, "", exec, -1, ""},
	}
	ForEachLayout(t, func(t *testing.T, c *Closure) {
		for _, tt := range tests {
			p := c.Items[tt.item] + tt.rel
			fi, err := os.Lstat(p)
			if err != nil {
				t.Errorf("%s: %v", tt.item, err)
				continue
			}
			var kind string
			switch m := fi.Mode(); {
			case m.IsDir():
				kind = dir
			case m&fs.ModeSymlink != 0:
				kind = symlink
			case m&0o100 != 0:
				kind = exec
			default:
				kind = regular
			}
			if kind != tt.kind {
				t.Errorf("%s: a %s, want a %s", p, kind, tt.kind)
			}
			if tt.kind != dir && tt.kind != symlink && tt.size >= 0 && fi.Size() != tt.size {
				t.Errorf("%s: %d bytes, want %d", p, fi.Size(), tt.size)
			}
			if tt.target != "" {
				if got, _ := os.Readlink(p); got != tt.target {
					t.Errorf("%s: target %q, want %q", p, got, tt.target)
				}
			}
		}
		if got := len(c.Items[Long]) - len(c.StoreDir) - 34; got != 200 {
			t.Errorf("%s: name of %d characters, want 200", c.Items[Long], got)
		}
		self, err := os.ReadFile(c.Items[Odd] + "/self")
		if err != nil || string(self) != c.Items[Odd]+"\n" {
			t.Errorf("%s/self: %q, %v; want the item's own path", c.Items[Odd], self, err)
		}
		var inodes []uint64
		for _, rel := range []string{"/sub/original", "/sub/hard-link", "/hard-link-elsewhere"} {
			fi, err := os.Stat(c.Items[Odd] + rel)
			if err != nil {
				t.Fatal(err)
			}
			inodes = append(inodes, fi.Sys().(*syscall.Stat_t).Ino)
		}
		if inodes[0] != inodes[1] || inodes[0] != inodes[2] {
			t.Errorf("hard links in %s: inodes %v, want one inode", c.Items[Odd], inodes)
		}
	})
}

// TestHello runs bin/hello, whose interpreter is the store's busybox.
func TestHello(t *testing.T) {
	ForEachLayout(t, func(t *testing.T, c *Closure) {
		out, err := exec.Command(c.HelloScript).CombinedOutput()
		if err != nil || string(out) != HelloOutput {
			t.Errorf("%s: %q, %v; want %q", c.HelloScript, out, err, HelloOutput)
		}
		head, err := os.ReadFile(c.HelloScript)
		if want := "#!" + c.Items[Busybox] + "/bin/busybox sh\n"; err != nil || !strings.HasPrefix(string(head), want) {
			t.Errorf("%s starts %q, want %q", c.HelloScript, head, want)
		}
	})
}

// TestLayoutEnv checks the environment each layout runs Nix with.
func TestLayoutEnv(t *testing.T) {
	t.Setenv("NIX_STORE_DIR", "/elsewhere")
	tests := []struct {
		layout Layout
		want   []string
	}{
		{NixLayout, []string{"NIX_REMOTE=", "NIX_CONFIG=build-users-group =", "NIX_STORE_DIR=/nix/store", "NIX_STATE_DIR=/nix/var/nix", "NIX_LOG_DIR=/nix/var/log/nix"}},
		{GuixLayout, []string{"NIX_REMOTE=", "NIX_CONFIG=build-users-group =", "NIX_STORE_DIR=/gnu/store", "NIX_STATE_DIR=/var/guix", "NIX_LOG_DIR=/var/log/guix"}},
	}
	for _, tt := range tests {
		env := tt.layout.Env()
		for _, kv := range tt.want {
			if !slices.Contains(env, kv) {
				t.Errorf("%v: Env lacks %s", tt.layout, kv)
			}
		}
		if slices.Contains(env, "NIX_STORE_DIR=/elsewhere") {
			t.Errorf("%v: Env keeps the inherited NIX_STORE_DIR", tt.layout)
		}
	}
}

// TestBuildScaleRelease builds small releases of scale.nix: a bump
// rebuilds the bumped item and the items above it in the chain, and no
// other; extra adds one item, which only the root refers to, and changes
// the root alone.
func TestBuildScaleRelease(t *testing.T) {
	oracle.Require(t, "nix-build")
	c := &Closure{Layout: NixLayout}
	closure := func(r Release) []string {
		s, err := BuildScaleRelease(6, 1, 10, "storepack-scale-release-test", r)
		if err != nil {
			t.Fatal(err)
		}
		return c.Lines(t, "nix-store", "-qR", s.Root)
	}
	base := closure(Release{Bump: -1})
	// changed lists the names (without hash parts) of the paths of got
	// that base lacks.
	changed := func(got []string) []string {
		var out []string
		for _, p := range got {
			if !slices.Contains(base, p) {
				out = append(out, p[strings.Index(p, "-")+1:])
			}
		}
		slices.Sort(out)
		return out
	}
	for _, tt := range []struct {
		r    Release
		want []string
	}{
		{Release{Bump: -1}, nil},
		{Release{Bump: 5}, []string{"storepack-scale-release-test-5"}},
		{Release{Bump: 3}, []string{"storepack-scale-release-test-3", "storepack-scale-release-test-4", "storepack-scale-release-test-5"}},
		{Release{Bump: -1, Extra: true}, []string{"storepack-scale-release-test-5", "storepack-scale-release-test-extra"}},
	} {
		got := changed(closure(tt.r))
		if !slices.Equal(got, tt.want) {
			t.Errorf("release %+v: changed items %v, want %v", tt.r, got, tt.want)
		}
	}
}
