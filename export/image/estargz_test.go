package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/containerd/stargz-snapshotter/estargz"
	kgzip "github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/compress"
	"github.com/storepack/storepack/spec"
)

// buildGzip is the compression estargz.Build was given before
// encodeEstargz: klauspost's gzip for the chunks, the estargz package's
// own for the TOC.
type buildGzip struct {
	*estargz.GzipCompressor
	*estargz.GzipDecompressor
}

func (buildGzip) Writer(w io.Writer) (estargz.WriteFlushCloser, error) {
	return kgzip.NewWriterLevel(w, compress.GzipLevel)
}

func (buildGzip) Reader(r io.Reader) (io.ReadCloser, error) { return kgzip.NewReader(r) }

// estargzBuild is the eStargz blob the estargz package's builder makes of
// tarball with encodeEstargz's settings, and its diff id, size and TOC
// digest.
func estargzBuild(t *testing.T, tarball []byte) ([]byte, estargzResult) {
	t.Helper()
	eb, err := estargz.Build(io.NewSectionReader(bytes.NewReader(tarball), 0, int64(len(tarball))),
		estargz.WithChunkSize(estargzChunkSize),
		estargz.WithCompression(buildGzip{estargz.NewGzipCompressorWithLevel(compress.GzipLevel), &estargz.GzipDecompressor{}}),
		estargz.WithParallelism(1))
	if err != nil {
		t.Fatal(err)
	}
	defer eb.Close()
	blob, err := io.ReadAll(eb)
	if err != nil {
		t.Fatal(err)
	}
	size, err := eb.UncompressedSize()
	if err != nil {
		t.Fatal(err)
	}
	return blob, estargzResult{diffID: eb.DiffID(), size: size, tocDigest: eb.TOCDigest()}
}

// estargzTestTar is a tar of every kind of entry eStargz knows, long
// names and links (PAX), owners' names, extended attributes, files of 0
// bytes, of one chunk, of exactly one chunk and of several, compressible
// and not, more small files than a job holds, and runs of headers longer
// than a job both right after a chunk and before any file.
func estargzTestTar(t *testing.T) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1700000000, 0)
	add := func(h *tar.Header, contents []byte) {
		if h.ModTime.IsZero() {
			h.ModTime = mtime
		}
		h.Size = int64(len(contents))
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(contents); err != nil {
			t.Fatal(err)
		}
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	text := func(n int) []byte {
		return []byte(strings.Repeat("the quick brown fox jumps over the lazy dog\n", n/44+1)[:n])
	}
	dir := func(name string) { add(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o555}, nil) }
	link := func(name, target string) {
		add(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}, nil)
	}
	dir("nix/")
	// Headers longer than a job before any file's contents.
	for i := range 2500 {
		link(fmt.Sprintf("nix/early-%04d", i), "target")
	}
	dir("nix/store/")
	dir("nix/store/x-item/")
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "nix/store/x-item/empty", Mode: 0o444}, nil)
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "nix/store/x-item/small", Mode: 0o555, Uid: 1000, Gid: 100, Uname: "alice", Gname: "users"}, text(300))
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "nix/store/x-item/same-owner", Mode: 0o444, Uid: 1000, Gid: 100, Uname: "alice", Gname: "users"}, text(10))
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "nix/store/x-item/" + strings.Repeat("long-name-", 20), Mode: 0o444,
		PAXRecords: map[string]string{"SCHILY.xattr.user.test": "value\x00bytes"}}, text(1000))
	add(&tar.Header{Typeflag: tar.TypeLink, Name: "nix/store/x-item/hard", Linkname: "nix/store/x-item/small"}, nil)
	link("nix/store/x-item/"+strings.Repeat("long-link-", 15), strings.Repeat("/target", 30))
	add(&tar.Header{Typeflag: tar.TypeChar, Name: "nix/store/x-item/null", Mode: 0o666, Devmajor: 1, Devminor: 3}, nil)
	add(&tar.Header{Typeflag: tar.TypeBlock, Name: "nix/store/x-item/sda", Mode: 0o660, Devmajor: 8}, nil)
	add(&tar.Header{Typeflag: tar.TypeFifo, Name: "nix/store/x-item/fifo", Mode: 0o600}, nil)
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "nix/store/x-item/one-chunk", Mode: 0o444}, random(estargzChunkSize))
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "nix/store/x-item/chunks", Mode: 0o555}, append(random(3<<20), text(5<<20+17)...))
	// Headers longer than a job right after a chunk.
	for i := range 2500 {
		link(fmt.Sprintf("nix/store/x-item/late-%04d", i), "chunks")
	}
	for i := range 1500 {
		add(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("nix/store/x-item/f%04d", i), Mode: 0o444, ModTime: mtime.Add(time.Duration(i) * time.Second)},
			append(text(i%7*300), random(i%5*200)...))
	}
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "nix/store/x-item/last", Mode: 0o444}, text(1<<20+5))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// lazyTestTars are the tars the lazy encodings are checked on: one of
// every kind of entry, and the layers of an image.
func lazyTestTars(t *testing.T) map[string][]byte {
	t.Helper()
	tars := map[string][]byte{"every kind": estargzTestTar(t)}
	for _, l := range Layers(helloExport(t, &spec.Export{Image: spec.Image{MaxLayers: 3}})) {
		var buf bytes.Buffer
		if _, _, err := l.WriteTar(&buf, nil); err != nil {
			t.Fatal(err)
		}
		tars["layer "+l.Plan.ID] = buf.Bytes()
	}
	return tars
}

