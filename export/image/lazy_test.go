package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/compress"
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

// chunkedSerial is the zstd:chunked blob of the tar r as containers/storage
// writes it, one frame after another with one encoder (zstd's settings,
// with the history zstd gives an encoder by default), and its annotations:
// what encodeChunked, which compresses the frames in parallel, must write.
func chunkedSerial(t *testing.T, tarball []byte) ([]byte, map[string]string) {
	t.Helper()
	var blob bytes.Buffer
	enc, err := zstd.NewWriter(&blob, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(compress.ZstdWindow), zstd.WithEncoderCRC(true), zstd.WithZeroFrames(true))
	if err != nil {
		t.Fatal(err)
	}
	restart := func() int64 {
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
		enc.Reset(&blob)
		return int64(blob.Len())
	}
	r := bytes.NewReader(tarball)
	tr := tar.NewReader(&teeReader{r: r, w: enc})
	entries := []*chunkedEntry{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		e, err := newChunkedEntry(hdr)
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			e.Offset = restart()
			contents, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			e.EndOffset = restart()
			e.Digest = digest.FromBytes(contents).String()
		}
		entries = append(entries, e)
	}
	if _, err := io.Copy(io.Discard, &teeReader{r: r, w: enc}); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	toc, err := json.Marshal(chunkedTOC{Version: 1, Entries: entries})
	if err != nil {
		t.Fatal(err)
	}
	var ztoc bytes.Buffer
	enc.Reset(&ztoc)
	enc.Write(toc)
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	offset := blob.Len() + 8
	if err := writeSkippable(&blob, ztoc.Bytes()); err != nil {
		t.Fatal(err)
	}
	footer := make([]byte, chunkedFooterSize)
	binary.LittleEndian.PutUint64(footer, uint64(offset))
	binary.LittleEndian.PutUint64(footer[8:], uint64(ztoc.Len()))
	binary.LittleEndian.PutUint64(footer[16:], uint64(len(toc)))
	binary.LittleEndian.PutUint64(footer[24:], chunkedTOCType)
	copy(footer[32:], chunkedMagic)
	if err := writeSkippable(&blob, footer); err != nil {
		t.Fatal(err)
	}
	position := fmt.Sprintf("%d:%d:%d:%d", offset, ztoc.Len(), len(toc), chunkedTOCType)
	checksum := digest.FromBytes(ztoc.Bytes()).String()
	return blob.Bytes(), map[string]string{ChunkedChecksumAnnotation: checksum, ChunkedPositionAnnotation: position,
		ChunkedChecksumAnnotationNew: checksum, ChunkedPositionAnnotationNew: position}
}

// TestChunkedAsSerial checks that encodeChunked writes the bytes and
// annotations of frames written one after another, whatever GOMAXPROCS,
// for a tar of every kind of entry (files of one frame and of several
// jobs, runs of headers longer than a job) and the layers of an image.
func TestChunkedAsSerial(t *testing.T) {
	tars := lazyTestTars(t)
	for name, tarball := range tars {
		t.Run(name, func(t *testing.T) {
			want, wantAnn := chunkedSerial(t, tarball)
			for _, procs := range []int{1, 2, 4} {
				old := runtime.GOMAXPROCS(procs)
				var got bytes.Buffer
				ann, err := encodeChunked(&got, bytes.NewReader(tarball))
				runtime.GOMAXPROCS(old)
				if err != nil {
					t.Fatal(err)
				}
				if !maps.Equal(ann, wantAnn) {
					t.Errorf("GOMAXPROCS %d: annotations %v, serially %v", procs, ann, wantAnn)
				}
				if !bytes.Equal(got.Bytes(), want) {
					t.Fatalf("GOMAXPROCS %d: %d bytes (%s), serially %d (%s)", procs, got.Len(), digest.FromBytes(got.Bytes()), len(want), digest.FromBytes(want))
				}
			}
			if err := VerifyLazy(bytes.NewReader(want), int64(len(want)), format.ZstdChunked, wantAnn); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestLazyConcurrent checks that many blobs written at once, more than
// the framers' slots, each with a large file, all come out as written
// alone, and that the slots and the large frames' slot are all given
// back.
func TestLazyConcurrent(t *testing.T) {
	tarball := estargzTestTar(t)
	wantChunked, _ := chunkedSerial(t, tarball)
	wantEstargz, _ := estargzBuild(t, tarball)
	var wg sync.WaitGroup
	errs := make(chan error, 2*cap(frameSlots()))
	for i := range cap(frameSlots()) {
		for _, c := range []format.Compression{format.ZstdChunked, format.Estargz} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var got bytes.Buffer
				var err error
				want := wantEstargz
				if c == format.ZstdChunked {
					_, err = encodeChunked(&got, bytes.NewReader(tarball))
					want = wantChunked
				} else {
					_, err = encodeEstargz(&got, bytes.NewReader(tarball))
				}
				if err == nil && !bytes.Equal(got.Bytes(), want) {
					err = fmt.Errorf("%s, blob %d: other bytes than written alone", c, i)
				}
				errs <- err
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n, l := len(frameSlots()), len(zstdFrames().large); n != 0 || l != 0 {
		t.Errorf("%d slots and %d large slots still taken", n, l)
	}
}

// TestChunkedErrors checks that a broken tar is an error, and that the
// slots of the jobs in flight and the large frames' slot (the tar is cut
// in a large file's contents) are given back.
func TestChunkedErrors(t *testing.T) {
	tarball := estargzTestTar(t)
	for _, cut := range []int{100, len(tarball) / 3, len(tarball) / 2, len(tarball) - 2000} {
		_, err := encodeChunked(io.Discard, bytes.NewReader(tarball[:cut]))
		if err == nil {
			t.Errorf("a tar cut at %d: no error", cut)
		}
		if n, l := len(frameSlots()), len(zstdFrames().large); n != 0 || l != 0 {
			t.Errorf("a tar cut at %d: %d slots and %d large slots still taken", cut, n, l)
		}
	}
}
