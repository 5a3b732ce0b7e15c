package export

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storepack/storepack/gen"
	"github.com/storepack/storepack/nar"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
)

// fixtureItem describes a fake store item: files maps a relative path to
// its contents ("" + a trailing "/" for a folder, "-> target" for a
// symlink, a leading "x:" for an executable file, "copy:<host file>" for
// an executable copy of a host file, "= other" for a hard
// link to another file of the item). An item with the single key "." is a
// file or symlink itself.
type fixtureItem struct {
	name  string
	files map[string]string
	refs  []string // names of the items it refers to
}

// storeFixture is a fake store: items written to a temporary folder but
// named under dir, as gen plans them.
type storeFixture struct {
	dir   store.Dir
	root  string // the temporary folder holding the items
	items []gen.Item
	byNam map[string]store.Path
}

// fakeStorePath gives a valid store path for name, its hash part derived
// from the name so that goldens stay stable.
func fakeStorePath(dir store.Dir, name string) store.Path {
	sum := sha256.Sum256([]byte(name))
	return dir.Join(store.Encode32(sum[:20]) + "-" + name)
}

// writeStore writes items below a new temporary folder (or below root when
// it is not empty) and describes them as closure items, with NAR hashes.
func writeStore(t testing.TB, dir store.Dir, root string, items []fixtureItem) *storeFixture {
	t.Helper()
	if root == "" {
		root = t.TempDir()
	}
	f := &storeFixture{dir: dir, root: root, byNam: map[string]store.Path{}}
	for _, it := range items {
		f.byNam[it.name] = fakeStorePath(dir, it.name)
	}
	for _, it := range items {
		p := f.byNam[it.name]
		fsPath := filepath.Join(root, p.Base())
		writeTree(t, fsPath, it.files, f.byNam)
		h := sha256.New()
		var size byteCounter
		if err := nar.Dump(io.MultiWriter(h, &size), fsPath); err != nil {
			t.Fatal(err)
		}
		gi := gen.Item{Path: p, FSPath: fsPath, NarHash: "sha256:" + store.Encode32(h.Sum(nil)), NarSize: int64(size), References: []store.Path{}}
		for _, r := range it.refs {
			gi.References = append(gi.References, f.byNam[r])
		}
		gi.References = store.SortPaths(gi.References)
		f.items = append(f.items, gi)
	}
	return f
}

// expand replaces @name@ by the store path of item name.
func expand(s string, byName map[string]store.Path) string {
	for n, p := range byName {
		s = strings.ReplaceAll(s, "@"+n+"@", string(p))
	}
	return s
}

