// Package squashfs writes squashfs 4.0 images, the read-only file system
// that Apptainer and Singularity run containers from and that Linux mounts
// directly. Its Writer takes entries one at a time, as archive/tar's does:
// a header, then a regular file's contents.
//
// The writer is our own: the Go squashfs libraries read images, or write
// them from a folder on disk with the time of the copy, and none streams
// a tree in constant memory with its block compression on every core. It
// writes what mksquashfs writes by default but duplicate detection, the
// NFS export table and extended attributes:
//
//   - a superblock (written last, at the start), then the data: each
//     file's full blocks (128 KiB) compressed, and the tails of files
//     packed into shared fragment blocks;
//   - the inode table, the directory table, the fragment table and the
//     id table, in 8 KiB metadata blocks, compressed, each with its index
//     where the format has one, in the order the kernel checks;
//   - padding to a multiple of 4 KiB.
//
// Images are reproducible: their bytes depend only on the entries given
// (names, types, modes, owners, times, contents and link targets), the
// compression and the block size. Blocks are compressed on GOMAXPROCS
// goroutines but written in the order of the entries; inode numbers follow
// the order of the entries (the root is 1); every block is compressed on
// its own (package compress's Block), and stored uncompressed when
// compressing does not make it smaller.
package squashfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/compress"
)

// Format constants.
const (
	magic         = 0x73717368
	metadataSize  = 8192
	noFragment    = 0xFFFFFFFF
	noTable       = 0xFFFFFFFFFFFFFFFF
	dataRaw       = 1 << 24 // a data block or fragment stored uncompressed
	metaRaw       = 0x8000  // a metadata block stored uncompressed
	flagNoXattrs  = 0x0200
	superSize     = 96
	padTo         = 4096
	maxDirEntries = 256 // entries under one directory header
	// DefaultBlockSize is the data block size, as mksquashfs's default.
	DefaultBlockSize = 128 << 10
)

// Inode types.
const (
	typeDir        = 1
	typeFile       = 2
	typeSymlink    = 3
	typeExtDir     = 8
	typeExtFile    = 9
	basicDirMax    = 0xFFFF // the largest listing (+3) a basic directory inode holds
	basicFileLimit = 1 << 32
)

// compressionIDs are the superblock's compression ids.
var compressionIDs = map[format.Compression]uint16{format.Gzip: 1, format.XZ: 4, format.Zstd: 6}

// Type is an entry's type.
type Type int

// The entry types.
const (
	Dir Type = iota + 1
	Regular
	Symlink
)

// Header describes one entry of an image.
type Header struct {
	// Name is the entry's path in the image, relative to its root ("a/b",
	// a trailing "/" allowed for folders). Entries come parents first,
	// each folder's children in the byte order of their names, as
	// storepack's tars hold them; the root is implicit.
	Name string
	Type Type
	// Mode holds the permission bits (and setuid, setgid, sticky).
	Mode uint32
	UID  uint32
	GID  uint32
	// ModTime is the entry's time, in seconds.
	ModTime time.Time
	// Size is a regular file's length: Write must be given exactly that
	// many bytes.
	Size int64
	// Linkname is a symlink's target.
	Linkname string
}

// Options say how an image is written.
type Options struct {
	// Compression is gzip (zlib, as squashfs names it), zstd or xz.
	Compression format.Compression
	// BlockSize is the data block size, DefaultBlockSize when 0.
	BlockSize int
	// ModTime is the image's time (the superblock's) and the root's.
	ModTime time.Time
}

// Writer writes an image. Its methods are called from one goroutine;
// compression and writing run on others.
type Writer struct {
	w      io.WriterAt
	opts   Options
	block  *compress.Block
	events chan event
	jobs   chan *job
	done   chan error // the table builder's result
	err    error      // the first error, which stops everything

	// The producer's state.
	number  uint32   // the last inode number given
	dirs    []string // the open folders, the root ("") first
	last    []string // the last child name seen in each open folder
	cur     *Header  // the regular file being written
	written int64    // its bytes so far
	buf     []byte   // its block being filled
	frag    []byte   // the fragment block being filled
	frags   uint32   // fragment blocks submitted
	closed  bool
	size    int64 // the image's length, set by the builder when done
	workers sync.WaitGroup
	bufPool sync.Pool
}

// rootMode is the mode of the image's root folder.
const rootMode = 0o755

