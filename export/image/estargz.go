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
//     the members, grouped in jobs of about a MiB, are compressed by
//     klauspost's gzip at the level of gzip layers on up to GOMAXPROCS
//     goroutines shared by all layers, each with an encoder reset for
//     every member (which writes as a new one does); every member but
//     the last is flushed before it is closed, as the Writer does. A
//     gzip member's bytes depend only on its input, so the blob does not
//     depend on how many goroutines compress;
//   - the jobs are written in order, which gives each chunk's offset; the
//     diff id and the blob's digest are computed on the way; a member too
//     long for a job (headers of many entries without contents) is
//     carried by one encoder from one job to the next;
//   - the TOC, its gzip member and the footer are the estargz package's
//     own (GzipCompressor.WriteTOCAndFooter).
//
// At most GOMAXPROCS+1 jobs over all the layers written at once, and one
// more for each (so that a layer whose writer waits does not hold up the
// others), are in memory: each up to a MiB and an entry (a chunk of at
// most estargzChunkSize and the following headers up to another MiB),
// and their compressed bytes.

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containerd/stargz-snapshotter/estargz"
	kgzip "github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	splittar "github.com/vbatts/tar-split/archive/tar"

	"github.com/storepack/storepack/internal/compress"
)

// estargzJobSize is the input size from which a job of members is handed
// to a compressing goroutine.
const estargzJobSize = 1 << 20

// estargzJobCap is what a job's input takes at most but for long runs of
// headers: a MiB of small members, then a chunk and its header.
const estargzJobCap = estargzJobSize + estargzChunkSize + 64<<10

// estargzLandmarkContents is the landmark file's one byte (the estargz
// package's landmarkContents).
const estargzLandmarkContents = 0xf

// estargzSlots bounds the jobs in flight, compressing or waiting to be
// written, over every layer written at once.
var estargzSlots = sync.OnceValue(func() chan struct{} {
	return make(chan struct{}, runtime.GOMAXPROCS(0)+1)
})

// estargzResult is what encodeEstargz returns besides the blob.
type estargzResult struct {
	diffID    digest.Digest // of the blob decompressed
	size      int64         // the blob decompressed
	tocDigest digest.Digest // of the TOC's JSON
}

// esgzMember is the part of one gzip member in a job: raw[start:end] of
// its input, compressed to z[zstart:zend].
type esgzMember struct {
	start, end int
	// cont: the member started in an earlier job, whose encoder goes on;
	// open: it goes on in the next job, which gets the encoder.
	cont, open bool
	// flush: Flush before Close (every member but the blob's last).
	flush bool
	// chunk: the member starts with a chunk of chunk bytes of a file,
	// entry's; whole: the chunk is the whole file.
	chunk int
	entry *estargz.TOCEntry
	whole bool

	zstart, zend int
}

// esgzJob is members compressed on one goroutine.
type esgzJob struct {
	raw     []byte
	members []esgzMember
	z       *bytes.Buffer
	prev    *esgzJob       // the job before, when its last member goes on
	handoff chan *esgzGzip // the encoder of an open last member
	done    chan struct{}  // closed when compressed
	err     error
	slot    chan struct{} // the slot it holds until written
	abort   bool          // not to be compressed: the tar was broken
}

// esgzGzip is a gzip encoder writing to the buffer of the job at hand.
type esgzGzip struct {
	gz  *kgzip.Writer
	out *switchWriter
}

type switchWriter struct{ w io.Writer }

func (s *switchWriter) Write(p []byte) (int, error) { return s.w.Write(p) }

var esgzEncoders = sync.Pool{New: func() any {
	sw := &switchWriter{}
	gz, err := kgzip.NewWriterLevel(sw, compress.GzipLevel)
	if err != nil {
		panic(err) // the level is a valid constant
	}
	return &esgzGzip{gz: gz, out: sw}
}}

// esgzBuffers are the input and output buffers of a job.
type esgzBuffers struct {
	raw []byte
	z   *bytes.Buffer
}

