package nar

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

const (
	chunkSize = 256 << 10 // bytes per buffer handed from the reader to the writer
	chunks    = 8         // buffers in all: chunks*chunkSize bounds the read-ahead
)

// chunkPool keeps the read-ahead buffers of finished streams for the next
// one: a closure of many items is many streams, and 2 MiB of fresh,
// zeroed buffers for each showed up as a tenth of a hash's time.
var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, chunkSize); return &b }}

func getChunk() []byte  { return (*chunkPool.Get().(*[]byte))[:0] }
func putChunk(b []byte) { chunkPool.Put(&b) }

// errStopped ends the walk after the consumer failed.
var errStopped = errors.New("nar: dump stopped")

// walker walks a tree with *at system calls and fills buffers with the
// bytes its Framer gives for each node and the contents of regular files;
// Stream consumes them. In measure mode nothing is read or emitted: regular
// files are stat'ed and the bytes are counted.
type walker struct {
	f       Framer
	measure bool
	total   int64 // bytes counted, in measure mode
	buf     []byte
	out     chan []byte
	free    chan []byte
	stop    chan struct{}
	dents   []byte
	link    []byte
	scratch []byte
	hdr     Header
}

// Stream walks the file, folder or symlink at path and writes to w the
// bytes f frames for each node, with the contents of every regular file
// (read once) between its Begin and End; it returns the number of bytes
// written. A second goroutine walks the tree and reads files ahead into a
// bounded set of buffers (2 MiB in all), so that reading overlaps whatever
// w does with the bytes; w is only called from the calling goroutine, with
// chunks of up to 256 KiB. Sockets, FIFOs and devices are errors naming
// their path, as are files that cannot be read or that change size while
// they are read.
//
// The length of every chunk is added to c's byte counter as soon as w has
// taken it (one atomic add per chunk), so that another goroutine can watch
// the bytes go by: progress reports. c may be nil.
func Stream(w io.Writer, path string, f Framer, c Counter) (int64, error) {
	done := bytesOf(c)
	d := &walker{
		f:    f,
		out:  make(chan []byte, chunks),
		free: make(chan []byte, chunks),
		stop: make(chan struct{}),
		buf:  getChunk(),
	}
	for range chunks - 1 {
		d.free <- getChunk()
	}
	errc := make(chan error, 1)
	go func() {
		err := d.root(path)
		if err == nil {
			err = d.flush()
		}
		close(d.out)
		errc <- err
	}()
	var (
		total int64
		werr  error
	)
	for b := range d.out {
		if werr == nil {
			var n int
			n, werr = w.Write(b)
			total += int64(n)
			if done != nil {
				done.Add(int64(n))
			}
			if werr != nil {
				close(d.stop)
			}
		}
		d.free <- b[:0]
	}
	err := <-errc
	// The walker has stopped: every buffer is d.buf or back in d.free.
	if d.buf != nil {
		putChunk(d.buf)
	}
	for range len(d.free) {
		putChunk(<-d.free)
	}
	if werr != nil {
		return total, werr
	}
	return total, err
}

// Measure returns the number of bytes Stream would write for the tree at
// path with f, from the files' metadata alone (folder listings, lstat,
// symlink targets): no file is opened for reading.
func Measure(path string, f Framer) (int64, error) {
	d := &walker{f: f, measure: true}
	err := d.root(path)
	return d.total, err
}

// flush hands the current buffer to the consumer and takes an empty one.
func (d *walker) flush() error {
	if len(d.buf) == 0 || d.measure {
		return nil
	}
	select {
	case d.out <- d.buf:
		d.buf = nil // the consumer owns it now
	case <-d.stop:
		return errStopped
	}
	select {
	case d.buf = <-d.free:
	case <-d.stop:
		return errStopped
	}
	return nil
}

// emit appends p to the stream, across buffers when it does not fit.
func (d *walker) emit(p []byte) error {
	if d.measure {
		d.total += int64(len(p))
		return nil
	}
	for len(p) > 0 {
		if len(d.buf) == cap(d.buf) {
			if err := d.flush(); err != nil {
				return err
			}
		}
		n := copy(d.buf[len(d.buf):cap(d.buf)], p)
		d.buf, p = d.buf[:len(d.buf)+n], p[n:]
	}
	return nil
}

// begin and end emit the Framer's bytes for the node d.hdr.
func (d *walker) begin() error {
	d.scratch = d.f.Begin(d.scratch[:0], &d.hdr)
	return d.emit(d.scratch)
}

func (d *walker) end() error {
	d.scratch = d.f.End(d.scratch[:0], &d.hdr)
	return d.emit(d.scratch)
}

func (d *walker) root(path string) error {
	var st unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Lstat(path, &st) }); err != nil {
		return &fs.PathError{Op: "lstat", Path: path, Err: err}
	}
	return d.node(unix.AT_FDCWD, path, path, "/", modeType(st.Mode))
}

// node walks the entry name of the folder dirfd (fsPath on the file
// system, tree at treePath), whose type the folder listing gave (0 when
// unknown).
func (d *walker) node(dirfd int, name, fsPath, treePath string, typ uint32) error {
	switch typ {
	case unix.S_IFREG:
		return d.regular(dirfd, name, fsPath, treePath)
	case unix.S_IFLNK:
		return d.symlink(dirfd, name, fsPath, treePath)
	case unix.S_IFDIR:
		return d.directory(dirfd, name, fsPath, treePath)
	case 0:
		var st unix.Stat_t
		err := ignoringEINTR(func() error { return unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) })
		if err != nil {
			return &fs.PathError{Op: "lstat", Path: fsPath, Err: err}
		}
		if t := modeType(st.Mode); t != 0 {
			return d.node(dirfd, name, fsPath, treePath, t)
		}
		return specialFileError(fsPath, fileModeOf(st.Mode))
	default:
		return specialFileError(fsPath, fileModeOf(typ))
	}
}

