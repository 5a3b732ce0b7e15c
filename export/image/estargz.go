package image

// eStargz blobs in one pass, their gzip members compressed in parallel.
//
// The estargz package's builder (estargz.Build) writes the tar to a
// temporary file per worker, compressing on one goroutine per part, then
// decompresses the whole blob again to hash it (its diff id), and starts
// a new gzip encoder, allocating its tables, for every member: about
// four times the time of a gzip layer. Its parts, one per worker, cut
// the members differently for each worker count, so only one worker
// gives the same bytes on every machine. encodeEstargz writes exactly
// the bytes Build writes with one worker (TestEstargzAsBuild compares
// them), in one pass over the tar and without temporary files:
//
//   - every entry's header goes through the same encoders as in Build
//     (archive/tar, then tar-split, the estargz package's tar), and the
//     TOC entries are filled as its Writer fills them;
//   - the stream is cut where the Writer cuts its gzip members (before
//     every chunk of a regular file's contents, the landmark first), and
//     the members are compressed by klauspost's gzip at the level of gzip
//     layers, in parallel and written in order by a framer (frames.go):
//     each member by an encoder reset for it (which writes as a new one
//     does), every member but the last flushed before it is closed, as
//     the Writer does. A gzip member's bytes depend only on its input,
//     so the blob does not depend on how many goroutines compress;
//   - a chunk's digest is computed where it is compressed, its offset
//     where it is written; a chunk is never in memory whole (the framer
//     carries a member longer than a job, and its digest, from one job
//     to the next); the file's digest, for a file of several chunks, and
//     the diff id are computed as the tar is read;
//   - the TOC, its gzip member and the footer are those of the estargz
//     package's GzipCompressor.WriteTOCAndFooter, the TOC's JSON streamed
//     (writeEstargzTOC).
//
// What it holds in memory is the framer's (frames.go: a few jobs of a
// quarter MiB over all the layers written at once), the TOC's entries,
// and one entry's header.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/containerd/stargz-snapshotter/estargz"
	kgzip "github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	splittar "github.com/vbatts/tar-split/archive/tar"

	"github.com/storepack/storepack/internal/compress"
)

// estargzLandmarkContents is the landmark file's one byte (the estargz
// package's landmarkContents).
const estargzLandmarkContents = 0xf

// estargzResult is what encodeEstargz returns besides the blob.
type estargzResult struct {
	diffID    digest.Digest // of the blob decompressed
	size      int64         // the blob decompressed
	tocDigest digest.Digest // of the TOC's JSON
}

// gzipFrames are eStargz's gzip members: klauspost's gzip at the level of
// gzip layers, an encoder reset for every member (which writes as a new
// one does), every member but the blob's last flushed before it is
// closed, as the estargz package's Writer does.
var gzipFrames = sync.OnceValue(func() *frameCodec {
	return newFrameCodec(0, func() (frameEncoder, error) {
		g := &gzipFrame{}
		gz, err := kgzip.NewWriterLevel(&g.out, compress.GzipLevel)
		g.gz = gz
		return g, err
	})
})

type gzipFrame struct {
	gz  *kgzip.Writer
	out switchWriter
}

func (g *gzipFrame) begin(w io.Writer)           { g.out.w = w; g.gz.Reset(&g.out) }
func (g *gzipFrame) output(w io.Writer)          { g.out.w = w }
func (g *gzipFrame) Write(p []byte) (int, error) { return g.gz.Write(p) }

func (g *gzipFrame) end(final bool) error {
	if !final {
		if err := g.gz.Flush(); err != nil {
			return err
		}
	}
	return g.gz.Close()
}

// esgzChunk is the TOC entry of the chunk a gzip member starts with.
type esgzChunk estargz.TOCEntry

// framed sets the chunk's offset and digest, and the file's digest when
// the chunk is the whole file.
func (c *esgzChunk) framed(start, _ int64, d digest.Digest) {
	c.Offset = start
	c.ChunkDigest = d.String()
	if c.Type == "reg" && c.Size <= estargzChunkSize {
		c.Digest = c.ChunkDigest
	}
}

// esgzEncoder is the state of encodeEstargz.
type esgzEncoder struct {
	f                    *framer
	entries              []*estargz.TOCEntry
	lastUname, lastGname map[int]string
	names                map[string]bool
	hdr                  bytes.Buffer
	payload              hash.Hash
	copyBuf              []byte
	// The blob's tar, hashed and counted.
	diffHash hash.Hash
	size     int64
}

// Write appends to the member at hand.
func (e *esgzEncoder) Write(p []byte) (int, error) { return e.f.Write(p) }

