package export

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/storepack/storepack/internal/nixtest"
	"github.com/storepack/storepack/internal/oracle"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/nar"
)

// openNixtestStore opens the store of a closure built by nixtest, with its
// database or (db = store.DBNone) by scanning.
func openNixtestStore(t *testing.T, c *nixtest.Closure, db string) *store.Store {
	t.Helper()
	if db == "" {
		db = c.DBPath
	}
	s, err := store.Open(store.Options{Dir: store.Dir(c.StoreDir), DB: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// bundleRoots are the roots whose closures the oracle tests export.
var bundleRoots = [][]string{
	{nixtest.Top},
	{nixtest.Leaf},
	{nixtest.Hello},
	{nixtest.Left, nixtest.Right},
	{nixtest.Odd, nixtest.Link, nixtest.File},
}

// nixExport is `nix-store --export $(nix-store -qR roots...)`.
func nixExport(t *testing.T, c *nixtest.Closure, roots []string) ([]string, []byte) {
	t.Helper()
	paths := c.Lines(t, "nix-store", append([]string{"-qR"}, roots...)...)
	return paths, c.Output(t, "nix-store", append([]string{"--export"}, paths...)...)
}

func rootPaths(c *nixtest.Closure, attrs []string) []string {
	var out []string
	for _, a := range attrs {
		out = append(out, c.Items[a])
	}
	return out
}

func toPaths(ss []string) []store.Path {
	out := make([]store.Path, len(ss))
	for i, s := range ss {
		out[i] = store.Path(s)
	}
	return out
}

// TestWriteStoreBundleMatchesNix compares bundles of closures read through
// the store database with `nix-store --export`, byte for byte.
func TestWriteStoreBundleMatchesNix(t *testing.T) {
	nixtest.ForEachLayout(t, func(t *testing.T, c *nixtest.Closure) {
		s := openNixtestStore(t, c, "")
		for _, attrs := range bundleRoots {
			roots := rootPaths(c, attrs)
			nixPaths, want := nixExport(t, c, roots)
			closure, err := s.Closure(toPaths(roots)...)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(closure, toPaths(nixPaths)) {
				t.Fatalf("closure of %v: got %q, nix-store -qR gives %q", attrs, closure, nixPaths)
			}
			var got bytes.Buffer
			if err := WriteStoreBundle(&got, s, closure); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("bundle of %v: %d bytes differ from nix-store --export's %d (first difference at %d)",
					attrs, got.Len(), len(want), firstDiff(got.Bytes(), want))
			}
		}
	})
}

// TestWriteBundleMatchesNix writes a plan's closure items (as gen makes
// them: NAR hashes in Nix base32) and compares with `nix-store --export`.
func TestWriteBundleMatchesNix(t *testing.T) {
	nixtest.ForEachLayout(t, func(t *testing.T, c *nixtest.Closure) {
		s := openNixtestStore(t, c, "")
		nixPaths, want := nixExport(t, c, []string{c.Root})
		var items []plan.Item
		for _, p := range toPaths(nixPaths) {
			info, err := s.Info(p)
			if err != nil {
				t.Fatal(err)
			}
			items = append(items, plan.Item{
				Path: p, FSPath: string(p), References: info.References, Deriver: info.Deriver,
				NarHash: store.Hash(info.NarHash), NarSize: info.NarSize,
			})
		}
		var got bytes.Buffer
		if err := writeBundle(&got, items, nil); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("bundle: %d bytes differ from nix-store --export's %d (first difference at %d)",
				got.Len(), len(want), firstDiff(got.Bytes(), want))
		}
	})
}

// TestBundleImports imports our bundle into an empty chroot store
// (`nix-store --store DIR --import`), then checks the imported items'
// contents against their recorded hashes and their NARs against the
// originals.
func TestBundleImports(t *testing.T) {
	nixtest.ForEachLayout(t, func(t *testing.T, c *nixtest.Closure) {
		s := openNixtestStore(t, c, "")
		closure, err := s.Closure(store.Path(c.Root))
		if err != nil {
			t.Fatal(err)
		}
		bundle := filepath.Join(t.TempDir(), "closure.nar")
		f, err := os.Create(bundle)
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteStoreBundle(f, s, closure); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		chroot := t.TempDir()
		imp := c.Command("nix-store", "--store", chroot, "--import")
		in, err := os.Open(bundle)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		imp.Stdin = in
		out := oracle.Output(t, imp)
		if got := strings.Fields(string(out)); !slices.Equal(got, strs(closure)) {
			t.Errorf("nix-store --import printed %q, want the closure %q", got, closure)
		}
		c.Output(t, "nix-store", "--store", chroot, "--verify", "--check-contents")
		if got := c.Lines(t, "nix-store", "--store", chroot, "-qR", c.Root); !slices.Equal(got, strs(closure)) {
			t.Errorf("imported closure %q, want %q", got, closure)
		}
		for _, p := range closure {
			want := c.Output(t, "nix-store", "--dump", string(p))
			if got := c.Output(t, "nix-store", "--store", chroot, "--dump", string(p)); !bytes.Equal(got, want) {
				t.Errorf("%s: imported NAR differs from the original", p)
			}
		}
	})
}

func strs(ps []store.Path) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// bundleTree writes a small item below a temporary folder and returns its
// folder and its NAR digest and size.
func bundleTree(t *testing.T) (string, []byte, int64) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "item")
	if err := os.MkdirAll(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("contents of a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	sum, size, err := nar.Hash(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, sum[:], size
}

// readBundle decodes a bundle with nar.BundleReader, independently of
// the writer: each item's path, references, deriver and NAR bytes.
type bundleEntry struct {
	path    string
	refs    []string
	deriver string
	nar     []byte
}

func readBundle(t *testing.T, b []byte) []bundleEntry {
	t.Helper()
	br := nar.NewBundleReader(bytes.NewReader(b))
	var out []bundleEntry
	for {
		if _, err := br.Next(); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		e, err := br.Entry()
		if err != nil {
			t.Fatal(err)
		}
		refs := e.References
		if len(refs) == 0 {
			refs = nil
		}
		out = append(out, bundleEntry{path: e.Path, refs: refs, deriver: e.Deriver, nar: b[e.NarOffset : e.NarOffset+e.NarSize]})
	}
}

// TestWriteBundleFraming decodes a bundle written from plan items and
// checks each field, without Nix.
func TestWriteBundleFraming(t *testing.T) {
	dir, sum, size := bundleTree(t)
	d := store.Dir("/gnu/store")
	pa := d.Join("00000000000000000000000000000000-a")
	pb := d.Join("11111111111111111111111111111111-b")
	items := []plan.Item{
		{Path: pa, FSPath: dir, NarHash: store.Hash(sum), NarSize: size},
		{Path: pb, FSPath: dir, NarHash: store.Hash(sum), References: []store.Path{pb, pa, pa}, Deriver: "/gnu/store/22222222222222222222222222222222-b.drv"},
	}
	var buf bytes.Buffer
	if err := writeBundle(&buf, items, nil); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := nar.Dump(&want, dir); err != nil {
		t.Fatal(err)
	}
	got := readBundle(t, buf.Bytes())
	wantEntries := []bundleEntry{
		{path: string(pa), nar: want.Bytes()},
		{path: string(pb), refs: []string{string(pa), string(pb)}, deriver: items[1].Deriver, nar: want.Bytes()},
	}
	if len(got) != len(wantEntries) {
		t.Fatalf("%d items, want %d", len(got), len(wantEntries))
	}
	for i, w := range wantEntries {
		g := got[i]
		if g.path != w.path || !slices.Equal(g.refs, w.refs) || g.deriver != w.deriver || !bytes.Equal(g.nar, w.nar) {
			t.Errorf("item %d: path %q refs %q deriver %q (%d NAR bytes); want %q %q %q (%d)",
				i, g.path, g.refs, g.deriver, len(g.nar), w.path, w.refs, w.deriver, len(w.nar))
		}
	}
	var empty bytes.Buffer
	if err := writeBundle(&empty, nil, nil); err != nil || len(readBundle(t, empty.Bytes())) != 0 || empty.Len() != 8 {
		t.Errorf("empty bundle: %x, %v; want only the end marker", empty.Bytes(), err)
	}
}

type failingWriter struct{ after int }

var errWrite = errors.New("disk full")

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.after < len(p) {
		return 0, errWrite
	}
	w.after -= len(p)
	return len(p), nil
}

