package image

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"maps"
	"runtime"
	"strconv"
	"testing"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/layercache"
	"github.com/storepack/storepack/spec"
)

// decodeLazy is the whole blob b of encoding c decompressed: the tar a
// client that pulls it all unpacks.
func decodeLazy(t *testing.T, b []byte, c format.Compression) []byte {
	t.Helper()
	var r io.Reader
	switch c {
	case format.ZstdChunked:
		d, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		r = d
	case format.Estargz:
		g, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r = g
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: decompressing the blob: %v", c, err)
	}
	return out
}

// TestLazyBlobs checks the zstd:chunked and eStargz blobs of every layer:
// the same bytes twice and with GOMAXPROCS 1 and 2; digests and sizes as
// reported; the blob decompresses to the diff id; the annotations; and the
// verifier (for eStargz the estargz package's own) passes.
func TestLazyBlobs(t *testing.T) {
	e := helloExport(t, &spec.Export{Image: spec.Image{MaxLayers: 3}})
	tests := []struct {
		c           format.Compression
		annotations []string
	}{
		{format.ZstdChunked, []string{ChunkedChecksumAnnotation, ChunkedPositionAnnotation, ChunkedChecksumAnnotationNew, ChunkedPositionAnnotationNew}},
		{format.Estargz, []string{estargz.TOCJSONDigestAnnotation, estargz.StoreUncompressedSizeAnnotation}},
	}
	for _, tt := range tests {
		t.Run(string(tt.c), func(t *testing.T) {
			for _, l := range Layers(e) {
				var tarBuf bytes.Buffer
				id, n, err := l.WriteTar(&tarBuf, nil)
				if err != nil {
					t.Fatal(err)
				}
				var runs [][]byte
				var blobs []Blob
				for _, procs := range []int{1, 2, 2} {
					old := runtime.GOMAXPROCS(procs)
					var buf bytes.Buffer
					b, err := l.WriteBlob(&buf, tt.c, nil)
					runtime.GOMAXPROCS(old)
					if err != nil {
						t.Fatal(err)
					}
					runs, blobs = append(runs, buf.Bytes()), append(blobs, b)
				}
				for i := 1; i < len(runs); i++ {
					if !bytes.Equal(runs[i], runs[0]) || !maps.Equal(blobs[i].Annotations, blobs[0].Annotations) {
						t.Errorf("layer %s: run %d gave other bytes or annotations than run 0", l.Plan.ID, i)
					}
				}
				blob, b := runs[0], blobs[0]
				if b.Digest != digest.FromBytes(blob) || b.BlobSize != int64(len(blob)) {
					t.Errorf("layer %s: reported blob %s %d, the bytes are %s %d", l.Plan.ID, b.Digest, b.BlobSize, digest.FromBytes(blob), len(blob))
				}
				plain := decodeLazy(t, blob, tt.c)
				if b.DiffID != digest.FromBytes(plain) || b.Size != int64(len(plain)) {
					t.Errorf("layer %s: diff id %s size %d, the decompressed blob is %s %d", l.Plan.ID, b.DiffID, b.Size, digest.FromBytes(plain), len(plain))
				}
				if tt.c == format.ZstdChunked && (b.DiffID != id || b.Size != n) {
					t.Errorf("layer %s: zstd:chunked diff id %s, the tar's is %s", l.Plan.ID, b.DiffID, id)
				}
				if tt.c == format.Estargz && b.Annotations[estargz.StoreUncompressedSizeAnnotation] != strconv.FormatInt(b.Size, 10) {
					t.Errorf("layer %s: uncompressed size annotation %q, size %d", l.Plan.ID, b.Annotations[estargz.StoreUncompressedSizeAnnotation], b.Size)
				}
				for _, a := range tt.annotations {
					if b.Annotations[a] == "" {
						t.Errorf("layer %s: no annotation %s in %v", l.Plan.ID, a, b.Annotations)
					}
				}
				if err := VerifyLazy(bytes.NewReader(blob), int64(len(blob)), tt.c, b.Annotations); err != nil {
					t.Errorf("layer %s: %v", l.Plan.ID, err)
				}
			}
		})
	}
}

// TestChunkedFooter checks the zstd:chunked footer podman 4.3 reads when
// the annotations are missing: the last skippable frame holds the TOC's
// offset, lengths, type and the magic, as the position annotation says.
func TestChunkedFooter(t *testing.T) {
	e := helloExport(t, &spec.Export{Image: spec.Image{MaxLayers: 1}})
	var buf bytes.Buffer
	b, err := Layers(e)[0].WriteBlob(&buf, format.ZstdChunked, nil)
	if err != nil {
		t.Fatal(err)
	}
	blob := buf.Bytes()
	f := blob[len(blob)-8-chunkedFooterSize:]
	if !bytes.Equal(f[:4], skippableFrameMagic) || binary.LittleEndian.Uint32(f[4:]) != chunkedFooterSize {
		t.Fatalf("the blob does not end in a %d-byte skippable frame: % x", chunkedFooterSize, f[:8])
	}
	f = f[8:]
	got := strconv.FormatUint(binary.LittleEndian.Uint64(f), 10) + ":" + strconv.FormatUint(binary.LittleEndian.Uint64(f[8:]), 10) + ":" +
		strconv.FormatUint(binary.LittleEndian.Uint64(f[16:]), 10) + ":" + strconv.FormatUint(binary.LittleEndian.Uint64(f[24:]), 10)
	if got != b.Annotations[ChunkedPositionAnnotation] || !bytes.Equal(f[32:], chunkedMagic) {
		t.Errorf("footer %s % x, annotation %s", got, f[32:], b.Annotations[ChunkedPositionAnnotation])
	}
}

// TestLazyCached checks that a cached layer's record gives back its
// blob's annotations, so that cached layers give the same manifests, and
// that each encoding has a cache key of its own.
func TestLazyCached(t *testing.T) {
	e := helloExport(t, &spec.Export{Image: spec.Image{MaxLayers: 1}})
	l := Layers(e)[0]
	c, err := layercache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	keys := map[layercache.Key]format.Compression{}
	for _, comp := range Compressions {
		k := key(l, comp)
		if o, ok := keys[k]; ok {
			t.Errorf("%s and %s share a cache key", o, comp)
		}
		keys[k] = comp
	}
	for _, comp := range []format.Compression{format.ZstdChunked, format.Estargz} {
		b, err := l.WriteBlob(io.Discard, comp, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, k, _ := Lookup(c, l, comp, false)
		Remember(c, k, b)
		hit, _, ok := Lookup(c, l, comp, false)
		if !ok || hit.Blob.Digest != b.Digest || !maps.Equal(hit.Blob.Annotations, b.Annotations) || len(b.Annotations) == 0 {
			t.Errorf("%s: cached %+v (found %v), made %+v", comp, hit.Blob, ok, b)
		}
	}
}
