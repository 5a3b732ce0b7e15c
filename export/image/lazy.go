package image

// Layers for lazy pulls: two encodings of a layer's tar that let a client
// fetch only the files it lacks, by range, from a table of contents.
//
//   - zstd:chunked, as containers/storage writes it (podman's partial
//     pulls): the tar in zstd frames, each regular file's payload in frames
//     of its own, so that the blob decompresses to the tar, byte for byte;
//     then the table of contents (JSON, zstd) in a skippable frame, and a
//     40-byte footer in another (its offset, lengths, type 1 and the magic
//     "GnUlInUx"). The manifest descriptor carries the TOC's position
//     ("offset:length:uncompressed length:1") and the sha256 of its
//     compressed bytes, under podman 4.3's names and the later ones. The
//     diff id is the tar's. The frames are compressed in parallel by a
//     framer (frames.go), as those of eStargz, and are the bytes of
//     frames written one after another (TestChunkedAsSerial).
//   - eStargz, the bytes the estargz package's builder (estargz.Build)
//     writes with fixed settings: no prioritized files, 4 MiB chunks,
//     klauspost's gzip at level 6 for the chunks, one worker (the worker
//     count cuts the stream): a gzip member per file chunk, the landmark
//     file, the TOC (stargz.index.json) and the footer. They are written
//     in one pass by encodeEstargz (estargz.go), the members compressed
//     in parallel. The tar's headers, mtimes included, are kept as they
//     are. The blob decompresses to a tar with the landmark and the TOC
//     added: its diff id and size are that tar's. The descriptor carries
//     the TOC's digest and that size.
//
// Both give the same bytes on every run, whatever GOMAXPROCS.

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/export/tree"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/compress"
	"github.com/storepack/storepack/internal/countw"
	"github.com/storepack/storepack/store/nar"
)

// The manifest annotations of zstd:chunked layers: podman 4.3
// (containers/storage 1.43) reads the first two, later releases the
// io.github ones.
const (
	ChunkedChecksumAnnotation    = "io.containers.zstd-chunked.manifest-checksum"
	ChunkedPositionAnnotation    = "io.containers.zstd-chunked.manifest-position"
	ChunkedChecksumAnnotationNew = "io.github.containers.zstd-chunked.manifest-checksum"
	ChunkedPositionAnnotationNew = "io.github.containers.zstd-chunked.manifest-position"
)

// chunkedTOCType is the TOC's type in the footer and the position
// annotation: a CRFS-like JSON table (containers/storage's ManifestTypeCRFS).
const chunkedTOCType = 1

// chunkedFooterSize is the length of the footer's data (podman 4.3 reads
// exactly this).
const chunkedFooterSize = 40

// chunkedMagic ends the footer.
var chunkedMagic = []byte{0x47, 0x6e, 0x55, 0x6c, 0x49, 0x6e, 0x55, 0x78}

// skippableFrameMagic starts a zstd skippable frame, which decoders skip.
var skippableFrameMagic = []byte{0x50, 0x2a, 0x4d, 0x18}

// estargzChunkSize is the size of eStargz's file chunks: a file larger
// is several gzip members, each fetched alone.
const estargzChunkSize = 4 << 20

// lazySettings names everything a lazy encoding's bytes depend on, for
// the layer cache's keys; "" for the other compressions.
func lazySettings(c format.Compression) string {
	switch c {
	case format.ZstdChunked:
		return fmt.Sprintf("zstd:chunked 1 (a frame per file, TOC v1 type %d, %d-byte footer) ", chunkedTOCType, chunkedFooterSize) + compress.Settings(format.Zstd, compress.Options{})
	case format.Estargz:
		return fmt.Sprintf("estargz 1 (chunks %d, gzip level %d, one worker, no prioritized files) stargz-snapshotter/estargz %s chunks klauspost/compress %s, TOC go compress/gzip",
			estargzChunkSize, compress.GzipLevel, compress.ModuleVersion("github.com/containerd/stargz-snapshotter/estargz"), compress.ModuleVersion("github.com/klauspost/compress"))
	}
	return ""
}

// writeLazy writes l's blob encoded as c (zstd:chunked or eStargz) to w.
func (l Layer) writeLazy(w io.Writer, c format.Compression, count nar.Counter) (Blob, error) {
	var (
		b   Blob
		err error
	)
	switch c {
	case format.ZstdChunked:
		b, err = l.writeChunked(w, count)
	case format.Estargz:
		b, err = l.writeEstargz(w, count)
	default:
		err = fmt.Errorf("unknown lazy layer encoding %q", c)
	}
	if err != nil {
		return Blob{}, fmt.Errorf("layer %s: %s: %w", l.Plan.ID, c, err)
	}
	return b, nil
}

