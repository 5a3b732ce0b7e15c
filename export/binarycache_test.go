package export

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storepack/storepack/internal/signing"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/binarycache"
	"github.com/storepack/storepack/store/nar"
)

// cacheTestExport plans a binary-cache export of two systems sharing an
// item: lib (a source item, added from a local file) and, per system, an
// app referring to it. The two apps have the same contents, hence the same
// NAR: the cache holds it once.
func cacheTestExport(t *testing.T) *plan.Export {
	t.Helper()
	d := store.Dir("/nix/store")
	tmp := t.TempDir()
	item := func(base, content string, refs []store.Path, source string) plan.Item {
		t.Helper()
		p := d.Join(base)
		fsPath := filepath.Join(tmp, base)
		if err := os.WriteFile(fsPath, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		h, n, err := nar.Hash(fsPath)
		if err != nil {
			t.Fatal(err)
		}
		if refs == nil {
			refs = []store.Path{}
		}
		return plan.Item{Path: p, NarHash: h, NarSize: n, References: refs, Source: source, FSPath: fsPath}
	}
	lib := item("0g4mxq27cgsyzdn0kbvhv2hzb2v3c8nb-lib", "lib\n", nil, "lib")
	app1 := item("1c1jw4yzqr8n5lyc7p4ahiq5bbxidrs0-app-x86_64", "app "+string(lib.Path)+"\n", []store.Path{lib.Path}, "")
	app2 := item("2f5hgqn5zcxmv8jw0fx7xl9a4mq0rb6d-app-aarch64", "app "+string(lib.Path)+"\n", []store.Path{lib.Path}, "")
	app2.Deriver = string(d.Join("3jh7dgpgr6ng8f1q2xyv3r9jygxj9a8l-app-aarch64.drv"))
	return &plan.Export{
		Name: "cache", Format: "binary-cache", Output: "out/cache",
		Systems: []plan.System{
			{Name: "x86_64-linux", Closure: []plan.Item{lib, app1}},
			{Name: "aarch64-linux", Closure: []plan.Item{lib, app2}},
		},
	}
}

func TestWriteCache(t *testing.T) {
	e := cacheTestExport(t)
	out := t.TempDir()
	keyDir := t.TempDir()
	secretFile := filepath.Join(keyDir, "secret")
	if err := signing.WriteKeyFiles("export-test-1", secretFile, filepath.Join(keyDir, "public")); err != nil {
		t.Fatal(err)
	}
	pub, err := signing.ReadPublicKey(filepath.Join(keyDir, "public"))
	if err != nil {
		t.Fatal(err)
	}
	e.Compression, e.SignKey = "zstd", secretFile
	files, res, err := writeBinaryCache(e, out, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	// nix-cache-info, a narinfo for each of the 3 items (lib is in both
	// closures, once in the cache) and 2 NARs (the apps share theirs).
	if len(files) != 6 || len(res.Written) != 6 || len(res.Entries) != 3 {
		t.Fatalf("files %+v, written %q, %d entries; want 6 files for 3 items", files, res.Written, len(res.Entries))
	}
	for i, f := range files {
		if i > 0 && files[i-1].Path >= f.Path {
			t.Errorf("files not sorted: %s before %s", files[i-1].Path, f.Path)
		}
		b, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(f.Path)))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if f.Export != "cache" || f.SHA256 != hex.EncodeToString(sum[:]) || f.Size != int64(len(b)) || !strings.HasPrefix(f.Path, "out/cache/") {
			t.Errorf("file %+v: want export cache, sha256 %x, size %d, under out/cache/", f, sum, len(b))
		}
	}
	if n, err := binarycache.Verify(filepath.Join(out, "out", "cache"), pub); err != nil || n != 3 {
		t.Errorf("Verify: %d, %v", n, err)
	}
	for _, en := range res.Entries {
		ni := en.NarInfo
		switch ni.StorePath.Name() {
		case "lib":
			if want := "fixed:r:" + ni.NarHash.String(); ni.CA != want {
				t.Errorf("source item: CA %q, want %q", ni.CA, want)
			}
		case "app-aarch64":
			if ni.Deriver.Base() != "3jh7dgpgr6ng8f1q2xyv3r9jygxj9a8l-app-aarch64.drv" || ni.CA != "" {
				t.Errorf("app-aarch64: Deriver %q, CA %q", ni.Deriver, ni.CA)
			}
		}
		if ni.Compression != "zstd" {
			t.Errorf("%s: compression %s, want zstd", en.File, ni.Compression)
		}
	}

	// A second export writes no file and lists the same files.
	again, res2, err := writeBinaryCache(e, out, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res2.Written) != 0 || res2.Skipped != 3 {
		t.Errorf("second export wrote %q, skipped %d; want nothing written, 3 skipped", res2.Written, res2.Skipped)
	}
	if len(again) != len(files) {
		t.Fatalf("second export lists %d files, the first %d", len(again), len(files))
	}
	for i := range files {
		if again[i] != files[i] {
			t.Errorf("second export lists %+v, the first %+v", again[i], files[i])
		}
	}
}

func TestWriteCacheErrors(t *testing.T) {
	pubOnly := filepath.Join(t.TempDir(), "public")
	if err := os.WriteFile(pubOnly, []byte("k-1:"+strings.Repeat("A", 43)+"="), 0o644); err != nil {
		t.Fatal(err)
	}
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		out    string
		modify func(e *plan.Export)
		want   []string
	}{
		{"missing key", t.TempDir(), func(e *plan.Export) { e.SignKey = "/nonexistent/key" }, []string{`export "cache"`, "/nonexistent/key"}},
		{"public key as secret", t.TempDir(), func(e *plan.Export) { e.SignKey = pubOnly }, []string{pubOnly, "is a public key"}},
		{"unwritable output", notDir, nil, []string{"binary cache folder", notDir, "not a directory"}},
		{"wrong NAR hash", t.TempDir(), func(e *plan.Export) { e.Systems[0].Closure[1].NarHash = store.Hash{} }, []string{store.Hash{}.String(), "changed since the plan was made"}},
		{"bad compression", t.TempDir(), func(e *plan.Export) { e.Compression = "gzip" }, []string{`unknown compression "gzip"`}},
		{"nothing to write", t.TempDir(), func(e *plan.Export) { e.Systems = nil }, []string{"no store items"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := cacheTestExport(t)
			if tt.modify != nil {
				tt.modify(e)
			}
			_, err := writeExport(&plan.Plan{}, e, tt.out, Options{})
			if err == nil {
				t.Fatal("the export succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