// TestEstargzAsBuild checks that encodeEstargz writes the bytes the
// estargz package's builder writes with the same settings, with the
// same diff id, size and TOC digest, whatever GOMAXPROCS, for the
// layers of an image and for a tar of every kind of entry; and that the
// estargz verifier passes on them.
func TestEstargzAsBuild(t *testing.T) {
	tars := lazyTestTars(t)
	for name, tarball := range tars {
		t.Run(name, func(t *testing.T) {
			want, wantRes := estargzBuild(t, tarball)
			for _, procs := range []int{1, 2, 4} {
				old := runtime.GOMAXPROCS(procs)
				var got bytes.Buffer
				res, err := encodeEstargz(&got, bytes.NewReader(tarball))
				runtime.GOMAXPROCS(old)
				if err != nil {
					t.Fatal(err)
				}
				if res != wantRes {
					t.Errorf("GOMAXPROCS %d: %+v, Build gives %+v", procs, res, wantRes)
				}
				if !bytes.Equal(got.Bytes(), want) {
					t.Fatalf("GOMAXPROCS %d: %d bytes (%s), Build writes %d (%s)", procs, got.Len(), digest.FromBytes(got.Bytes()), len(want), digest.FromBytes(want))
				}
			}
			annotations := map[string]string{estargz.TOCJSONDigestAnnotation: wantRes.tocDigest.String()}
			if err := VerifyLazy(bytes.NewReader(want), int64(len(want)), format.Estargz, annotations); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestEstargzErrors checks that a broken tar is an error that names the
// entry, and that the slots of the jobs in flight are all given back.
func TestEstargzErrors(t *testing.T) {
	tarball := estargzTestTar(t)
	for _, cut := range []int{100, len(tarball) / 3, len(tarball) - 2000} {
		_, err := encodeEstargz(io.Discard, bytes.NewReader(tarball[:cut]))
		if err == nil {
			t.Errorf("a tar cut at %d: no error", cut)
		}
		if n := len(frameSlots()); n != 0 {
			t.Errorf("a tar cut at %d: %d slots still taken", cut, n)
		}
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for range 2 {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "twice/", Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	if _, err := encodeEstargz(io.Discard, &buf); err == nil || !strings.Contains(err.Error(), "twice/") {
		t.Errorf("a name twice: %v", err)
	}
}