// writeChunked writes l's zstd:chunked blob to w: the tar goes through a
// pipe to the encoder, which cuts its frames at the tar's files.
func (l Layer) writeChunked(w io.Writer, count nar.Counter) (Blob, error) {
	dw := newDigestWriter(w)
	var id digest.Digest
	var n int64
	ann, err := pipeEncode(func(pw io.Writer) (err error) {
		id, n, err = l.WriteTar(pw, count)
		return err
	}, func(pr io.Reader) (map[string]string, error) { return encodeChunked(dw, pr) })
	if err != nil {
		return Blob{}, err
	}
	return Blob{DiffID: id, Size: n, Digest: dw.digest(), BlobSize: dw.n, Annotations: ann}, nil
}

// pipeEncode runs encode on a goroutine of its own over a pipe that write
// fills: a layer's tar going to its lazy encoder. The tar's error comes
// first, then the encoder's.
func pipeEncode[T any](write func(io.Writer) error, encode func(io.Reader) (T, error)) (T, error) {
	pr, pw := io.Pipe()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := encode(pr)
		// Unblock the tar's writer whatever happened.
		pr.CloseWithError(errOr(err, io.ErrClosedPipe))
		done <- result{v, err}
	}()
	err := write(pw)
	pw.CloseWithError(errOr(err, nil))
	r := <-done
	if err != nil {
		var zero T
		return zero, err
	}
	return r.v, r.err
}

func errOr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// chunkedEntry is an entry of a zstd:chunked TOC, as containers/storage
// reads it (its FileMetadata; the fields storepack's tars use).
type chunkedEntry struct {
	Type     string            `json:"type"`
	Name     string            `json:"name"`
	Linkname string            `json:"linkName,omitempty"`
	Mode     int64             `json:"mode,omitempty"`
	Size     int64             `json:"size,omitempty"`
	UID      int               `json:"uid,omitempty"`
	GID      int               `json:"gid,omitempty"`
	ModTime  *time.Time        `json:"modtime,omitempty"`
	Devmajor int64             `json:"devMajor,omitempty"`
	Devminor int64             `json:"devMinor,omitempty"`
	Xattrs   map[string]string `json:"xattrs,omitempty"`
	// Digest is the sha256 of a regular file's contents; Offset and
	// EndOffset are where its frames start and end in the blob.
	Digest    string `json:"digest,omitempty"`
	Offset    int64  `json:"offset,omitempty"`
	EndOffset int64  `json:"endOffset,omitempty"`
}

// chunkedTOC is a zstd:chunked table of contents.
type chunkedTOC struct {
	Version int             `json:"version"`
	Entries []*chunkedEntry `json:"entries"`
}

// chunkedTypes are the TOC's names of the tar entry types.
var chunkedTypes = map[byte]string{
	tar.TypeReg:     "reg",
	tar.TypeLink:    "hardlink",
	tar.TypeChar:    "char",
	tar.TypeBlock:   "block",
	tar.TypeDir:     "dir",
	tar.TypeFifo:    "fifo",
	tar.TypeSymlink: "symlink",
}

// zstdFrames are zstd:chunked's frames (compress.NewZstdFrames); a frame
// of a block or more (zstd's largest block, 128 KiB) makes its encoder
// hold the window's history.
var zstdFrames = sync.OnceValue(func() *frameCodec {
	return newFrameCodec(128<<10, func() (frameEncoder, error) {
		z := &zstdFrame{}
		enc, err := compress.NewZstdFrames(&z.out)
		z.enc = enc
		return z, err
	})
})

type zstdFrame struct {
	enc *zstd.Encoder
	out switchWriter
}

func (z *zstdFrame) begin(w io.Writer)           { z.out.w = w; z.enc.Reset(&z.out) }
func (z *zstdFrame) output(w io.Writer)          { z.out.w = w }
func (z *zstdFrame) Write(p []byte) (int, error) { return z.enc.Write(p) }
func (z *zstdFrame) end(bool) error              { return z.enc.Close() }