// event is what the table builder does next, in the order of the entries.
type event struct {
	kind   eventKind
	h      *Header
	number uint32 // the entry's inode number (its folder's is on the builder's stack)
	job    *job   // a data or fragment block
	// A file's tail: in fragment frag at offset off, or frag noFragment.
	frag, off uint32
}

type eventKind int

const (
	evDirBegin eventKind = iota + 1
	evDirEnd
	evFileBegin
	evBlock
	evFileEnd
	evFragment
	evSymlink
)

// job is one block to compress.
type job struct {
	raw  []byte
	out  []byte
	err  error
	done chan struct{}
}

// NewWriter starts an image written to w from offset 0 (w is written
// sequentially, but the superblock is written at 0 last: an *os.File).
func NewWriter(w io.WriterAt, opts Options) (*Writer, error) {
	if opts.BlockSize == 0 {
		opts.BlockSize = DefaultBlockSize
	}
	if opts.BlockSize < 4096 || opts.BlockSize > 1<<20 || opts.BlockSize&(opts.BlockSize-1) != 0 {
		return nil, fmt.Errorf("squashfs: block size %d: not a power of two from 4 KiB to 1 MiB", opts.BlockSize)
	}
	if _, ok := compressionIDs[opts.Compression]; !ok {
		return nil, fmt.Errorf("squashfs: unknown compression %q", opts.Compression)
	}
	block, err := compress.NewBlock(opts.Compression, opts.BlockSize)
	if err != nil {
		return nil, err
	}
	workers := runtime.GOMAXPROCS(0)
	sw := &Writer{
		w: w, opts: opts, block: block,
		events: make(chan event, 4*workers+4),
		jobs:   make(chan *job, workers),
		done:   make(chan error, 1),
		dirs:   []string{""}, last: []string{""},
		number: 1,
	}
	sw.bufPool.New = func() any { return make([]byte, 0, opts.BlockSize) }
	for range workers {
		sw.workers.Add(1)
		go sw.compressor()
	}
	b := newBuilder(sw)
	go func() { sw.done <- b.run() }()
	sw.events <- event{kind: evDirBegin, h: &Header{Type: Dir, Mode: rootMode, ModTime: opts.ModTime}, number: 1}
	return sw, nil
}

// compressor compresses jobs until there are no more.
func (sw *Writer) compressor() {
	defer sw.workers.Done()
	for j := range sw.jobs {
		out, err := sw.block.Compress(make([]byte, 0, len(j.raw)), j.raw)
		if err == nil && len(out) < len(j.raw) {
			j.out = out
		}
		j.err = err
		close(j.done)
	}
}

// submit queues raw for compression and its event for the builder.
func (sw *Writer) submit(kind eventKind, raw []byte) error {
	j := &job{raw: raw, done: make(chan struct{})}
	sw.jobs <- j
	return sw.send(event{kind: kind, job: j})
}

// send hands e to the builder, or returns the builder's error if it has
// stopped.
func (sw *Writer) send(e event) error {
	select {
	case sw.events <- e:
		return nil
	case err := <-sw.done:
		if err == nil {
			err = errors.New("squashfs: the image was already finished")
		}
		sw.done <- err // for Close
		sw.err = err
		return err
	}
}

