package squashfs

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/oracle"
)

// entry is a test image's entry with its contents.
type entry struct {
	Header
	data []byte
}

// sampleEntries is a tree exercising what images must hold: empty and
// nested folders, files of every size class (empty, a tail only, exactly
// one block, blocks and a tail, incompressible), symlinks, a folder with
// more entries than one listing header takes, the longest name and odd
// modes.
func sampleEntries() []entry {
	r := rand.New(rand.NewSource(1))
	random := make([]byte, 3*DefaultBlockSize+1234)
	r.Read(random)
	text := bytes.Repeat([]byte("storepack squashfs "), 30000) // 570 KB, compressible
	mtime := time.Unix(1700000000, 0)
	var out []entry
	add := func(name string, typ Type, mode uint32, data []byte, link string) {
		out = append(out, entry{Header{Name: name, Type: typ, Mode: mode, ModTime: mtime, Size: int64(len(data)), Linkname: link}, data})
	}
	add("a", Dir, 0o755, nil, "")
	add("a/block", Regular, 0o444, text[:DefaultBlockSize], "")
	add("a/empty", Regular, 0o444, nil, "")
	add("a/exec", Regular, 0o555, []byte("#!/bin/sh\necho hi\n"), "")
	add("a/random", Regular, 0o444, random, "")
	add("a/text", Regular, 0o444, text, "")
	add("b", Dir, 0o555, nil, "")
	add("b/empty-dir", Dir, 0o555, nil, "")
	add("b/link", Symlink, 0o777, nil, "../a/text")
	add("b/long-"+strings.Repeat("x", 250), Regular, 0o444, []byte("long name\n"), "")
	add("many", Dir, 0o755, nil, "")
	var names []string
	for i := range 300 {
		names = append(names, fmt.Sprintf("f%03d", i))
	}
	sort.Strings(names)
	for i, n := range names {
		add("many/"+n, Regular, 0o444, []byte(strings.Repeat(n, i)), "")
	}
	add("tmp", Dir, 0o1777, nil, "")
	return out
}

// writeImage writes entries as an image compressed as c into a new file.
func writeImage(t testing.TB, entries []entry, c format.Compression) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "image.squashfs")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := NewWriter(f, Options{Compression: c, ModTime: time.Unix(1700000000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		h := e.Header
		if err := w.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if e.Type == Regular {
			// In odd pieces, to cross block boundaries anywhere.
			for p := e.data; len(p) > 0; {
				k := min(len(p), 7777)
				if _, err := w.Write(p[:k]); err != nil {
					t.Fatal(err)
				}
				p = p[k:]
			}
		}
	}
	n, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != n || n%4096 != 0 {
		t.Errorf("image of %d bytes, Close said %d (%v)", fi.Size(), n, err)
	}
	return file
}

// TestUnsquashfs writes the sample tree with every compression and
// extracts it with unsquashfs: the superblock names the compression, and
// every entry comes back with its type, mode, contents and target.
func TestUnsquashfs(t *testing.T) {
	unsquashfs := oracle.Require(t, "unsquashfs")
	entries := sampleEntries()
	for _, c := range []format.Compression{format.Gzip, format.Zstd, format.XZ} {
		t.Run(string(c), func(t *testing.T) {
			file := writeImage(t, entries, c)
			out, err := exec.Command(unsquashfs, "-s", file).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Compression "+string(c)) || !strings.Contains(string(out), fmt.Sprintf("Number of inodes %d", len(entries)+1)) {
				t.Errorf("unsquashfs -s: %v\n%s", err, out)
			}
			dir := filepath.Join(t.TempDir(), "x")
			if out, err := exec.Command(unsquashfs, "-no-xattrs", "-d", dir, file).CombinedOutput(); err != nil {
				t.Fatalf("unsquashfs -d: %v\n%s", err, out)
			}
			for _, e := range entries {
				p := filepath.Join(dir, e.Name)
				fi, err := os.Lstat(p)
				if err != nil {
					t.Error(err)
					continue
				}
				mode := uint32(fi.Mode().Perm())
				if fi.Mode()&os.ModeSticky != 0 {
					mode |= 0o1000
				}
				switch e.Type {
				case Dir:
					if !fi.IsDir() || mode != e.Mode {
						t.Errorf("%s: %v, want a folder %o", e.Name, fi.Mode(), e.Mode)
					}
				case Regular:
					b, err := os.ReadFile(p)
					if err != nil || !bytes.Equal(b, e.data) || mode != e.Mode {
						t.Errorf("%s: %d bytes (%v), mode %o; want %d bytes, %o", e.Name, len(b), err, mode, len(e.data), e.Mode)
					}
				case Symlink:
					if target, err := os.Readlink(p); err != nil || target != e.Linkname {
						t.Errorf("%s -> %q (%v), want %q", e.Name, target, err, e.Linkname)
					}
				}
				if e.Type != Symlink && !fi.ModTime().Equal(e.ModTime) {
					t.Errorf("%s: mtime %v", e.Name, fi.ModTime())
				}
			}
			var n int
			filepath.Walk(dir, func(string, os.FileInfo, error) error { n++; return nil })
			if n != len(entries)+1 {
				t.Errorf("%d entries extracted, want %d", n, len(entries)+1)
			}
		})
	}
}