// compress compresses j's members into j.z and the digests of the
// chunks they start with into their entries.
func (j *esgzJob) compress() {
	defer close(j.done)
	if j.abort {
		j.err = errors.New("not compressed after an error")
		return
	}
	var enc *esgzGzip
	for i := range j.members {
		m := &j.members[i]
		if m.cont {
			<-j.prev.done
			if j.prev.err != nil {
				j.err = j.prev.err
				return
			}
			enc = <-j.prev.handoff
			j.prev = nil // not to keep every job before
			enc.out.w = j.z
		} else {
			if enc == nil {
				enc = esgzEncoders.Get().(*esgzGzip)
			}
			enc.out.w = j.z
			enc.gz.Reset(enc.out)
		}
		m.zstart = j.z.Len()
		if m.cont {
			m.zstart = 0
		}
		if _, err := enc.gz.Write(j.raw[m.start:m.end]); err != nil {
			j.err = err
			return
		}
		if m.entry != nil {
			d := digest.FromBytes(j.raw[m.start : m.start+m.chunk]).String()
			m.entry.ChunkDigest = d
			if m.whole {
				m.entry.Digest = d
			}
		}
		if m.open {
			j.handoff <- enc
			m.zend = j.z.Len()
			return
		}
		if m.flush {
			if err := enc.gz.Flush(); err != nil {
				j.err = err
				return
			}
		}
		if err := enc.gz.Close(); err != nil {
			j.err = err
			return
		}
		m.zend = j.z.Len()
	}
	if enc != nil {
		enc.out.w = nil
		esgzEncoders.Put(enc)
	}
}

// esgzEncoder is the state of encodeEstargz.
type esgzEncoder struct {
	job                  *esgzJob
	queue                chan *esgzJob
	entries              []*estargz.TOCEntry
	lastUname, lastGname map[int]string
	names                map[string]bool
	hdr                  bytes.Buffer
	payload              hash.Hash
	copyBuf              []byte
	// free are buffers of jobs written, for the next ones.
	free chan esgzBuffers
	// own is the layer's slot, for a job when all of estargzSlots are
	// taken: each layer goes on whatever the others do.
	own        chan struct{}
	writeErr   error
	size       int64 // of the blob's tar so far
	diffHash   hash.Hash
	written    int64 // of the blob so far
	writerDone chan struct{}
	w          io.Writer
}

// Write appends to the member at hand.
func (e *esgzEncoder) Write(p []byte) (int, error) {
	e.job.raw = append(e.job.raw, p...)
	return len(p), nil
}

// newJob starts a job whose first member goes on from the last of prev
// when cont.
func (e *esgzEncoder) newJob(prev *esgzJob, cont bool) {
	var b esgzBuffers
	select {
	case b = <-e.free:
	default:
		// Each at its largest at once: grown by doubling, they left
		// garbage that the runtime gave back to the system and faulted in
		// again, which cost more than the compression saved.
		b = esgzBuffers{make([]byte, 0, estargzJobCap), bytes.NewBuffer(make([]byte, 0, estargzJobCap/2))}
	}
	j := &esgzJob{raw: b.raw[:0], z: b.z, handoff: make(chan *esgzGzip, 1), done: make(chan struct{})}
	if cont {
		j.prev = prev
	}
	j.members = append(j.members, esgzMember{cont: cont})
	e.job = j
}

// dispatch hands the job at hand, its last member ended at the end of
// its input (open when it goes on in the next job), to a compressing
// goroutine and to the writer.
func (e *esgzEncoder) dispatch(open bool) {
	j := e.job
	m := &j.members[len(j.members)-1]
	m.end, m.open = len(j.raw), open
	select {
	case estargzSlots() <- struct{}{}:
		j.slot = estargzSlots()
	default:
		select {
		case estargzSlots() <- struct{}{}:
			j.slot = estargzSlots()
		case e.own <- struct{}{}:
			j.slot = e.own
		}
	}
	go j.compress()
	e.queue <- j
}

// cut ends the member at hand (flushed) and starts another, which starts
// with a chunk of entry's contents of chunk bytes.
func (e *esgzEncoder) cut(entry *estargz.TOCEntry, chunk int, whole bool) {
	j := e.job
	m := &j.members[len(j.members)-1]
	m.end, m.flush = len(j.raw), true
	if len(j.raw) >= estargzJobSize {
		e.dispatch(false)
		e.newJob(j, false)
		j = e.job
	} else {
		j.members = append(j.members, esgzMember{start: len(j.raw)})
	}
	m = &j.members[len(j.members)-1]
	m.chunk, m.entry, m.whole = chunk, entry, whole
}

