package export

import (
	"context"
	"go/build"
	"io"
	"os"
	"path/filepath"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/export/image"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/gen"
	"github.com/storepack/storepack/internal/fixture"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
)

// benchLayer plans one layer holding a large store item (BENCH_TREE,
// default GOROOT, read in place) compressed as compression says.
func benchLayer(b *testing.B, compression format.Compression) image.Layer {
	tree := os.Getenv("BENCH_TREE")
	if tree == "" {
		tree = build.Default.GOROOT
	}
	if _, err := os.Stat(tree); err != nil {
		b.Skipf("no tree to write (%v): set BENCH_TREE to a large folder", err)
	}
	p := fixture.StorePath("/nix/store", "bench-tree")
	sys := &plan.System{Name: "x86_64-linux", Roots: []store.Path{p}, ClosureDigest: "sha256:00000000000000000000",
		Closure: []plan.Item{{Path: p, FSPath: tree, References: []store.Path{}}}}
	e := &spec.Export{Name: "bench", Format: format.Format("oci"), Symlinks: map[string]string{}, Image: spec.Image{MaxLayers: 1, Compression: compression}}
	img, err := gen.PlanImage(context.Background(), e, sys)
	if err != nil {
		b.Fatal(err)
	}
	sys.Image = img
	return image.Layers(&plan.Export{Name: "bench", Format: format.Format("oci"), Systems: []plan.System{*sys}})[0]
}

// BenchmarkOCILayerBlob writes one layer of a large tree as a blob file,
// as writeOCILayout does (diff id and blob digest computed on the way),
// for each compression (zstd:chunked and eStargz against zstd and gzip).
// Compare with `tar -c TREE | gzip -6 >/dev/null`.
func BenchmarkOCILayerBlob(b *testing.B) {
	for _, c := range image.Compressions {
		b.Run(string(c), func(b *testing.B) {
			l := benchLayer(b, c)
			dir := b.TempDir()
			for b.Loop() {
				var r image.Blob
				err := writeBlobFile(dir, func(w io.Writer) (d digest.Digest, err error) {
					r, err = l.WriteBlob(w, c, nil)
					return r.Digest, err
				})
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(r.Size)
				b.ReportMetric(float64(r.BlobSize)/float64(r.Size), "blob/tar")
				os.Remove(filepath.Join(dir, r.Digest.Encoded()))
			}
		})
	}
}