// newChunkedEntry is the TOC entry of the tar entry hdr, but for where
// its contents are in the blob (Offset, EndOffset, the digests).
func newChunkedEntry(hdr *tar.Header) (*chunkedEntry, error) {
	typ, ok := chunkedTypes[hdr.Typeflag]
	if !ok {
		return nil, fmt.Errorf("%s: tar entry type %q has no zstd:chunked type", hdr.Name, hdr.Typeflag)
	}
	mtime := hdr.ModTime.UTC()
	e := &chunkedEntry{Type: typ, Name: hdr.Name, Linkname: hdr.Linkname, Mode: hdr.Mode, Size: hdr.Size,
		UID: hdr.Uid, GID: hdr.Gid, ModTime: &mtime, Devmajor: hdr.Devmajor, Devminor: hdr.Devminor}
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if e.Xattrs == nil {
				e.Xattrs = map[string]string{}
			}
			e.Xattrs[name] = base64.StdEncoding.EncodeToString([]byte(v))
		}
	}
	return e, nil
}

// chunkedFile is the TOC entry of a regular file, whose contents are a
// frame of their own.
type chunkedFile chunkedEntry

func (c *chunkedFile) framed(start, end int64, d digest.Digest) {
	c.Offset, c.EndOffset, c.Digest = start, end, d.String()
}

// encodeChunked reads a tar from r and writes it to w as a zstd:chunked
// blob: every byte of the tar in order, in frames cut before and after
// each regular file's contents (compressed in parallel, frames.go), then
// the TOC and the footer. It returns the manifest annotations.
func encodeChunked(w io.Writer, r io.Reader) (map[string]string, error) {
	f := newFramer(zstdFrames(), w, nil)
	var entries []*chunkedEntry
	err := chunkedFrames(f, r, &entries)
	written, ferr := f.close(err != nil)
	if err == nil {
		err = ferr
	}
	if err != nil {
		return nil, err
	}
	// The TOC's JSON, streamed into its frame: never in memory whole
	// (4 MB for the 15,000 files of GOROOT). Its entries take at least
	// their names and 20 bytes.
	var least int64
	for _, e := range entries {
		least += int64(len(e.Name)) + 20
	}
	var ztoc bytes.Buffer
	tocLen, err := zstdFrames().compress(&ztoc, least >= zstdFrames().largeFrom, func(w io.Writer) error { return writeChunkedTOC(w, entries) })
	// Kept from one layer to the next, the large frames' encoder held
	// its history more through an export of many layers, whose TOCs are its
	// only large frames: the collector ran without end.
	zstdFrames().letGoLarge()
	if err != nil {
		return nil, err
	}
	cw := &countw.Writer{W: w, N: written}
	// The TOC's data starts after its frame's 8-byte header.
	offset := cw.N + 8
	if err := writeSkippable(cw, ztoc.Bytes()); err != nil {
		return nil, err
	}
	footer := make([]byte, chunkedFooterSize)
	binary.LittleEndian.PutUint64(footer, uint64(offset))
	binary.LittleEndian.PutUint64(footer[8:], uint64(ztoc.Len()))
	binary.LittleEndian.PutUint64(footer[16:], uint64(tocLen))
	binary.LittleEndian.PutUint64(footer[24:], chunkedTOCType)
	copy(footer[32:], chunkedMagic)
	if err := writeSkippable(cw, footer); err != nil {
		return nil, err
	}
	position := fmt.Sprintf("%d:%d:%d:%d", offset, ztoc.Len(), tocLen, chunkedTOCType)
	checksum := digest.FromBytes(ztoc.Bytes()).String()
	return map[string]string{
		ChunkedChecksumAnnotation:    checksum,
		ChunkedPositionAnnotation:    position,
		ChunkedChecksumAnnotationNew: checksum,
		ChunkedPositionAnnotationNew: position,
	}, nil
}