// TestReproducible writes the same entries under different GOMAXPROCS:
// the same bytes.
func TestReproducible(t *testing.T) {
	entries := sampleEntries()
	for _, c := range []format.Compression{format.Gzip, format.Zstd} {
		a, err := os.ReadFile(writeImage(t, entries, c))
		if err != nil {
			t.Fatal(err)
		}
		old := runtime.GOMAXPROCS(1)
		b, err := os.ReadFile(writeImage(t, entries, c))
		runtime.GOMAXPROCS(8)
		d, err2 := os.ReadFile(writeImage(t, entries, c))
		runtime.GOMAXPROCS(old)
		if err != nil || err2 != nil {
			t.Fatal(err, err2)
		}
		if !bytes.Equal(a, b) || !bytes.Equal(a, d) {
			t.Errorf("%s: images differ with GOMAXPROCS", c)
		}
	}
}

// TestOrderErrors: entries out of order, outside their folder, or files
// given the wrong number of bytes are errors naming the entry.
func TestOrderErrors(t *testing.T) {
	mtime := time.Unix(0, 0)
	tests := []struct {
		name    string
		entries []Header
		write   int
		want    string
	}{
		{"unsorted", []Header{{Name: "b", Type: Dir}, {Name: "a", Type: Dir}}, 0, "names come sorted"},
		{"duplicate", []Header{{Name: "a", Type: Dir}, {Name: "a", Type: Dir}}, 0, "names come sorted"},
		{"orphan", []Header{{Name: "a/b", Type: Regular}}, 0, "was not given before it"},
		{"absolute", []Header{{Name: "/a", Type: Dir}}, 0, "not a clean relative path"},
		{"short file", []Header{{Name: "a", Type: Regular, Size: 10}, {Name: "b", Type: Dir}}, 5, "5 bytes written of 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "img"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			w, err := NewWriter(f, Options{Compression: format.Gzip, ModTime: mtime})
			if err != nil {
				t.Fatal(err)
			}
			var got error
			for _, h := range tt.entries {
				h.ModTime = mtime
				if got = w.WriteHeader(&h); got != nil {
					break
				}
				if h.Type == Regular && tt.write > 0 {
					w.Write(make([]byte, tt.write))
				}
			}
			if _, err := w.Close(); got == nil {
				got = err
			}
			if got == nil || !strings.Contains(got.Error(), tt.want) {
				t.Errorf("error %v, want one with %q", got, tt.want)
			}
		})
	}
}

// TestLargeFolder writes a folder whose listing exceeds what a basic
// folder inode records (64 KiB), so it gets an extended inode, and whose
// entries' inodes span many metadata blocks: unsquashfs lists and extracts
// every entry.
func TestLargeFolder(t *testing.T) {
	unsquashfs := oracle.Require(t, "unsquashfs")
	mtime := time.Unix(1700000000, 0)
	entries := []entry{{Header: Header{Name: "big", Type: Dir, Mode: 0o755, ModTime: mtime}}}
	const n = 5000
	for i := range n {
		data := []byte(fmt.Sprintf("file %d\n", i))
		entries = append(entries, entry{Header{Name: fmt.Sprintf("big/entry-with-a-longer-name-%05d", i), Type: Regular, Mode: 0o444, ModTime: mtime, Size: int64(len(data))}, data})
	}
	file := writeImage(t, entries, format.Gzip)
	out, err := exec.Command(unsquashfs, "-l", file).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(out), "squashfs-root/big/entry-with-a-longer-name-"); got != n {
		t.Errorf("unsquashfs -l lists %d entries of the folder, want %d", got, n)
	}
	dir := filepath.Join(t.TempDir(), "x")
	if out, err := exec.Command(unsquashfs, "-no-xattrs", "-d", dir, file).CombinedOutput(); err != nil {
		t.Fatalf("unsquashfs -d: %v\n%s", err, out)
	}
	for _, i := range []int{0, 1234, n - 1} {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("big/entry-with-a-longer-name-%05d", i)))
		if err != nil || string(b) != fmt.Sprintf("file %d\n", i) {
			t.Errorf("entry %d: %q, %v", i, b, err)
		}
	}
}