// write writes the jobs in order to w, setting the offsets of the chunks'
// entries and hashing the blob's tar.
func (e *esgzEncoder) write() {
	defer close(e.writerDone)
	for j := range e.queue {
		<-j.done
		if e.writeErr == nil && j.err != nil {
			e.writeErr = j.err
		}
		if e.writeErr == nil {
			z := j.z.Bytes()
			for _, m := range j.members {
				if m.entry != nil {
					m.entry.Offset = e.written + int64(m.zstart)
				}
			}
			e.diffHash.Write(j.raw)
			e.size += int64(len(j.raw))
			n, err := e.w.Write(z)
			e.written += int64(n)
			if err == nil && n < len(z) {
				err = io.ErrShortWrite
			}
			e.writeErr = err
		}
		j.z.Reset()
		select {
		case e.free <- esgzBuffers{j.raw[:0], j.z}:
		default:
		}
		j.raw, j.z = nil, nil
		<-j.slot
	}
}

// encodeEstargz reads a tar from r and writes it to w as the eStargz blob
// estargz.Build writes of it with one worker, estargzChunkSize chunks, no
// prioritized files and klauspost's gzip at compress.GzipLevel for the
// chunks.
func encodeEstargz(w io.Writer, r io.Reader) (estargzResult, error) {
	e := &esgzEncoder{
		queue:      make(chan *esgzJob, runtime.GOMAXPROCS(0)+2),
		own:        make(chan struct{}, 1),
		free:       make(chan esgzBuffers, runtime.GOMAXPROCS(0)+3),
		lastUname:  map[int]string{},
		lastGname:  map[int]string{},
		names:      map[string]bool{},
		payload:    sha256.New(),
		copyBuf:    make([]byte, 256<<10),
		diffHash:   sha256.New(),
		writerDone: make(chan struct{}),
		w:          w,
	}
	e.newJob(nil, false)
	go e.write()
	err := e.encode(r)
	// Whatever happened, the last job goes to the writer, so that it ends
	// and every slot is given back; after an error it is not compressed
	// (its last chunk may be cut short).
	e.job.abort = err != nil
	e.dispatch(false)
	close(e.queue)
	<-e.writerDone
	if err == nil {
		err = e.writeErr
	}
	if err != nil {
		return estargzResult{}, err
	}
	counted := &countingHash{Hash: e.diffHash}
	tocDigest, err := estargz.NewGzipCompressorWithLevel(compress.GzipLevel).WriteTOCAndFooter(w, e.written,
		&estargz.JTOC{Version: 1, Entries: e.entries}, counted)
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
		whole := h.Size <= estargzChunkSize
		first := ent
		if !whole {
			e.payload.Reset()
		}
		for written := int64(0); written < h.Size; {
			n := min(h.Size-written, estargzChunkSize)
			if n == estargzChunkSize {
				ent.ChunkSize = n
			}
			ent.ChunkOffset = written
			e.cut(ent, int(n), whole)
			j := e.job
			start := len(j.raw)
			j.raw = slices.Grow(j.raw, int(n))[:start+int(n)]
			if got, err := io.ReadFull(r, j.raw[start:]); err != nil {
				j.raw = j.raw[:start+got]
				return fmt.Errorf("%s: %d bytes of contents, the header says %d: %w", h.Name, written+int64(got), h.Size, err)
			}
			if !whole {
				e.payload.Write(j.raw[start:])
			}
			e.entries = append(e.entries, ent)
			written += n
			ent = &estargz.TOCEntry{Name: h.Name, Type: "chunk"}
		}
		if !whole {
			first.Digest = digest.NewDigest(digest.SHA256, e.payload).String()
		}
	default:
		e.entries = append(e.entries, ent)
	}
	if h.Typeflag == tar.TypeReg {
		e.job.raw = append(e.job.raw, make([]byte, -h.Size&511)...)
	}
	// A member that runs over a job (headers of many entries without
	// contents after a chunk) goes on in the next.
	if j, m := e.job, e.job.members[len(e.job.members)-1]; len(j.raw)-m.start-m.chunk >= estargzJobSize {
		e.dispatch(true)
		e.newJob(j, true)
	}
	return nil
}

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

// countingHash counts what it hashes.
type countingHash struct {
	hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.Hash.Write(p)
}
