package tree

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/storepack/storepack/internal/fixture"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
)

// oneTree plans the fixture as an image of a single layer, whose tree
// holds everything.
func oneTree(t *testing.T, f *fixture.Store) (*plan.Tree, Source, int64) {
	t.Helper()
	e := &spec.Export{Name: "hello", Format: fixture.ImageFormat, Image: spec.Image{MaxLayers: 1}}
	sys := f.System(t, "x86_64-linux", e, "hello-2.12")
	return &sys.Image.Layers[0].Tree, Source{Items: plan.Items(sys.Closure)}, sys.Image.MTime()
}

// writeTarBytes writes t's tar, checking the length WriteTar reports and
// the one Size computes.
func writeTarBytes(t *testing.T, tr *plan.Tree, mtime int64, src Source) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := WriteTar(&buf, tr, mtime, src)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTar reported %d bytes and wrote %d", n, buf.Len())
	}
	size, err := Size(tr, mtime, src)
	if err != nil {
		t.Fatal(err)
	}
	if size != n {
		t.Fatalf("Size = %d, WriteTar wrote %d", size, n)
	}
	return buf.Bytes()
}

func TestTarEntries(t *testing.T) {
	f := fixture.Write(t, "/gnu/store", "", fixture.Hello())
	tr, src, mtime := oneTree(t, f)
	entries := fixture.ReadTar(t, writeTarBytes(t, tr, mtime, src))
	hello := strings.TrimPrefix(string(f.ByName["hello-2.12"]), "/")
	byName := map[string]fixture.TarEntry{}
	var prev string
	for i, e := range entries {
		h := e.Hdr
		byName[h.Name] = e
		name := strings.TrimSuffix(h.Name, "/")
		// Parents first: every entry's folder came before it.
		if dir := filepath.Dir(name); dir != "." {
			if _, ok := byName[dir+"/"]; !ok {
				t.Errorf("%s comes before its folder %s", h.Name, dir)
			}
		}
		// Depth first, siblings sorted: compare component by component.
		if i > 0 && compareComponents(prev, name) >= 0 {
			t.Errorf("%s comes after %s", name, prev)
		}
		prev = name
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner %d:%d %q:%q", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if h.ModTime.Unix() != 1 || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("%s: times %v %v %v", h.Name, h.ModTime, h.AccessTime, h.ChangeTime)
		}
		if strings.HasPrefix(h.Name, "/") || strings.HasPrefix(h.Name, "./") {
			t.Errorf("%s: not a relative name", h.Name)
		}
		if len(h.Name) <= 100 && len(h.Linkname) <= 100 && isASCII(h.Name) && len(h.PAXRecords) != 0 {
			t.Errorf("%s: PAX records %v for a short ASCII name", h.Name, h.PAXRecords)
		}
	}
	tests := []struct {
		name   string
		typ    byte
		mode   int64
		data   string
		target string
	}{
		{"gnu/", tar.TypeDir, 0o755, "", ""},
		{"gnu/store/", tar.TypeDir, 0o755, "", ""},
		{"tmp/", tar.TypeDir, 0o1777, "", ""},
		{"bin", tar.TypeSymlink, 0o777, "", "/" + hello + "/bin"},
		{hello + "/", tar.TypeDir, 0o555, "", ""},
		{hello + "/bin/hello", tar.TypeReg, 0o555, "#!/bin/sh\necho hello, uses " + string(f.ByName["libc-2.39"]) + "\n", ""},
		{hello + "/bin/hello-again", tar.TypeReg, 0o555, "#!/bin/sh\necho hello, uses " + string(f.ByName["libc-2.39"]) + "\n", ""},
		{hello + "/share/doc/README", tar.TypeReg, 0o444, "hello's readme\n", ""},
		{hello + "/share/doc/LIESMICH", tar.TypeSymlink, 0o777, "", "README"},
		{hello + "/share/doc/café.txt", tar.TypeReg, 0o444, "non-ASCII name\n", ""},
		{hello + "/share/doc/" + strings.Repeat("very-long-folder-name/", 6) + "file.txt", tar.TypeReg, 0o444, "deep\n", ""},
		{hello + "/share/libc", tar.TypeSymlink, 0o777, "", string(f.ByName["libc-2.39"]) + "/lib"},
		{strings.TrimPrefix(string(f.ByName["libc-2.39"]), "/") + "/share/empty/", tar.TypeDir, 0o555, "", ""},
		{strings.TrimPrefix(string(f.ByName["greeting"]), "/"), tar.TypeReg, 0o555, "#!" + string(f.ByName["libc-2.39"]) + "/bin/sh\n", ""},
		{strings.TrimPrefix(string(f.ByName["libc-link"]), "/"), tar.TypeSymlink, 0o777, "", string(f.ByName["libc-2.39"])},
	}
	for _, tt := range tests {
		e, ok := byName[tt.name]
		if !ok {
			t.Errorf("%s: missing", tt.name)
			continue
		}
		if e.Hdr.Typeflag != tt.typ || e.Hdr.Mode != tt.mode || string(e.Data) != tt.data || e.Hdr.Linkname != tt.target {
			t.Errorf("%s: type %c mode %o data %q target %q; want %c %o %q %q", tt.name, e.Hdr.Typeflag, e.Hdr.Mode, e.Data, e.Hdr.Linkname, tt.typ, tt.mode, tt.data, tt.target)
		}
	}
	// A long name USTAR can split goes in its prefix field; one it cannot
	// goes in a PAX record.
	if e := byName[hello+"/share/doc/"+strings.Repeat("very-long-folder-name/", 6)+"file.txt"]; e.Hdr == nil || len(e.Hdr.PAXRecords) != 0 {
		t.Errorf("splittable long name: %v", e.Hdr)
	}
	if e := byName[hello+"/share/doc/"+strings.Repeat("n", 120)]; e.Hdr == nil || e.Hdr.PAXRecords["path"] != e.Hdr.Name || e.Hdr.Format != tar.FormatPAX {
		t.Errorf("unsplittable long name: %v", e.Hdr)
	}
	if len(entries) != len(byName) {
		t.Errorf("%d entries, %d distinct names", len(entries), len(byName))
	}
}