// writeTree creates one item's files.
func writeTree(t testing.TB, fsPath string, files map[string]string, byName map[string]store.Path) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(fsPath), 0o755); err != nil {
		t.Fatal(err)
	}
	var links [][2]string
	for rel, content := range files {
		p := filepath.Join(fsPath, rel)
		if rel == "." {
			p = fsPath
		} else if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		content = expand(content, byName)
		var err error
		switch {
		case strings.HasSuffix(rel, "/"):
			err = os.MkdirAll(p, 0o755)
		case strings.HasPrefix(content, "-> "):
			err = os.Symlink(strings.TrimPrefix(content, "-> "), p)
		case strings.HasPrefix(content, "= "):
			links = append(links, [2]string{filepath.Join(fsPath, strings.TrimPrefix(content, "= ")), p})
		case strings.HasPrefix(content, "copy:"): // a host file, made executable
			var b []byte
			if b, err = os.ReadFile(strings.TrimPrefix(content, "copy:")); err == nil {
				err = os.WriteFile(p, b, 0o755)
			}
		case strings.HasPrefix(content, "x:"):
			err = os.WriteFile(p, []byte(strings.TrimPrefix(content, "x:")), 0o755)
		default:
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range links {
		if err := os.Link(l[0], l[1]); err != nil {
			t.Fatal(err)
		}
	}
}

// system is the closure of the named roots as a gen.System, its image
// planned from e (whose Systems get this one when empty).
func (f *storeFixture) system(t testing.TB, name string, e *spec.Export, getenv func(string) string, roots ...string) *gen.System {
	t.Helper()
	sys := &gen.System{Name: name, Closure: f.items}
	h := sha256.New()
	for _, it := range f.items {
		fmt.Fprintf(h, "%s %s\n", it.Path, it.NarHash)
	}
	sys.ClosureDigest = "sha256:" + hex.EncodeToString(h.Sum(nil))
	var paths []store.Path
	for _, r := range roots {
		paths = append(paths, f.byNam[r])
	}
	sys.Roots = store.SortPaths(paths)
	found := false
	for _, s := range e.Systems {
		found = found || s.Name == name
	}
	if !found {
		e.Systems = append(e.Systems, spec.System{Name: name, Paths: paths})
	}
	img, err := gen.PlanImage(e, sys, getenv)
	if err != nil {
		t.Fatal(err)
	}
	sys.Image = img
	return sys
}

// fixedEnv returns a getenv that knows only SOURCE_DATE_EPOCH.
func fixedEnv(epoch string) func(string) string {
	return func(k string) string {
		if k == "SOURCE_DATE_EPOCH" {
			return epoch
		}
		return ""
	}
}

// helloItems is a small closure exercising what layers must handle: a
// script, a hard link, symlinks inside and between items, an empty folder,
// a long name, a non-ASCII name, a file item and a symlink item.
func helloItems() []fixtureItem {
	long := strings.Repeat("very-long-folder-name/", 6) + "file.txt"
	return []fixtureItem{
		{name: "libc-2.39", files: map[string]string{
			"lib/libc.so.6": "not really a C library\n",
			"lib/ld.so":     "-> libc.so.6",
			"share/empty/":  "",
		}},
		{name: "hello-2.12", refs: []string{"libc-2.39", "greeting"}, files: map[string]string{
			"bin/hello":                             "x:#!/bin/sh\necho hello, uses @libc-2.39@\n",
			"bin/hello-again":                       "= bin/hello",
			"share/doc/README":                      "hello's readme\n",
			"share/doc/LIESMICH":                    "-> README",
			"share/doc/" + long:                     "deep\n",
			"share/doc/café.txt":                    "non-ASCII name\n",
			"share/libc":                            "-> @libc-2.39@/lib",
			"share/doc/.hidden":                     "dot file\n",
			"share/doc/README-long":                 strings.Repeat("0123456789", 100),
			"share/doc/" + strings.Repeat("n", 120): "a name USTAR cannot hold\n",
		}},
		{name: "greeting", refs: []string{"libc-2.39"}, files: map[string]string{".": "x:#!@libc-2.39@/bin/sh\n"}},
		{name: "libc-link", refs: []string{"libc-2.39"}, files: map[string]string{".": "-> @libc-2.39@"}},
	}
}

// tarEntry is one entry of a tar, for comparisons.
type tarEntry struct {
	hdr  *tar.Header
	data []byte
}

// readTar reads every entry of a tar held in b.
func readTar(t testing.TB, b []byte) []tarEntry {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var out []tarEntry
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{hdr, data})
	}
}

// listing describes a layer tar one entry a line: path, type, mode, size,
// link target.
func listing(t testing.TB, b []byte) string {
	t.Helper()
	var sb strings.Builder
	for _, e := range readTar(t, b) {
		typ := map[byte]string{tar.TypeReg: "file", tar.TypeDir: "dir", tar.TypeSymlink: "symlink"}[e.hdr.Typeflag]
		if typ == "" {
			typ = fmt.Sprintf("type-%c", e.hdr.Typeflag)
		}
		fmt.Fprintf(&sb, "%s %s %04o %d", e.hdr.Name, typ, e.hdr.Mode, e.hdr.Size)
		if e.hdr.Linkname != "" {
			fmt.Fprintf(&sb, " -> %s", e.hdr.Linkname)
		}
		sb.WriteString("\n")
	}
	return sb.String()
}