// encodeEstargz reads a tar from r and writes it to w as the eStargz blob
// estargz.Build writes of it with one worker, estargzChunkSize chunks, no
// prioritized files and klauspost's gzip at compress.GzipLevel for the
// chunks.
func encodeEstargz(w io.Writer, r io.Reader) (estargzResult, error) {
	e := &esgzEncoder{
		lastUname: map[int]string{},
		lastGname: map[int]string{},
		names:     map[string]bool{},
		payload:   sha256.New(),
		copyBuf:   make([]byte, 64<<10),
		diffHash:  sha256.New(),
	}
	e.f = newFramer(gzipFrames(), w, func(raw []byte) {
		e.diffHash.Write(raw)
		e.size += int64(len(raw))
	})
	err := e.encode(r)
	// Whatever happened, the last job goes to the writer, so that it ends
	// and every slot is given back; after an error it is not compressed.
	written, ferr := e.f.close(err != nil)
	if err == nil {
		err = ferr
	}
	if err != nil {
		return estargzResult{}, err
	}
	counted := &countingHash{Hash: e.diffHash}
	tocDigest, err := writeEstargzTOC(w, written, e.entries, counted)
	if err != nil {
		return estargzResult{}, err
	}
	return estargzResult{
		diffID:    digest.NewDigest(digest.SHA256, e.diffHash),
		size:      e.size + counted.n,
		tocDigest: tocDigest,
	}, nil
}

// encode writes the landmark and the entries of the tar r.
func (e *esgzEncoder) encode(r io.Reader) error {
	landmark := &tar.Header{Name: estargz.NoPrefetchLandmark, Typeflag: tar.TypeReg, Size: 1}
	if err := e.entry(landmark, bytes.NewReader([]byte{estargzLandmarkContents})); err != nil {
		return err
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the tar: %w", err)
		}
		switch name := esgzClean(h.Name); name {
		case estargz.PrefetchLandmark, estargz.NoPrefetchLandmark, estargz.TOCTarName:
			// Build leaves out landmarks and TOCs already there.
			continue
		default:
			if e.names[name] {
				// Build would keep the last one only, moved to the end.
				return fmt.Errorf("%s is in the tar twice", h.Name)
			}
			e.names[name] = true
		}
		if err := e.entry(h, tr); err != nil {
			return err
		}
	}
	// The end of the archive and anything after it are left out, as
	// Build does (the TOC's tar ends the blob's).
	if _, err := io.CopyBuffer(io.Discard, r, e.copyBuf); err != nil {
		return fmt.Errorf("reading the tar: %w", err)
	}
	return nil
}

// entry writes the tar entry h, its contents read from r, as the
// estargz package's Writer does after Build rewrote the tar.
func (e *esgzEncoder) entry(h1 *tar.Header, r io.Reader) error {
	// Build's tar (archive/tar) read back by the Writer (tar-split).
	e.hdr.Reset()
	if err := tar.NewWriter(&e.hdr).WriteHeader(h1); err != nil {
		return fmt.Errorf("%s: %w", h1.Name, err)
	}
	h, err := splittar.NewReader(&e.hdr).Next()
	if err != nil {
		return fmt.Errorf("%s: %w", h1.Name, err)
	}
	// No map for no attributes: the TOC leaves out an empty one as a
	// missing one.
	var xattrs map[string][]byte
	for k, v := range h.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if xattrs == nil {
				xattrs = map[string][]byte{}
			}
			xattrs[name] = []byte(v)
		}
	}
	ent := &estargz.TOCEntry{
		Name:        h.Name,
		Mode:        h.Mode,
		UID:         h.Uid,
		GID:         h.Gid,
		Uname:       nameIfChanged(e.lastUname, h.Uid, h.Uname),
		Gname:       nameIfChanged(e.lastGname, h.Gid, h.Gname),
		ModTime3339: esgzModtime(h.ModTime),
		Xattrs:      xattrs,
	}
	// The header as the Writer's tar writer (tar-split) writes it; a
	// writer keeps nothing from one entry to the next but the contents
	// it expects, which are read straight into the job and padded here.
	if err := splittar.NewWriter(e).WriteHeader(h); err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	switch h.Typeflag {
	case tar.TypeLink:
		ent.Type, ent.LinkName = "hardlink", h.Linkname
	case tar.TypeSymlink:
		ent.Type, ent.LinkName = "symlink", h.Linkname
	case tar.TypeDir:
		ent.Type = "dir"
	case tar.TypeReg:
		ent.Type, ent.Size = "reg", h.Size
	case tar.TypeChar:
		ent.Type, ent.DevMajor, ent.DevMinor = "char", int(h.Devmajor), int(h.Devminor)
	case tar.TypeBlock:
		ent.Type, ent.DevMajor, ent.DevMinor = "block", int(h.Devmajor), int(h.Devminor)
	case tar.TypeFifo:
		ent.Type = "fifo"
	default:
		return fmt.Errorf("%s: unsupported tar entry type %q", h.Name, h.Typeflag)
	}
	switch {
	case h.Typeflag == tar.TypeReg && h.Size == 0:
		ent.Digest = digest.FromBytes(nil).String()
		e.entries = append(e.entries, ent)
	case h.Typeflag == tar.TypeReg:
		// A member for each chunk, starting with it: the chunks of a
		// file larger than one are hashed as a whole here (the file's
		// digest), each alone where it is compressed.
		first := ent
		var payload hash.Hash
		if h.Size > estargzChunkSize {
			e.payload.Reset()
			payload = e.payload
		}
		for written := int64(0); written < h.Size; {
			n := min(h.Size-written, estargzChunkSize)
			if n == estargzChunkSize {
				ent.ChunkSize = n
			}
			ent.ChunkOffset = written
			e.entries = append(e.entries, ent)
			e.f.cut((*esgzChunk)(ent), n)
			if got, err := e.f.readFrom(r, n, payload); err != nil {
				return fmt.Errorf("%s: %d bytes of contents, the header says %d: %w", h.Name, written+got, h.Size, err)
			}
			written += n
			ent = &estargz.TOCEntry{Name: h.Name, Type: "chunk"}
		}
		if payload != nil {
			first.Digest = digest.NewDigest(digest.SHA256, payload).String()
		}
	default:
		e.entries = append(e.entries, ent)
	}
	if h.Typeflag == tar.TypeReg {
		e.f.Write(tarZeros[:-h.Size&511])
	}
	return nil
}