// writeChunkedTOC writes the TOC of entries, as json.Marshal of a
// chunkedTOC writes it, one entry at a time.
func writeChunkedTOC(w io.Writer, entries []*chunkedEntry) error {
	if _, err := io.WriteString(w, `{"version":1,"entries":[`); err != nil {
		return err
	}
	for i, e := range entries {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if i > 0 {
			if _, err := io.WriteString(w, ","); err != nil {
				return err
			}
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, "]}")
	return err
}

// chunkedFrames reads the tar r into f, cut before and after each
// regular file's contents, and appends its TOC's entries to entries.
func chunkedFrames(f *framer, r io.Reader, entries *[]*chunkedEntry) error {
	// Every byte the tar reader reads, headers, contents and padding,
	// goes into the frame at hand: the contents straight from the tar
	// reader, the rest through tee.
	tee := &teeReader{r: r, w: f}
	tr := tar.NewReader(tee)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the tar: %w", err)
		}
		e, err := newChunkedEntry(hdr)
		if err != nil {
			return err
		}
		*entries = append(*entries, e)
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			f.cut((*chunkedFile)(e), hdr.Size)
			tee.w = nil
			if _, err := f.readFrom(tr, hdr.Size, nil); err != nil {
				return fmt.Errorf("reading the tar: %s: %w", hdr.Name, err)
			}
			tee.w = f
			f.cut(nil, 0)
		}
	}
	// The end of the archive and any padding after it.
	if _, err := io.CopyBuffer(io.Discard, tee, make([]byte, 64<<10)); err != nil {
		return fmt.Errorf("reading the tar: %w", err)
	}
	return nil
}