// WriteHeader starts the next entry, finishing the one before.
func (sw *Writer) WriteHeader(h *Header) error {
	if sw.err != nil {
		return sw.err
	}
	if sw.closed {
		return errors.New("squashfs: WriteHeader after Close")
	}
	if err := sw.finishFile(); err != nil {
		return sw.fail(err)
	}
	name := strings.TrimSuffix(h.Name, "/")
	if name == "" || path.Clean(name) != name || strings.HasPrefix(name, "/") || strings.HasPrefix(name, "../") || name == ".." || name == "." {
		return sw.fail(fmt.Errorf("squashfs: %q: not a clean relative path", h.Name))
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	// Close the folders the entry is not in.
	for len(sw.dirs) > 1 && sw.dirs[len(sw.dirs)-1] != dir {
		if err := sw.send(event{kind: evDirEnd}); err != nil {
			return err
		}
		sw.dirs, sw.last = sw.dirs[:len(sw.dirs)-1], sw.last[:len(sw.last)-1]
	}
	if sw.dirs[len(sw.dirs)-1] != dir {
		return sw.fail(fmt.Errorf("squashfs: %s: its folder %s was not given before it (entries come parents first)", name, dir))
	}
	if prev := sw.last[len(sw.last)-1]; prev != "" && base <= prev {
		return sw.fail(fmt.Errorf("squashfs: %s: after %s in the same folder (names come sorted, once each)", name, prev))
	}
	if len(base) > 256 {
		return sw.fail(fmt.Errorf("squashfs: %s: a name longer than 256 bytes", name))
	}
	sw.last[len(sw.last)-1] = base
	sw.number++
	hc := *h
	hc.Name = base
	e := event{h: &hc, number: sw.number}
	switch h.Type {
	case Dir:
		e.kind = evDirBegin
		if err := sw.send(e); err != nil {
			return err
		}
		sw.dirs, sw.last = append(sw.dirs, name), append(sw.last, "")
	case Symlink:
		e.kind = evSymlink
		return sw.send(e)
	case Regular:
		if h.Size < 0 {
			return sw.fail(fmt.Errorf("squashfs: %s: size %d", name, h.Size))
		}
		e.kind = evFileBegin
		if err := sw.send(e); err != nil {
			return err
		}
		sw.cur, sw.written = &hc, 0
		sw.buf = sw.bufPool.Get().([]byte)[:0]
	default:
		return sw.fail(fmt.Errorf("squashfs: %s: unknown type %d", name, h.Type))
	}
	return nil
}

// Write writes to the current regular file.
func (sw *Writer) Write(p []byte) (int, error) {
	if sw.err != nil {
		return 0, sw.err
	}
	if sw.cur == nil {
		return 0, errors.New("squashfs: Write outside a regular file")
	}
	if sw.written+int64(len(p)) > sw.cur.Size {
		return 0, sw.fail(fmt.Errorf("squashfs: %s: more than its %d bytes", sw.cur.Name, sw.cur.Size))
	}
	n := 0
	for len(p) > 0 {
		k := min(len(p), sw.opts.BlockSize-len(sw.buf))
		sw.buf = append(sw.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(sw.buf) == sw.opts.BlockSize {
			if err := sw.submit(evBlock, sw.buf); err != nil {
				return n, err
			}
			sw.buf = sw.bufPool.Get().([]byte)[:0]
		}
	}
	sw.written += int64(n)
	return n, nil
}

// finishFile ends the current regular file: its tail goes into a
// fragment.
func (sw *Writer) finishFile() error {
	if sw.cur == nil {
		return nil
	}
	if sw.written != sw.cur.Size {
		return fmt.Errorf("squashfs: %s: %d bytes written of %d", sw.cur.Name, sw.written, sw.cur.Size)
	}
	e := event{kind: evFileEnd, frag: noFragment}
	if len(sw.buf) > 0 {
		if len(sw.frag)+len(sw.buf) > sw.opts.BlockSize {
			if err := sw.flushFragment(); err != nil {
				return err
			}
		}
		if sw.frag == nil {
			sw.frag = sw.bufPool.Get().([]byte)[:0]
		}
		e.frag, e.off = sw.frags, uint32(len(sw.frag))
		sw.frag = append(sw.frag, sw.buf...)
	}
	sw.bufPool.Put(sw.buf[:0])
	sw.cur, sw.buf = nil, nil
	return sw.send(e)
}

// flushFragment submits the fragment block being filled.
func (sw *Writer) flushFragment() error {
	if len(sw.frag) == 0 {
		return nil
	}
	err := sw.submit(evFragment, sw.frag)
	sw.frag = nil
	sw.frags++
	return err
}

// fail records err as the writer's error.
func (sw *Writer) fail(err error) error {
	if sw.err == nil {
		sw.err = err
	}
	return sw.err
}

// Close finishes the image: the last file, the open folders, the last
// fragment, the tables and the superblock. It returns the image's length.
func (sw *Writer) Close() (int64, error) {
	if sw.closed {
		return 0, errors.New("squashfs: closed twice")
	}
	sw.closed = true
	err := sw.err
	if err == nil {
		err = sw.finishFile()
	}
	for i := len(sw.dirs); err == nil && i > 0; i-- {
		err = sw.send(event{kind: evDirEnd})
	}
	if err == nil {
		err = sw.flushFragment()
	}
	close(sw.events)
	berr := <-sw.done
	close(sw.jobs)
	sw.workers.Wait()
	if err == nil {
		err = berr
	}
	if err != nil {
		return 0, err
	}
	return sw.size, nil
}

// le is the byte order of every squashfs field.
var le = binary.LittleEndian
