package export

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/layercache"
	"github.com/storepack/storepack/plan"
)

// outputBytes writes e into a new folder with o and returns every file
// of the output by relative path, after checking the digests and sizes
// the export reported against the files.
func outputBytes(t *testing.T, e *plan.Export, o Options) map[string][]byte {
	t.Helper()
	out := t.TempDir()
	written, err := writeExport(&plan.Plan{}, e, out, o)
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
		cases = append(cases, tc{"docker-" + c.name, c, format.Format("docker"), "", "hello.tar"})
	}
	for _, c := range ociCases {
		cases = append(cases, tc{"oci-" + c.name(), c.dockerCase, format.Format("oci"), c.compression, "hello"})
	}
	cases = append(cases, tc{"oci-archive-gzip", dockerCases[0], format.Format("oci"), "gzip", "hello.tar"})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "store")
			e := buildImages(t, c.c, c.format, c.compression, root)
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

// TestCacheDescribe: describing a plan with a warm cache reads no store
// file and gives the digests writing gives.
func TestCacheDescribe(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	e := buildImages(t, dockerCases[1], format.Format("oci"), "gzip", root)
	cache, err := layercache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	plan := &plan.Plan{Exports: []plan.Export{*e}}
	d, err := Describe(plan, Options{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	want := d.Exports[0].Systems[0].Image.Manifest
	if err := os.Rename(root, root+".away"); err != nil {
		t.Fatal(err)
	}
	d, err = Describe(plan, Options{Cache: cache})
	if err != nil {
		t.Fatalf("describing from the cache read the store: %v", err)
	}
	if got := d.Exports[0].Systems[0].Image.Manifest; !bytes.Equal(want, got) {
		t.Errorf("manifest from the cache:\n%s\nwant\n%s", got, want)
	}
}