// writeSkippable writes data in a zstd skippable frame.
func writeSkippable(w io.Writer, data []byte) error {
	head := make([]byte, 8)
	copy(head, skippableFrameMagic)
	binary.LittleEndian.PutUint32(head[4:], uint32(len(data)))
	if _, err := w.Write(head); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// ReadChunkedTOC reads the table of contents of the zstd:chunked blob b
// (of size bytes) where its position annotation says, checks it against
// the checksum annotation and returns its JSON: what podman's partial
// pulls read first.
func ReadChunkedTOC(b io.ReaderAt, size int64, annotations map[string]string) ([]byte, error) {
	var offset, length, plain, typ int64
	if _, err := fmt.Sscanf(annotations[ChunkedPositionAnnotation], "%d:%d:%d:%d", &offset, &length, &plain, &typ); err != nil {
		return nil, fmt.Errorf("annotation %s: %w", ChunkedPositionAnnotation, err)
	}
	if typ != chunkedTOCType || offset < 0 || length < 0 || offset+length > size {
		return nil, fmt.Errorf("annotation %s: %q is outside the blob or of another type", ChunkedPositionAnnotation, annotations[ChunkedPositionAnnotation])
	}
	z := make([]byte, length)
	if _, err := b.ReadAt(z, offset); err != nil {
		return nil, err
	}
	if d := digest.FromBytes(z).String(); d != annotations[ChunkedChecksumAnnotation] {
		return nil, fmt.Errorf("the TOC hashes to %s, the annotation says %s", d, annotations[ChunkedChecksumAnnotation])
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	toc, err := dec.DecodeAll(z, nil)
	if err != nil {
		return nil, err
	}
	if int64(len(toc)) != plain {
		return nil, fmt.Errorf("the TOC has %d bytes, the annotation says %d", len(toc), plain)
	}
	return toc, nil
}

// teeReader writes to w (unless nil) what it reads from r; a write error
// is a read error.
type teeReader struct {
	r io.Reader
	w io.Writer
}

func (t *teeReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 && t.w != nil {
		if _, werr := t.w.Write(p[:n]); werr != nil {
			return n, werr
		}
	}
	return n, err
}

// writeEstargz writes l's eStargz blob to w (estargz.go): the tar goes
// through a pipe to the encoder.
func (l Layer) writeEstargz(w io.Writer, count nar.Counter) (Blob, error) {
	src, err := l.source(count)
	if err != nil {
		return Blob{}, err
	}
	dw := newDigestWriter(w)
	r, err := pipeEncode(func(pw io.Writer) error {
		_, err := tree.WriteTar(pw, &l.Plan.Tree, l.MTime, src)
		return err
	}, func(pr io.Reader) (estargzResult, error) { return encodeEstargz(dw, pr) })
	if err != nil {
		return Blob{}, err
	}
	return Blob{DiffID: r.diffID, Size: r.size, Digest: dw.digest(), BlobSize: dw.n, Annotations: map[string]string{
		estargz.TOCJSONDigestAnnotation:         r.tocDigest.String(),
		estargz.StoreUncompressedSizeAnnotation: strconv.FormatInt(r.size, 10),
	}}, nil
}

// VerifyLazy checks the blob b (size bytes) of a layer encoded as c
// (zstd:chunked or eStargz) against its descriptor's annotations, as a
// lazily pulling client relies on them: for eStargz, the estargz
// package's own verifier (the TOC against its digest, then every chunk
// of every file read back through the TOC and checked against its
// digest); for zstd:chunked, the TOC against its checksum, and every
// regular file's frames decoded alone to the contents its digest names.
func VerifyLazy(b io.ReaderAt, size int64, c format.Compression, annotations map[string]string) error {
	switch c {
	case format.Estargz:
		return verifyEstargz(io.NewSectionReader(b, 0, size), annotations)
	case format.ZstdChunked:
		return verifyChunked(b, size, annotations)
	}
	return fmt.Errorf("%q is not a lazy layer encoding", c)
}

func verifyEstargz(sr *io.SectionReader, annotations map[string]string) error {
	r, err := estargz.Open(sr)
	if err != nil {
		return fmt.Errorf("estargz: %w", err)
	}
	d, err := digest.Parse(annotations[estargz.TOCJSONDigestAnnotation])
	if err != nil {
		return fmt.Errorf("annotation %s: %w", estargz.TOCJSONDigestAnnotation, err)
	}
	v, err := r.VerifyTOC(d)
	if err != nil {
		return fmt.Errorf("estargz: %w", err)
	}
	root, ok := r.Lookup("")
	if !ok {
		return fmt.Errorf("estargz: the TOC has no root")
	}
	var walk func(e *estargz.TOCEntry) error
	walk = func(e *estargz.TOCEntry) error {
		var err error
		e.ForeachChild(func(_ string, ent *estargz.TOCEntry) bool {
			switch {
			case ent.Type == "dir":
				err = walk(ent)
			case ent.Type == "reg" && ent.Size > 0:
				err = verifyEstargzFile(r, v, ent)
			}
			return err == nil
		})
		return err
	}
	return walk(root)
}

// verifyEstargzFile reads every chunk of the file e back and checks it.
func verifyEstargzFile(r *estargz.Reader, v estargz.TOCEntryVerifier, e *estargz.TOCEntry) error {
	f, err := r.OpenFile(e.Name)
	if err != nil {
		return fmt.Errorf("estargz: %s: %w", e.Name, err)
	}
	for off := int64(0); off < e.Size; {
		ce, ok := r.ChunkEntryForOffset(e.Name, off)
		if !ok || ce.ChunkSize <= 0 {
			return fmt.Errorf("estargz: %s: no chunk at offset %d", e.Name, off)
		}
		cv, err := v.Verifier(ce)
		if err != nil {
			return fmt.Errorf("estargz: %s: chunk at %d: %w", e.Name, off, err)
		}
		if _, err := io.Copy(cv, io.NewSectionReader(f, ce.ChunkOffset, ce.ChunkSize)); err != nil {
			return fmt.Errorf("estargz: %s: chunk at %d: %w", e.Name, off, err)
		}
		if !cv.Verified() {
			return fmt.Errorf("estargz: %s: chunk at %d does not match its digest", e.Name, off)
		}
		off += ce.ChunkSize
	}
	return nil
}

func verifyChunked(b io.ReaderAt, size int64, annotations map[string]string) error {
	for _, k := range []string{ChunkedChecksumAnnotation, ChunkedPositionAnnotation} {
		if n := strings.Replace(k, "io.containers.", "io.github.containers.", 1); annotations[n] != annotations[k] {
			return fmt.Errorf("annotations %s and %s differ", k, n)
		}
	}
	tocJSON, err := ReadChunkedTOC(b, size, annotations)
	if err != nil {
		return fmt.Errorf("zstd:chunked: %w", err)
	}
	var toc chunkedTOC
	if err := json.Unmarshal(tocJSON, &toc); err != nil {
		return fmt.Errorf("zstd:chunked: the TOC: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return err
	}
	defer dec.Close()
	for _, e := range toc.Entries {
		if e.Type != "reg" || e.Size == 0 {
			continue
		}
		if e.Offset <= 0 || e.EndOffset <= e.Offset || e.EndOffset > size {
			return fmt.Errorf("zstd:chunked: %s: frames at %d-%d are outside the blob", e.Name, e.Offset, e.EndOffset)
		}
		if err := dec.Reset(io.NewSectionReader(b, e.Offset, e.EndOffset-e.Offset)); err != nil {
			return err
		}
		h := sha256.New()
		n, err := io.Copy(h, dec)
		if err != nil {
			return fmt.Errorf("zstd:chunked: %s: %w", e.Name, err)
		}
		if d := digest.NewDigest(digest.SHA256, h).String(); n != e.Size || d != e.Digest {
			return fmt.Errorf("zstd:chunked: %s: its frames hold %d bytes hashing to %s, the TOC says %d, %s", e.Name, n, d, e.Size, e.Digest)
		}
	}
	return nil
}