func (d *walker) regular(dirfd int, name, fsPath, treePath string) error {
	if d.measure {
		var st unix.Stat_t
		err := ignoringEINTR(func() error { return unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) })
		if err != nil {
			return &fs.PathError{Op: "lstat", Path: fsPath, Err: err}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return specialFileError(fsPath, fileModeOf(st.Mode))
		}
		d.hdr = Header{Path: treePath, Type: TypeRegular, Size: st.Size, Executable: st.Mode&0o100 != 0}
		if err := d.begin(); err != nil {
			return err
		}
		d.total += st.Size
		return d.end()
	}
	fd, err := openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK)
	if err != nil {
		return &fs.PathError{Op: "open", Path: fsPath, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: fsPath, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return specialFileError(fsPath, fileModeOf(st.Mode))
	}
	size := st.Size
	d.hdr = Header{Path: treePath, Type: TypeRegular, Size: size, Executable: st.Mode&0o100 != 0}
	if err := d.begin(); err != nil {
		return err
	}
	for rem := size; rem > 0; {
		if len(d.buf) == cap(d.buf) {
			if err := d.flush(); err != nil {
				return err
			}
		}
		space := d.buf[len(d.buf):cap(d.buf)]
		if int64(len(space)) > rem {
			space = space[:rem]
		}
		n, err := unix.Read(fd, space)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "read", Path: fsPath, Err: err}
		}
		if n == 0 {
			return fmt.Errorf("%s: file changed size while being read (%d of %d bytes)", fsPath, size-rem, size)
		}
		d.buf = d.buf[:len(d.buf)+n]
		rem -= int64(n)
	}
	return d.end()
}

func (d *walker) symlink(dirfd int, name, fsPath, treePath string) error {
	if d.link == nil {
		d.link = make([]byte, 4096)
	}
	for {
		n, err := unix.Readlinkat(dirfd, name, d.link)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "readlink", Path: fsPath, Err: err}
		}
		if n < len(d.link) {
			d.hdr = Header{Path: treePath, Type: TypeSymlink, LinkTarget: string(d.link[:n])}
			if err := d.begin(); err != nil {
				return err
			}
			return d.end()
		}
		d.link = make([]byte, 2*len(d.link))
	}
}

// dirent is one folder entry: its name and, when the listing tells, its
// type as S_IFMT bits (0 when unknown).
type dirent struct {
	name string
	typ  uint32
}

func (d *walker) directory(dirfd int, name, fsPath, treePath string) error {
	fd, err := openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
	if err != nil {
		return &fs.PathError{Op: "open", Path: fsPath, Err: err}
	}
	defer unix.Close(fd)
	ents, err := d.readDir(fd, fsPath)
	if err != nil {
		return err
	}
	d.hdr = Header{Path: treePath, Type: TypeDirectory}
	if err := d.begin(); err != nil {
		return err
	}
	prefix := fsPath
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	for _, e := range ents {
		if err := d.node(fd, e.name, prefix+e.name, childPath(treePath, e.name), e.typ); err != nil {
			return err
		}
	}
	d.hdr = Header{Path: treePath, Type: TypeDirectory}
	return d.end()
}

// readDir lists a folder, sorted by the bytes of the names.
func (d *walker) readDir(fd int, path string) ([]dirent, error) {
	if d.dents == nil {
		d.dents = make([]byte, 32<<10)
	}
	var ents []dirent
	for {
		n, err := unix.Getdents(fd, d.dents)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "readdirent", Path: path, Err: err}
		}
		if n <= 0 {
			break
		}
		b := d.dents[:n]
		for len(b) >= 19 {
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			if reclen < 19 || reclen > len(b) {
				return nil, fmt.Errorf("%s: malformed directory listing", path)
			}
			typ, rec := b[18], b[19:reclen]
			b = b[reclen:]
			if i := slices.Index(rec, 0); i >= 0 {
				rec = rec[:i]
			}
			if string(rec) == "." || string(rec) == ".." {
				continue
			}
			ents = append(ents, dirent{name: string(rec), typ: direntType(typ)})
		}
	}
	slices.SortFunc(ents, func(a, b dirent) int { return strings.Compare(a.name, b.name) })
	return ents, nil
}

func direntType(t byte) uint32 {
	switch t {
	case unix.DT_REG:
		return unix.S_IFREG
	case unix.DT_DIR:
		return unix.S_IFDIR
	case unix.DT_LNK:
		return unix.S_IFLNK
	case unix.DT_FIFO:
		return unix.S_IFIFO
	case unix.DT_SOCK:
		return unix.S_IFSOCK
	case unix.DT_CHR:
		return unix.S_IFCHR
	case unix.DT_BLK:
		return unix.S_IFBLK
	}
	return 0
}

// modeType returns the S_IFMT bits of mode when they name a node type a NAR
// holds, else 0.
func modeType(mode uint32) uint32 {
	switch t := mode & unix.S_IFMT; t {
	case unix.S_IFREG, unix.S_IFDIR, unix.S_IFLNK:
		return t
	}
	return 0
}

func fileModeOf(mode uint32) fs.FileMode {
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	}
	return fs.ModeIrregular
}

func openat(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func ignoringEINTR(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}