// compareComponents orders slash-separated paths component by component,
// the order of a depth-first walk with sorted siblings.
func compareComponents(a, b string) int {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if c := strings.Compare(as[i], bs[i]); c != 0 {
			return c
		}
	}
	return len(as) - len(bs)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func TestSizeMatches(t *testing.T) {
	// Names around the USTAR limits, long symlink targets, empty files,
	// sizes on and around block boundaries.
	files := map[string]string{
		"empty":                  "",
		"block":                  strings.Repeat("b", 512),
		"block+1":                strings.Repeat("b", 513),
		strings.Repeat("n", 99):  "99",
		strings.Repeat("m", 100): "100",
		strings.Repeat("d", 60) + "/" + strings.Repeat("f", 60): "split",
		"link":    "-> " + strings.Repeat("t", 150),
		"ünïcödé": "x:exec",
	}
	for _, dir := range []store.Dir{"/gnu/store", "/nix/store", store.Dir("/" + strings.Repeat("s", 90) + "/store")} {
		f := fixture.Write(t, dir, "", []fixture.Item{{Name: "sizes", Files: files}})
		e := &spec.Export{Name: "sizes", Format: fixture.ImageFormat}
		sys := f.System(t, "x86_64-linux", e, "sizes")
		for i := range sys.Image.Layers {
			writeTarBytes(t, &sys.Image.Layers[i].Tree, sys.Image.MTime(), Source{Items: plan.Items(sys.Closure)})
		}
	}
}

