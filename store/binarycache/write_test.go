package binarycache

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/compress"
	"github.com/storepack/storepack/internal/signing"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/nar"
)

const testStore = store.Dir("/nix/store")

// testItems makes a small closure in a temporary folder standing for
// /nix/store: leaf (a single file), mid (a folder referring to leaf) and
// root (referring to mid, leaf and itself, with a symlink and an
// executable), dependencies first.
func testItems(t testing.TB) []Item {
	t.Helper()
	fsDir := t.TempDir()
	leaf := testPath(testStore, "leaf", "leaf")
	mid := testPath(testStore, "mid", "mid-1.0")
	root := testPath(testStore, "root", "root-1.0")
	write := func(p, content string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	fs := func(p store.Path) string { return filepath.Join(fsDir, p.Base()) }
	write(fs(leaf), "leaf data\n", 0o644)
	write(filepath.Join(fs(mid), "share", "uses-leaf"), string(leaf)+"\n", 0o644)
	write(filepath.Join(fs(root), "bin", "run"), "#!/bin/sh\nexec "+string(mid)+"/x "+string(root)+"\n", 0o755)
	write(filepath.Join(fs(root), "share", "big"), strings.Repeat("compressible text ", 20000), 0o644)
	if err := os.Symlink(string(leaf), filepath.Join(fs(root), "leaf")); err != nil {
		t.Fatal(err)
	}
	items := []Item{
		{Path: leaf, FSPath: fs(leaf), Deriver: string(testPath(testStore, "leafdrv", "leaf.drv"))},
		{Path: mid, FSPath: fs(mid), References: []store.Path{leaf}},
		{Path: root, FSPath: fs(root), References: sortedRefs([]store.Path{leaf, mid, root}), Deriver: testPath(testStore, "rootdrv", "root-1.0.drv").Base()},
	}
	for i := range items {
		h, n, err := nar.Hash(items[i].FSPath)
		if err != nil {
			t.Fatal(err)
		}
		items[i].NarHash, items[i].NarSize = h, n
	}
	return items
}

func testKey(t testing.TB, name string) *signing.SecretKey {
	t.Helper()
	k, err := signing.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	return &k
}

// listFiles lists the regular files under dir, relative, with slashes.
func listFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestWriteAndVerify(t *testing.T) {
	items := testItems(t)
	for _, comp := range []string{"", CompressionXZ, CompressionZstd, CompressionNone} {
		t.Run("compression="+comp, func(t *testing.T) {
			key := testKey(t, "test-1")
			dir := filepath.Join(t.TempDir(), "cache")
			res, err := Write(dir, items, Options{StoreDir: testStore, Compression: comp, Key: key})
			if err != nil {
				t.Fatal(err)
			}
			want := cmpName(comp)
			files := listFiles(t, dir)
			if len(res.Written) != 1+2*len(items) || len(files) != len(res.Written) {
				t.Errorf("wrote %d files %q, found %d, want %d", len(res.Written), res.Written, len(files), 1+2*len(items))
			}
			for _, f := range res.Written {
				if _, ok := files[f]; !ok {
					t.Errorf("Written lists %s, not in the cache", f)
				}
			}
			if res.Skipped != 0 {
				t.Errorf("Skipped = %d in a new cache", res.Skipped)
			}
			if got := string(files[CacheInfoFile]); got != "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n" {
				t.Errorf("nix-cache-info = %q", got)
			}
			for i, e := range res.Entries {
				it := items[i]
				ni, err := ParseNarInfo(files[e.File])
				if err != nil {
					t.Fatalf("%s: %v", e.File, err)
				}
				if e.File != it.Path.HashPart()+".narinfo" || ni.StorePath != it.Path || !e.Written {
					t.Errorf("entry %d: %+v for %s", i, e, it.Path)
				}
				if ni.Compression != want || !strings.HasPrefix(ni.URL, "nar/"+store.Encode32(ni.FileHash[:])+".nar") {
					t.Errorf("%s: compression %s, URL %s", e.File, ni.Compression, ni.URL)
				}
				if ni.NarHash != it.NarHash || ni.NarSize != it.NarSize || !slices.Equal(ni.References, it.References) {
					t.Errorf("%s: NAR %s %d refs %v, want %s %d %v", e.File, ni.NarHash, ni.NarSize, ni.References, it.NarHash, it.NarSize, it.References)
				}
				if it.Deriver != "" && ni.Deriver.Base() != filepath.Base(it.Deriver) {
					t.Errorf("%s: Deriver %s, want %s", e.File, ni.Deriver, it.Deriver)
				}
				if len(ni.Sigs) != 1 || !key.Public().Verify(ni.Fingerprint(), ni.Sigs[0]) {
					t.Errorf("%s: Sigs %q do not verify", e.File, ni.Sigs)
				}
			}
			n, err := Verify(dir, key.Public())
			if err != nil || n != len(items) {
				t.Errorf("Verify = %d, %v; want %d, nil", n, err, len(items))
			}

			// A second export writes nothing and changes nothing.
			res2, err := Write(dir, items, Options{StoreDir: testStore, Compression: comp, Key: key})
			if err != nil {
				t.Fatal(err)
			}
			if len(res2.Written) != 0 || res2.Skipped != len(items) {
				t.Errorf("second Write: wrote %q, skipped %d; want nothing written, %d skipped", res2.Written, res2.Skipped, len(items))
			}
			if again := listFiles(t, dir); !mapsEqual(files, again) {
				t.Errorf("the second Write changed the cache")
			}
		})
	}
}

func cmpName(c string) string {
	if c == "" {
		return CompressionXZ
	}
	return c
}

func mapsEqual(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// TestWriteDeterministic writes the same closure twice, with different
// numbers of jobs, and compares the caches byte for byte.
func TestWriteDeterministic(t *testing.T) {
	items := testItems(t)
	key := testKey(t, "det-1")
	for _, comp := range writeCompressions() {
		a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
		if _, err := Write(a, items, Options{StoreDir: testStore, Compression: comp, Key: key, Jobs: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := Write(b, items, Options{StoreDir: testStore, Compression: comp, Key: key, Jobs: 3}); err != nil {
			t.Fatal(err)
		}
		if !mapsEqual(listFiles(t, a), listFiles(t, b)) {
			t.Errorf("%s: two writes of the same closure differ", comp)
		}
	}
}

// TestWriteAddsMissing writes part of a closure, then all of it: only the
// missing items are written, and the unsigned ones are kept as they are.
func TestWriteAddsMissing(t *testing.T) {
	items := testItems(t)
	dir := filepath.Join(t.TempDir(), "cache")
	if _, err := Write(dir, items[:1], Options{StoreDir: testStore}); err != nil {
		t.Fatal(err)
	}
	before := listFiles(t, dir)
	res, err := Write(dir, items, Options{StoreDir: testStore, Key: testKey(t, "k-1")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 1 || len(res.Written) != 4 {
		t.Errorf("skipped %d, wrote %q; want 1 skipped, 2 NARs and 2 narinfos", res.Skipped, res.Written)
	}
	after := listFiles(t, dir)
	for f, b := range before {
		if !bytes.Equal(after[f], b) {
			t.Errorf("%s was rewritten", f)
		}
	}
}

func TestWriteErrors(t *testing.T) {
	items := testItems(t)
	key := testKey(t, "k-1")
	good := func(t *testing.T) string {
		dir := filepath.Join(t.TempDir(), "cache")
		if _, err := Write(dir, items, Options{StoreDir: testStore, Key: key}); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	narinfo := items[1].Path.HashPart() + ".narinfo"
	tests := []struct {
		name  string
		setup func(t *testing.T) (dir string, items []Item, opts Options)
		want  []string
	}{
		{"corrupt narinfo", func(t *testing.T) (string, []Item, Options) {
			dir := good(t)
			if err := os.WriteFile(filepath.Join(dir, narinfo), []byte("StorePath: x\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return dir, items, Options{StoreDir: testStore}
		}, []string{"corrupt cache entry", narinfo, "no URL field"}},
		{"narinfo about another path", func(t *testing.T) (string, []Item, Options) {
			dir := good(t)
			other, _ := os.ReadFile(filepath.Join(dir, items[0].Path.HashPart()+".narinfo"))
			if err := os.WriteFile(filepath.Join(dir, narinfo), other, 0o644); err != nil {
				t.Fatal(err)
			}
			return dir, items, Options{StoreDir: testStore}
		}, []string{"corrupt cache entry", narinfo, "it is about " + string(items[0].Path)}},
		{"NAR file missing", func(t *testing.T) (string, []Item, Options) {
			dir := good(t)
			ni := readNarInfo(t, filepath.Join(dir, narinfo))
			if err := os.Remove(filepath.Join(dir, ni.URL)); err != nil {
				t.Fatal(err)
			}
			return dir, items, Options{StoreDir: testStore}
		}, []string{"corrupt cache entry", narinfo, "its NAR file", "no such file"}},
		{"NAR file truncated", func(t *testing.T) (string, []Item, Options) {
			dir := good(t)
			ni := readNarInfo(t, filepath.Join(dir, narinfo))
			if err := os.Truncate(filepath.Join(dir, ni.URL), 3); err != nil {
				t.Fatal(err)
			}
			return dir, items, Options{StoreDir: testStore}
		}, []string{"corrupt cache entry", narinfo, "has 3 bytes, FileSize says"}},
		{"corrupt nix-cache-info", func(t *testing.T) (string, []Item, Options) {
			dir := good(t)
			if err := os.WriteFile(filepath.Join(dir, CacheInfoFile), []byte("garbage"), 0o644); err != nil {
				t.Fatal(err)
			}
			return dir, items, Options{StoreDir: testStore}
		}, []string{"corrupt", CacheInfoFile}},
		{"cache of another store", func(t *testing.T) (string, []Item, Options) {
			return good(t), items, Options{StoreDir: "/gnu/store"}
		}, []string{"not in the store folder /gnu/store"}},
		{"other store in nix-cache-info", func(t *testing.T) (string, []Item, Options) {
			dir := good(t)
			if err := os.WriteFile(filepath.Join(dir, CacheInfoFile), []byte("StoreDir: /gnu/store\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return dir, items, Options{StoreDir: testStore}
		}, []string{CacheInfoFile, "holds paths of the store /gnu/store, not /nix/store"}},
		{"unwritable folder", func(t *testing.T) (string, []Item, Options) {
			file := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(file, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(file, "cache"), items, Options{StoreDir: testStore}
		}, []string{"binary cache folder", "file/cache", "not a directory"}},
		{"unknown compression", func(t *testing.T) (string, []Item, Options) {
			return t.TempDir(), items, Options{StoreDir: testStore, Compression: "gzip"}
		}, []string{"unknown compression \"gzip\""}},
		{"item changed", func(t *testing.T) (string, []Item, Options) {
			changed := slices.Clone(items)
			changed[0].NarSize++
			return t.TempDir(), changed, Options{StoreDir: testStore}
		}, []string{string(items[0].Path), "it changed since the plan was made"}},
		{"missing reference", func(t *testing.T) (string, []Item, Options) {
			return t.TempDir(), items[1:], Options{StoreDir: testStore}
		}, []string{string(items[1].Path) + " refers to " + string(items[0].Path), "neither among the items written nor in the cache"}},
		{"unreadable item", func(t *testing.T) (string, []Item, Options) {
			gone := slices.Clone(items)
			gone[0].FSPath = filepath.Join(t.TempDir(), "gone")
			return t.TempDir(), gone, Options{StoreDir: testStore}
		}, []string{string(items[0].Path), "gone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, its, opts := tt.setup(t)
			before := listFiles(t, filepath.Dir(dir))
			_, err := Write(dir, its, opts)
			if err == nil {
				t.Fatal("Write succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			after := listFiles(t, filepath.Dir(dir))
			for f, b := range before {
				if !bytes.Equal(after[f], b) {
					t.Errorf("%s was changed by a failed Write", f)
				}
			}
			for f := range after {
				if strings.Contains(f, ".tmp-") {
					t.Errorf("temporary file %s left behind", f)
				}
			}
		})
	}
}

func readNarInfo(t *testing.T, file string) *NarInfo {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ni, err := ParseNarInfo(b)
	if err != nil {
		t.Fatal(err)
	}
	return ni
}

// TestWriteDiffering writes into a cache that holds another NAR for one
// of the paths: the entry is kept and flagged.
func TestWriteDiffering(t *testing.T) {
	items := testItems(t)
	dir := filepath.Join(t.TempDir(), "cache")
	if _, err := Write(dir, items, Options{StoreDir: testStore}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(items[0].FSPath), []byte("another build\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed := slices.Clone(items)
	h, n, err := nar.Hash(changed[0].FSPath)
	if err != nil {
		t.Fatal(err)
	}
	changed[0].NarHash, changed[0].NarSize = h, n
	res, err := Write(dir, changed, Options{StoreDir: testStore})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Entries[0].Differs || res.Entries[1].Differs || len(res.Written) != 0 {
		t.Errorf("entries %+v, written %q: want only the first flagged, nothing written", res.Entries, res.Written)
	}
	if res.Entries[0].NarInfo.NarHash != items[0].NarHash {
		t.Errorf("the entry's narinfo is not the one in the cache")
	}
}

func TestVerifyErrors(t *testing.T) {
	items := testItems(t)
	key := testKey(t, "k-1")
	mid := items[1].Path.HashPart() + ".narinfo"
	tests := []struct {
		name   string
		key    func() signing.PublicKey
		modify func(t *testing.T, dir string)
		want   []string
	}{
		{"another key", func() signing.PublicKey { return testKey(t, "k-1").Public() }, nil,
			[]string{"signature by k-1 is not valid"}},
		{"another key name", func() signing.PublicKey { return testKey(t, "other-1").Public() }, nil,
			[]string{"no signature by the key other-1 (only by k-1)"}},
		{"unsigned", key.Public, func(t *testing.T, dir string) {
			if _, err := Write(dir, items, Options{StoreDir: testStore}); err != nil {
				t.Fatal(err)
			}
		}, []string{"is not signed"}},
		{"NAR changed", key.Public, func(t *testing.T, dir string) {
			ni := readNarInfo(t, filepath.Join(dir, mid))
			f := filepath.Join(dir, ni.URL)
			b, _ := os.ReadFile(f)
			b[len(b)/2] ^= 1
			os.WriteFile(f, b, 0o644)
		}, []string{mid, "its NAR file"}},
		{"tampered NarSize", key.Public, func(t *testing.T, dir string) {
			ni := readNarInfo(t, filepath.Join(dir, mid))
			ni.NarSize++
			text, _ := ni.MarshalText()
			os.WriteFile(filepath.Join(dir, mid), text, 0o644)
		}, []string{mid, "signature by k-1 is not valid"}},
		{"missing reference", key.Public, func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, items[0].Path.HashPart()+".narinfo"))
		}, []string{mid, "its reference " + string(items[0].Path) + " has no narinfo"}},
		{"renamed narinfo", key.Public, func(t *testing.T, dir string) {
			os.Rename(filepath.Join(dir, mid), filepath.Join(dir, "00000000000000000000000000000000.narinfo"))
		}, []string{"00000000000000000000000000000000.narinfo: it is about " + string(items[1].Path)}},
		{"no nix-cache-info", key.Public, func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, CacheInfoFile))
		}, []string{CacheInfoFile, "no such file"}},
		{"empty cache", key.Public, func(t *testing.T, dir string) {
			for _, it := range items {
				os.Remove(filepath.Join(dir, it.Path.HashPart()+".narinfo"))
			}
		}, []string{"holds no .narinfo file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.name != "unsigned" { // that case writes its own cache
				if _, err := Write(dir, items, Options{StoreDir: testStore, Key: key, Compression: CompressionZstd}); err != nil {
					t.Fatal(err)
				}
			}
			if tt.modify != nil {
				tt.modify(t, dir)
			}
			_, err := Verify(dir, tt.key())
			if err == nil {
				t.Fatal("Verify succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// writeCompressions are the NAR compressions a spec's binary-cache export
// may ask for (package format): Write must write each.
func writeCompressions() []string {
	var out []string
	for _, c := range WriteCompressions {
		out = append(out, string(c))
	}
	return out
}

// TestEncoderBudget: the compressors' budget lets two zstd encoders of
// any NAR run at once, and two xz encoders of small NARs, but an xz
// encoder of a 4 MB NAR runs alone.
func TestEncoderBudget(t *testing.T) {
	weight := func(c string, size int64) int64 {
		return min(compress.EncoderMemory(format.Compression(c), compress.Options{Size: size}), encoderBudget)
	}
	for _, size := range []int64{1000, 4_000_000, 100 << 20} {
		if w := weight(CompressionZstd, size); 2*w > encoderBudget {
			t.Errorf("zstd, a %d-byte NAR: %d bytes of %d, two do not fit", size, w, encoderBudget)
		}
	}
	if w := weight(CompressionXZ, 1<<20); 2*w > encoderBudget {
		t.Errorf("xz, a 1 MiB NAR: %d bytes of %d, two do not fit", w, encoderBudget)
	}
	if w := weight(CompressionXZ, 4_000_000); 2*w <= encoderBudget {
		t.Errorf("xz, a 4 MB NAR: %d bytes of %d, two fit", w, encoderBudget)
	}
}