// tarZeros pads a tar entry's contents to a multiple of 512 bytes.
var tarZeros [512]byte

// nameIfChanged is name unless it is already last[id], then "" (the
// estargz package's Writer names a user or group once for each id, until
// another name comes).
func nameIfChanged(last map[int]string, id int, name string) string {
	if name == "" || last[id] == name {
		return ""
	}
	last[id] = name
	return name
}

// esgzModtime is a TOC entry's modtime (the estargz package's
// formatModtime).
func esgzModtime(t time.Time) string {
	if t.IsZero() || t.Unix() == 0 {
		return ""
	}
	return t.UTC().Round(time.Second).Format(time.RFC3339)
}

// esgzClean is the name Build compares (the estargz package's
// cleanEntryName).
func esgzClean(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// The TOC's JSON around its entries, as json.MarshalIndent(toc, "", "\t")
// writes it: each entry is json.MarshalIndent(entry, "\t\t", "\t").
const (
	esgzTOCHead  = "{\n\t\"version\": 1,\n\t\"entries\": ["
	esgzTOCFirst = "\n\t\t"
	esgzTOCNext  = ",\n\t\t"
	esgzTOCEnd   = "\n\t]"
	esgzTOCTail  = "\n}"
)

// writeEstargzTOC writes the TOC of entries, its gzip member and the
// footer of a blob whose TOC starts at off, as the estargz package's
// GzipCompressor.WriteTOCAndFooter does (json.MarshalIndent of the
// JTOC, in a tar, gzipped by compress/gzip at compress.GzipLevel),
// writing the tar to diffHash too, and returns the JSON's digest. The
// JSON is marshaled an entry at a time into blocks, each entry let go
// once marshaled, then written after the tar header that gives its
// length: MarshalIndent of the whole held the entries, the compact JSON
// and the indented one at once, each grown by doubling (6 MB of JSON
// for the 15,000 files of GOROOT).
func writeEstargzTOC(w io.Writer, off int64, entries []*estargz.TOCEntry, diffHash hash.Hash) (digest.Digest, error) {
	js := newBlockBuffer()
	defer js.Reset()
	h := sha256.New()
	jw := io.MultiWriter(&js, h)
	io.WriteString(jw, esgzTOCHead) // a blockbuf.Buffer takes everything
	for i, e := range entries {
		b, err := json.MarshalIndent(e, "\t\t", "\t")
		if err != nil {
			return "", err
		}
		if i == 0 {
			io.WriteString(jw, esgzTOCFirst)
		} else {
			io.WriteString(jw, esgzTOCNext)
		}
		jw.Write(b)
		entries[i] = nil
	}
	if len(entries) > 0 {
		io.WriteString(jw, esgzTOCEnd)
	} else {
		io.WriteString(jw, "]")
	}
	io.WriteString(jw, esgzTOCTail)
	gz, err := gzip.NewWriterLevel(w, compress.GzipLevel)
	if err != nil {
		return "", err
	}
	tw := tar.NewWriter(io.MultiWriter(gz, diffHash))
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: estargz.TOCTarName, Size: js.Len()}); err != nil {
		return "", err
	}
	if _, err := js.WriteTo(tw); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := gz.Close(); err != nil {
		return "", err
	}
	if _, err := w.Write(esgzFooter(off)); err != nil {
		return "", err
	}
	return digest.NewDigest(digest.SHA256, h), nil
}

// esgzFooter is the blob's footer for a TOC at off (the estargz package's
// gzipFooterBytes).
func esgzFooter(off int64) []byte {
	subfield := fmt.Sprintf("%016xSTARGZ", off)
	extra := []byte{'S', 'G', 0, 0}
	binary.LittleEndian.PutUint16(extra[2:], uint16(len(subfield)))
	return estargz.CreateGzipFooter(append(extra, subfield...))
}

// countingHash counts what it hashes.
type countingHash struct {
	hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.Hash.Write(p)
}
