package export

import (
	"go/build"
	"io"
	"os"
	"path/filepath"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/gen"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
)

// benchLayer plans one layer holding a large store item (BENCH_TREE,
// default GOROOT, read in place) compressed as compression says.
func benchLayer(b *testing.B, compression format.Compression) uniqueLayer {
	tree := os.Getenv("BENCH_TREE")
	if tree == "" {
		tree = build.Default.GOROOT
	}
	if _, err := os.Stat(tree); err != nil {
		b.Skipf("no tree to write (%v): set BENCH_TREE to a large folder", err)
	}
	p := fakeStorePath("/nix/store", "bench-tree")
	sys := &gen.System{Name: "x86_64-linux", Roots: []store.Path{p}, ClosureDigest: "sha256:00000000000000000000",
		Closure: []gen.Item{{Path: p, FSPath: tree, NarHash: "sha256:x", References: []store.Path{}}}}
	e := &spec.Export{Name: "bench", Format: format.OCI, Image: spec.Image{Symlinks: map[string]string{}, MaxLayers: 1, Compression: compression}}
	img, err := gen.PlanImage(e, sys, fixedEnv(""))
	if err != nil {
		b.Fatal(err)
	}
	return uniqueLayer{layer: &img.Layers[0], mtime: img.MTime, fsPaths: closureFS(sys), narHashes: map[store.Path]string{p: "sha256:x"}}
}

// BenchmarkOCILayerBlob writes one layer of a large tree as a blob file,
// as WriteOCILayout does (diff id and blob digest computed on the way),
// for each compression. Compare with `tar -c TREE | gzip -6 >/dev/null`.
func BenchmarkOCILayerBlob(b *testing.B) {
	for _, c := range []format.Compression{format.None, format.Gzip, format.Zstd} {
		b.Run(string(c), func(b *testing.B) {
			ul := benchLayer(b, c)
			dir := b.TempDir()
			for b.Loop() {
				var r blobResult
				err := writeBlobFile(dir, func(w io.Writer) (d digest.Digest, err error) {
					r, err = writeLayerBlob(w, ul, c)
					return r.digest, err
				})
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(r.size)
				b.ReportMetric(float64(r.blobSize)/float64(r.size), "blob/tar")
				os.Remove(filepath.Join(dir, r.digest.Encoded()))
			}
		})
	}
}