// TestWriteBundleErrors checks that each kind of failure is reported with
// the store path it concerns.
func TestWriteBundleErrors(t *testing.T) {
	dir, sum, size := bundleTree(t)
	p := store.Dir("/nix/store").Join("00000000000000000000000000000000-a")
	other := sha256.Sum256([]byte("other"))
	fifoDir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(fifoDir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		item plan.Item
		w    io.Writer
		want []string // substrings of the error
		is   error
	}{
		{"changed hash", plan.Item{Path: p, FSPath: dir, NarHash: other}, io.Discard,
			[]string{string(p), "changed", store.Encode32(other[:]), store.Encode32(sum)}, nil},
		{"changed size", plan.Item{Path: p, FSPath: dir, NarHash: store.Hash(sum), NarSize: size + 8}, io.Discard, []string{string(p), "NAR size"}, nil},
		{"missing", plan.Item{Path: p, FSPath: filepath.Join(dir, "missing"), NarHash: store.Hash(sum)}, io.Discard, []string{string(p), "missing"}, nil},
		{"fifo", plan.Item{Path: p, FSPath: fifoDir, NarHash: store.Hash(sum)}, io.Discard, []string{string(p), "fifo", "FIFO"}, nil},
		{"write error", plan.Item{Path: p, FSPath: dir, NarHash: store.Hash(sum)}, &failingWriter{after: 20}, nil, errWrite},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := writeBundle(tt.w, []plan.Item{tt.item}, nil)
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %q", err, tt.is)
			}
		})
	}
}
