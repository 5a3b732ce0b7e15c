package export

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/gen"
	"github.com/storepack/storepack/layercache"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
)

// outputBytes writes e into a new folder with o and returns every file
// of the output by relative path, after checking the digests and sizes
// the export reported against the files.
func outputBytes(t *testing.T, e *gen.Export, o Options) map[string][]byte {
	t.Helper()
	out := t.TempDir()
	written, err := writeExport(e, out, o)
	if err != nil {
		t.Fatal(err)
	}
	files := layoutFiles(t, out)
	delete(files, OutLockFile)
	for _, f := range written {
		sum := sha256.Sum256(files[f.Path])
		if hex.EncodeToString(sum[:]) != f.SHA256 || int64(len(files[f.Path])) != f.Size {
			t.Errorf("%s: reported sha256 %s, %d bytes; the file has %x, %d bytes", f.Path, f.SHA256, f.Size, sum, len(files[f.Path]))
		}
	}
	if len(files) == 0 {
		t.Fatal("the export wrote nothing")
	}
	return files
}

// TestCacheSameBytes exports each docker and oci case without a cache,
// with an empty one (cold), with the filled one (warm), with the store
// moved away (warm: nothing is read from it), and with a damaged cache
// (truncated blobs, garbage records): every output is byte-identical.
func TestCacheSameBytes(t *testing.T) {
	type tc struct {
		name        string
		c           dockerCase
		format      format.Format
		compression format.Compression
		output      string
	}
	var cases []tc
	for _, c := range dockerCases {
		cases = append(cases, tc{"docker-" + c.name, c, format.Docker, "", "hello.tar"})
	}
	for _, c := range ociCases {
		cases = append(cases, tc{"oci-" + c.name(), c.dockerCase, format.OCI, c.compression, "hello"})
	}
	cases = append(cases, tc{"oci-archive-gzip", dockerCases[0], format.OCI, "gzip", "hello.tar"})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "store")
			e := buildImages(t, c.c, c.format, c.compression, root, fixedEnv(""))
			e.Output = c.output
			want := outputBytes(t, e, Options{})
			cache, err := layercache.Open(filepath.Join(t.TempDir(), "cache"))
			if err != nil {
				t.Fatal(err)
			}
			check := func(stage string) {
				t.Helper()
				got := outputBytes(t, e, Options{Cache: cache})
				if !sameFiles(want, got) {
					t.Errorf("%s: the output differs from the uncached one", stage)
				}
			}
			check("cold cache")
			blobs, _ := filepath.Glob(filepath.Join(cache.Dir(), "blobs", "sha256", "*"))
			records, _ := filepath.Glob(filepath.Join(cache.Dir(), "layers", "v1", "*", "*.json"))
			if len(records) == 0 || len(blobs) != len(records) {
				t.Fatalf("cold export kept %d records and %d blobs", len(records), len(blobs))
			}
			check("warm cache")
			if err := os.Rename(root, root+".away"); err != nil {
				t.Fatal(err)
			}
			check("warm cache, store moved away")
			if err := os.Rename(root+".away", root); err != nil {
				t.Fatal(err)
			}
			// Damage: a truncated blob, a record of garbage.
			if err := os.Chmod(blobs[0], 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(blobs[0], 10); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(records[len(records)-1], []byte("{not json"), 0o644); err != nil {
				t.Fatal(err)
			}
			check("damaged cache")
			check("repaired cache")
			if fi, err := os.Stat(blobs[0]); err != nil || fi.Size() == 10 {
				t.Errorf("truncated blob not rebuilt: %v", err)
			}
		})
	}
}

// TestCacheKeyCoversInputs checks that everything a layer's bytes depend
// on changes its cache key.
func TestCacheKeyCoversInputs(t *testing.T) {
	f := writeStore(t, "/nix/store", "", helloItems())
	e := &spec.Export{Name: "hello", Format: format.Docker, Image: spec.Image{MaxLayers: 1}}
	sys := f.system(t, "x86_64-linux", e, fixedEnv(""), "hello-2.12")
	base := uniqueLayers(&gen.Export{Systems: []gen.System{*sys}})[0]
	key := func(ul uniqueLayer, compression format.Compression) layercache.Key {
		k, ok := cacheKey(ul, compression)
		if !ok {
			t.Fatal("no key")
		}
		return k
	}
	want := key(base, format.None)
	otherHash := base
	otherHash.narHashes = map[store.Path]string{}
	for p, h := range base.narHashes {
		otherHash.narHashes[p] = h
	}
	p0 := base.layer.Items[0]
	otherHash.narHashes[p0] = strings.Replace(base.narHashes[p0], "sha256:", "sha256:0", 1)
	otherMTime := base
	otherMTime.mtime++
	otherEntries := base
	l := *base.layer
	l.Entries = append([]gen.Entry{}, l.Entries...)
	l.Entries[0].Mode = 0o700
	otherEntries.layer = &l
	tests := []struct {
		name string
		ul   uniqueLayer
		c    format.Compression
	}{
		{"NAR hash", otherHash, format.None},
		{"mtime", otherMTime, format.None},
		{"entries", otherEntries, format.None},
		{"compression", base, format.Gzip},
	}
	for _, tt := range tests {
		if key(tt.ul, tt.c) == want {
			t.Errorf("changing the %s keeps the key", tt.name)
		}
	}
	noHash := base
	noHash.narHashes = nil
	if _, ok := cacheKey(noHash, format.None); ok {
		t.Error("a layer whose items have no NAR hash got a key")
	}
}

// TestCacheDigestLayers: planning with a warm cache reads no store file
// and gives the digests writing gives.
func TestCacheDigestLayers(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	e := buildImages(t, dockerCases[1], format.OCI, "gzip", root, fixedEnv(""))
	cache, err := layercache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := DigestLayersWith(e, Options{Cache: cache}); err != nil {
		t.Fatal(err)
	}
	want, _ := e.Systems[0].Image.ManifestJSON()
	if err := os.Rename(root, root+".away"); err != nil {
		t.Fatal(err)
	}
	e2 := buildImagesNoFS(e)
	if err := DigestLayersWith(e2, Options{Cache: cache}); err != nil {
		t.Fatalf("planning from the cache read the store: %v", err)
	}
	got, _ := e2.Systems[0].Image.ManifestJSON()
	if !bytes.Equal(want, got) {
		t.Errorf("manifest from the cache:\n%s\nwant\n%s", got, want)
	}
}

// buildImagesNoFS copies e's plan with its digests cleared.
func buildImagesNoFS(e *gen.Export) *gen.Export {
	out := *e
	out.Systems = append([]gen.System{}, e.Systems...)
	for i := range out.Systems {
		img := *out.Systems[i].Image
		img.Layers = append([]gen.Layer{}, img.Layers...)
		for j := range img.Layers {
			img.Layers[j].DiffID, img.Layers[j].Digest = "", ""
		}
		out.Systems[i].Image = &img
	}
	return &out
}
