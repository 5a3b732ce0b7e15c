package profile

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/nar"
)

// tree writes files (path: content; "->" starts a symlink's target, a
// trailing "/" a folder) into a new folder and returns it.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(c, "->"); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(c), 0o555); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// listing describes a profile folder: each entry's path and a symlink's
// target, sorted, etc/profile's content aside.
func listing(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, rel+" -> "+target)
		case d.IsDir():
			out = append(out, rel+"/")
		default:
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

const gnu = store.Dir("/gnu/store")

var (
	pathA = gnu.Join("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a-1.0")
	pathB = gnu.Join("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b-2.0")
	pathC = gnu.Join("cccccccccccccccccccccccccccccccc-c-3.0")
)

// TestBuild unites two inputs: folders one input has are links to it,
// folders both have are merged, etc is a real folder holding etc/profile,
// which exports the search paths that exist; the profile refers to both
// inputs and itself, and the same inputs give the same profile.
func TestBuild(t *testing.T) {
	a := tree(t, map[string]string{"bin/a": "A", "share/man/man1/a.1": "man", "etc/xdg/a.conf": "x", "lib/liba.so": "so"})
	b := tree(t, map[string]string{"bin/b": "B", "share/doc/b/README": "doc", "sbin/": ""})
	cache := t.TempDir()
	inputs := []Input{{pathA, a}, {pathB, b}}
	p, err := Build(gnu, inputs, cache, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Path.Dir() != gnu || p.Path.Name() != "profile" || p.FSPath != filepath.Join(cache, p.Path.Base()) {
		t.Errorf("profile at %s, in %s", p.Path, p.FSPath)
	}
	want := []string{
		"bin/", "bin/a -> " + string(pathA) + "/bin/a", "bin/b -> " + string(pathB) + "/bin/b",
		"etc/", "etc/profile", "etc/xdg -> " + string(pathA) + "/etc/xdg",
		"lib -> " + string(pathA) + "/lib",
		"sbin -> " + string(pathB) + "/sbin",
		"share/", "share/doc -> " + string(pathB) + "/share/doc", "share/man -> " + string(pathA) + "/share/man",
	}
	if got := listing(t, p.FSPath); !slices.Equal(got, want) {
		t.Errorf("profile:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if want := store.SortPaths([]store.Path{pathA, pathB, p.Path}); !slices.Equal(p.References, want) {
		t.Errorf("references %v, want %v", p.References, want)
	}
	profile, err := os.ReadFile(filepath.Join(p.FSPath, "etc/profile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`export PATH="` + string(p.Path) + `/bin:` + string(p.Path) + `/sbin${PATH:+:}$PATH"`,
		`export XDG_DATA_DIRS="` + string(p.Path) + `/share${XDG_DATA_DIRS:+:}$XDG_DATA_DIRS"`,
		`export XDG_CONFIG_DIRS="` + string(p.Path) + `/etc/xdg${XDG_CONFIG_DIRS:+:}$XDG_CONFIG_DIRS"`,
		`export MANPATH="` + string(p.Path) + `/share/man${MANPATH:+:}$MANPATH"`,
	} {
		if !strings.Contains(string(profile), line+"\n") {
			t.Errorf("etc/profile has no %s:\n%s", line, profile)
		}
	}
	if strings.Contains(string(profile), "INFOPATH") || strings.Contains(string(profile), "SSL_CERT") {
		t.Errorf("etc/profile exports a search path the profile does not have:\n%s", profile)
	}
	var names []string
	for _, v := range p.Vars {
		names = append(names, v.Name)
	}
	if got := strings.Join(names, " "); got != "PATH XDG_DATA_DIRS XDG_CONFIG_DIRS MANPATH" {
		t.Errorf("vars %s", got)
	}

	again, err := Build(gnu, inputs, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Path != p.Path || again.NarHash != p.NarHash {
		t.Errorf("built again: %s %x, first %s %x", again.Path, again.NarHash, p.Path, p.NarHash)
	}
	// Reused from the cache.
	if cached, err := Build(gnu, inputs, cache, Options{}); err != nil || cached.Path != p.Path {
		t.Errorf("built into the same cache: %v, %v", cached, err)
	}
	// Another order is another profile.
	other, err := Build(gnu, []Input{{pathB, b}, {pathA, a}}, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if other.Path == p.Path {
		t.Logf("the inputs' order changes nothing here: no collision")
	}
}

// TestCollisions: the same file from two inputs is refused, naming both,
// unless the files are the same or allow_collisions lets the first win.
func TestCollisions(t *testing.T) {
	a := tree(t, map[string]string{"bin/hello": "A"})
	same := tree(t, map[string]string{"bin/hello": "A"})
	other := tree(t, map[string]string{"bin/hello": "C"})
	dirThere := tree(t, map[string]string{"bin/hello/x": "C"})
	for _, tt := range []struct {
		name    string
		second  string
		allow   bool
		collide bool
	}{
		{"different files", other, false, true},
		{"different files, allowed", other, true, false},
		{"a folder and a file", dirThere, false, true},
		{"the same file", same, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Build(gnu, []Input{{pathA, a}, {pathC, tt.second}}, t.TempDir(), Options{AllowCollisions: tt.allow})
			var ce *CollisionError
			if tt.collide {
				if !errors.As(err, &ce) || ce.Rel != "bin/hello" || ce.First != pathA || ce.Second != pathC {
					t.Fatalf("Build: %v, want a collision of bin/hello between %s and %s", err, pathA, pathC)
				}
				if !strings.Contains(err.Error(), string(pathA)) || !strings.Contains(err.Error(), string(pathC)) {
					t.Errorf("the error names not both: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if target, _ := os.Readlink(filepath.Join(p.FSPath, "bin/hello")); target != string(pathA)+"/bin/hello" {
				t.Errorf("bin/hello -> %s, want the first input's", target)
			}
		})
	}
}

// TestBuildRefusesFiles: a profile unites folders.
func TestBuildRefusesFiles(t *testing.T) {
	f := filepath.Join(t.TempDir(), "app")
	if err := os.WriteFile(f, []byte("x"), 0o555); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(gnu, []Input{{pathA, f}}, t.TempDir(), Options{}); err == nil || !strings.Contains(err.Error(), "is a file") {
		t.Errorf("Build of a file: %v", err)
	}
}

// TestHashModulo: occurrences count as NUL bytes, and their offsets are
// hashed too, so that zeroed and unzeroed inputs differ.
func TestHashModulo(t *testing.T) {
	h := "0123456789abcdfghijklmnpqrsvwxyz"
	with := HashModulo([]byte("x"+h+"y"), h)
	zeroed := HashModulo([]byte("x"+strings.Repeat("\x00", 32)+"y"), h)
	if with == zeroed {
		t.Error("a NAR with the hash part and one with it zeroed hash alike")
	}
	if HashModulo([]byte("x"+h+"y"), h) != with {
		t.Error("not deterministic")
	}
	other := "zyxwvsrqpnmlkjihgfdcba9876543210"
	if HashModulo([]byte("x"+other+"y"), other) != with {
		t.Error("the hash depends on the hash part's value")
	}
}

// TestModuloHashPieces: written in pieces of any size, occurrences split
// across writes, the hash is HashModulo's of the whole.
func TestModuloHashPieces(t *testing.T) {
	h := "0123456789abcdfghijklmnpqrsvwxyz"
	data := []byte("start" + h + "middle" + h + h + "end" + h[:10])
	want := HashModulo(data, h)
	for _, size := range []int{1, 2, 7, 31, 32, 33, 1000} {
		m := NewModuloHash(h)
		for i := 0; i < len(data); i += size {
			m.Write(data[i:min(i+size, len(data))])
		}
		if m.Sum() != want {
			t.Errorf("pieces of %d bytes: another hash", size)
		}
	}
	// Against the definition: zeros, then the offsets.
	zeroed := strings.ReplaceAll(string(data), h, strings.Repeat("\x00", 32))
	sum := sha256.Sum256([]byte(zeroed + "|5|43|75"))
	if want != sum {
		t.Errorf("HashModulo differs from sha256(zeroed NAR + offsets)")
	}
}

// TestNARInMemory: the NAR hash and size a profile gets from its union in
// memory are those of the folder written (nar.Hash), and its path is the
// content-addressed path of that folder's NAR modulo its own hash part,
// for unions with merged folders, an expanded etc, nested and wrapped
// programs, symlinks into other items and many entries (written by
// several goroutines). A second build into the same cache finds it there.
func TestNARInMemory(t *testing.T) {
	many := map[string]string{}
	for i := range 300 {
		many[fmt.Sprintf("bin/p%03d", i)] = "p"
		many[fmt.Sprintf("share/doc/d%03d/README", i)] = "d"
	}
	other := tree(t, map[string]string{"lib/libo.so": "so", "bin/": ""})
	tests := []struct {
		name   string
		inputs []map[string]string
		opts   Options
	}{
		{"one input", []map[string]string{{"bin/a": "A", "share/x": "x"}}, Options{}},
		{"merged", []map[string]string{{"bin/a": "A", "etc/a.conf": "c", "share/man/man1/a.1": "m"}, {"bin/b": "B", "share/info/b": "i", "sbin/": ""}}, Options{}},
		{"etc with a profile, allowed", []map[string]string{{"etc/profile": "theirs", "etc/xdg/x": "x"}}, Options{AllowCollisions: true}},
		{"wrapped", []map[string]string{{"bin/a": "A", "libexec/a/helper": "h", "bin/data": "->../share/data", "share/data": "d"}}, Options{Wrap: func(p string) ([]byte, error) { return []byte("wrapper of " + p), nil }}},
		{"links into another item", []map[string]string{{"lib": "->" + string(pathC) + "/lib", "bin/a": "A"}, {"lib/liba.so": "so"}}, Options{Resolve: func(p store.Path) (string, bool) { return other, p == pathC }}},
		{"many entries", []map[string]string{many, {"bin/zz": "z", "share/doc/zz/README": "z"}}, Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var inputs []Input
			for i, files := range tt.inputs {
				inputs = append(inputs, Input{[]store.Path{pathA, pathB}[i], tree(t, files)})
			}
			cache := t.TempDir()
			p, err := Build(gnu, inputs, cache, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			sum, size, err := nar.Hash(p.FSPath)
			if err != nil {
				t.Fatal(err)
			}
			if sum != p.NarHash || size != p.NarSize {
				t.Errorf("the folder's NAR: %x, %d bytes; the profile says %x, %d bytes", sum, size, p.NarHash, p.NarSize)
			}
			var dump bytes.Buffer
			if err := nar.Dump(&dump, p.FSPath); err != nil {
				t.Fatal(err)
			}
			modulo := HashModulo(dump.Bytes(), p.Path.HashPart())
			refs := slices.DeleteFunc(slices.Clone(p.References), func(r store.Path) bool { return r == p.Path })
			if want, err := gnu.SourcePath(modulo[:], Name, refs, true); err != nil || want != p.Path {
				t.Errorf("the folder's content-addressed path is %s (%v), the profile's %s", want, err, p.Path)
			}
			again, err := Build(gnu, inputs, cache, tt.opts)
			if err != nil || again.Path != p.Path || again.NarHash != p.NarHash || again.FSPath != p.FSPath {
				t.Errorf("built again into the same cache: %+v, %v; first %+v", again, err, p)
			}
			if left, _ := filepath.Glob(filepath.Join(cache, ".*")); len(left) != 0 {
				t.Errorf("temporary folders left in the cache: %v", left)
			}
		})
	}
}

// BenchmarkBuild500 builds the profile of 500 items, each with a
// program, a library and a documentation folder (1,500 links in the
// profile's bin, lib and share/doc): what a plan with a 500-item profile
// adds. new-cache: into a new cache folder each time, which it is written
// into (a first run); cached: into a cache that already holds it (every
// later run), which reads the inputs and computes the profile but writes
// nothing. internal/bench (mage bench) prints both figures.
func BenchmarkBuild500(b *testing.B) {
	root := b.TempDir()
	var inputs []Input
	for i := range 500 {
		base := fmt.Sprintf("%032d-item-%d", i, i)
		dir := filepath.Join(root, base)
		for _, f := range []string{"bin/p" + fmt.Sprint(i), "share/doc/item-" + fmt.Sprint(i) + "/README", "lib/libi" + fmt.Sprint(i) + ".so"} {
			if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o555); err != nil {
				b.Fatal(err)
			}
		}
		inputs = append(inputs, Input{Path: gnu.Join(base), FSPath: dir})
	}
	b.Run("new-cache", func(b *testing.B) {
		for range b.N {
			if _, err := Build(gnu, inputs, b.TempDir(), Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		cache := b.TempDir()
		if _, err := Build(gnu, inputs, cache, Options{}); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			if _, err := Build(gnu, inputs, cache, Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