func TestTarErrors(t *testing.T) {
	f := fixture.Write(t, "/gnu/store", "", []fixture.Item{{Name: "fifo", Files: map[string]string{"a": "a"}}})
	if err := syscall.Mkfifo(filepath.Join(f.Items[0].FSPath, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &spec.Export{Name: "x", Format: fixture.ImageFormat}
	sys := f.System(t, "x86_64-linux", e, "fifo")
	src := Source{Items: plan.Items(sys.Closure)}
	var buf bytes.Buffer
	if _, err := WriteTar(&buf, &sys.Image.Layers[0].Tree, 1, src); err == nil || !strings.Contains(err.Error(), "FIFO") {
		t.Errorf("tree with a FIFO: error %v", err)
	}
	if _, err := Size(&sys.Image.Layers[0].Tree, 1, src); err == nil || !strings.Contains(err.Error(), "pipe") {
		t.Errorf("size of a tree with a FIFO: error %v", err)
	}
	bad := []plan.Tree{
		{Items: []store.Path{fixture.StorePath("/gnu/store", "missing")}, Entries: []plan.Entry{{Path: "/gnu", Type: plan.EntryDirectory}, {Path: "/gnu/store", Type: plan.EntryDirectory}}},
		{Items: sys.Image.Layers[0].Items},
		{Entries: []plan.Entry{{Path: "/a/b", Type: plan.EntryDirectory}}},
		{Entries: []plan.Entry{{Path: "/a", Type: plan.EntrySymlink, Target: "x"}, {Path: "/a/b", Type: plan.EntryDirectory}}},
		{Entries: []plan.Entry{{Path: "relative", Type: plan.EntryDirectory}}},
		{Entries: []plan.Entry{{Path: "/a", Type: "fifo"}}},
	}
	for _, tr := range bad {
		if _, err := WriteTar(&buf, &tr, 1, src); err == nil {
			t.Errorf("tree %+v: no error", tr)
		}
	}
}

// TestHeaderMatches checks appendHeader, which builds plain USTAR
// headers itself, against archive/tar writing the same header in the PAX
// format: byte for byte, around every field's limits.
func TestHeaderMatches(t *testing.T) {
	long := strings.Repeat("n", 100)
	tests := []struct {
		name, link string
		typ        byte
		mode, size int64
		mtime      int64
		uid, gid   int
	}{
		{"gnu/", "", tar.TypeDir, 0o755, 0, 1, 0, 0},
		{"tmp/", "", tar.TypeDir, 0o1777, 0, 1700000000, 0, 0},
		{"a/b/file", "", tar.TypeReg, 0o444, 0, 0, 0, 0},
		{"a/b/exe", "", tar.TypeReg, 0o555, 1<<33 - 1, 1<<33 - 1, 0, 0},
		{"big", "", tar.TypeReg, 0o444, 1 << 33, 1, 0, 0},
		{"late", "", tar.TypeReg, 0o444, 5, 1 << 33, 0, 0},
		{long, "", tar.TypeReg, 0o444, 512, 1, 0, 0},
		{long + "x", "", tar.TypeReg, 0o444, 513, 1, 0, 0},
		{strings.Repeat("d", 120) + "/f", "", tar.TypeReg, 0o444, 1, 1, 0, 0},
		{"bin", long, tar.TypeSymlink, 0o777, 0, 1, 0, 0},
		{"bin", long + "t", tar.TypeSymlink, 0o777, 0, 1, 0, 0},
		{"ünï", "", tar.TypeReg, 0o444, 3, 1, 0, 0},
		{"l", "tärget", tar.TypeSymlink, 0o777, 0, 1, 0, 0},
		{"home/app/", "", tar.TypeDir, 0o755, 0, 1, 1000, 100},
		{"etc/motd", "", tar.TypeReg, 0o600, 6, 1, 1<<21 - 1, 1<<21 - 1},
		{"etc/big-owner", "", tar.TypeReg, 0o600, 6, 1, 1 << 21, 5},
	}
	for _, tt := range tests {
		var want bytes.Buffer
		hdr := &tar.Header{Format: tar.FormatPAX, Name: tt.name, Linkname: tt.link, Typeflag: tt.typ, Mode: tt.mode, Uid: tt.uid, Gid: tt.gid, Size: tt.size, ModTime: time.Unix(tt.mtime, 0)}
		if err := tar.NewWriter(&want).WriteHeader(hdr); err != nil {
			t.Fatalf("%q: archive/tar: %v", tt.name, err)
		}
		got, err := appendHeader([]byte("prefix"), tt.name, tt.typ, tt.mode, Owner{tt.uid, tt.gid}, tt.size, tt.mtime, tt.link, tar.FormatPAX)
		if err != nil {
			t.Fatalf("%q: %v", tt.name, err)
		}
		if !bytes.Equal(got[6:], want.Bytes()) || string(got[:6]) != "prefix" {
			t.Errorf("%q -> %q: header differs from archive/tar's (%d vs %d bytes)", tt.name, tt.link, len(got)-6, want.Len())
		}
	}
}

// TestTarReproducible writes the same tree from the same items and
// from copies of them with other modes, owners and mtimes, under another
// umask, time zone, working folder and GOMAXPROCS: the bytes are equal.
func TestTarReproducible(t *testing.T) {
	f := fixture.Write(t, "/nix/store", "", fixture.Hello())
	tr, src, mtime := oneTree(t, f)
	want := writeTarBytes(t, tr, mtime, src)

	// A copy with other metadata: files group/world writable, folders
	// 0700, another owner, mtimes all over the place.
	oldUmask := syscall.Umask(0o077)
	defer syscall.Umask(oldUmask)
	copyRoot := t.TempDir()
	g := fixture.Write(t, "/nix/store", copyRoot, fixture.Hello())
	when := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	err := filepath.Walk(copyRoot, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == copyRoot {
			return err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			mode := os.FileMode(0o666) | fi.Mode().Perm()&0o100 | fi.Mode().Perm()&0o111
			if fi.IsDir() {
				mode = 0o700
			}
			if err := os.Chmod(p, mode); err != nil {
				return err
			}
			if err := os.Chtimes(p, when, when); err != nil {
				return err
			}
		}
		if os.Geteuid() == 0 {
			return os.Lchown(p, 1234, 5678)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	oldLocal := time.Local
	time.Local = time.FixedZone("UTC+13", 13*3600)
	defer func() { time.Local = oldLocal }()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	t.Chdir(t.TempDir())

	tr2, src2, mtime2 := oneTree(t, g)
	got := writeTarBytes(t, tr2, mtime2, src2)
	if !bytes.Equal(want, got) {
		t.Errorf("tars differ:\nfirst:\n%s\ncopy:\n%s", fixture.Listing(t, want), fixture.Listing(t, got))
	}
}
