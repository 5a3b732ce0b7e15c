package nar

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	chunkSize = 256 << 10 // bytes per buffer handed from the reader to the writer
	chunks    = 8         // buffers in all: chunks*chunkSize bounds the read-ahead
)

// errStopped ends the walk after the consumer failed.
var errStopped = errors.New("nar: dump stopped")

// dumper walks a tree with *at system calls and fills buffers with its NAR
// serialisation; dump consumes them.
type dumper struct {
	buf   []byte
	out   chan []byte
	free  chan []byte
	stop  chan struct{}
	dents []byte
	link  []byte
}

// dump writes the NAR of path to w and returns its length. A goroutine
// walks the tree and fills buffers; this one hands them to w.
func dump(w io.Writer, path string) (int64, error) {
	d := &dumper{
		out:  make(chan []byte, chunks),
		free: make(chan []byte, chunks),
		stop: make(chan struct{}),
		buf:  make([]byte, 0, chunkSize),
	}
	for range chunks - 1 {
		d.free <- make([]byte, 0, chunkSize)
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
			if werr != nil {
				close(d.stop)
			}
		}
		d.free <- b[:0]
	}
	err := <-errc
	if werr != nil {
		return total, werr
	}
	return total, err
}

// flush hands the current buffer to the consumer and takes an empty one.
func (d *dumper) flush() error {
	if len(d.buf) == 0 {
		return nil
	}
	select {
	case d.out <- d.buf:
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

// room makes sure n more bytes fit in the buffer.
func (d *dumper) room(n int) error {
	if cap(d.buf)-len(d.buf) < n {
		return d.flush()
	}
	return nil
}

func (d *dumper) u64(n uint64) {
	d.buf = binary.LittleEndian.AppendUint64(d.buf, n)
}

// str appends one string token; the caller has made room.
func (d *dumper) str(s string) {
	d.u64(uint64(len(s)))
	d.buf = append(d.buf, s...)
	d.buf = append(d.buf, zeros[:padding(len(s))]...)
}

// tokens appends constant tokens, making room first.
func (d *dumper) tokens(ts ...string) error {
	n := 0
	for _, t := range ts {
		n += 16 + len(t)
	}
	if err := d.room(n); err != nil {
		return err
	}
	for _, t := range ts {
		d.str(t)
	}
	return nil
}

func (d *dumper) root(path string) error {
	var st unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Lstat(path, &st) }); err != nil {
		return &fs.PathError{Op: "lstat", Path: path, Err: err}
	}
	if err := d.tokens(Magic); err != nil {
		return err
	}
	return d.node(unix.AT_FDCWD, path, path, modeType(st.Mode))
}

// node dumps the entry name of the folder dirfd, whose type the folder
// listing gave (0 when unknown).
func (d *dumper) node(dirfd int, name, path string, typ uint32) error {
	switch typ {
	case unix.S_IFREG:
		return d.regular(dirfd, name, path)
	case unix.S_IFLNK:
		return d.symlink(dirfd, name, path)
	case unix.S_IFDIR:
		return d.directory(dirfd, name, path)
	case 0:
		var st unix.Stat_t
		err := ignoringEINTR(func() error { return unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) })
		if err != nil {
			return &fs.PathError{Op: "lstat", Path: path, Err: err}
		}
		if t := modeType(st.Mode); t != 0 {
			return d.node(dirfd, name, path, t)
		}
		return specialFileError(path, fileModeOf(st.Mode))
	default:
		return specialFileError(path, fileModeOf(typ))
	}
}

func (d *dumper) regular(dirfd int, name, path string) error {
	fd, err := openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK)
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return specialFileError(path, fileModeOf(st.Mode))
	}
	size := st.Size
	if err := d.room(7*16 + 8); err != nil {
		return err
	}
	d.str("(")
	d.str("type")
	d.str("regular")
	if st.Mode&0o100 != 0 {
		d.str("executable")
		d.str("")
	}
	d.str("contents")
	d.u64(uint64(size))
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
			return &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return fmt.Errorf("%s: file changed size while being read (%d of %d bytes)", path, size-rem, size)
		}
		d.buf = d.buf[:len(d.buf)+n]
		rem -= int64(n)
	}
	if err := d.room(8 + 16); err != nil {
		return err
	}
	d.buf = append(d.buf, zeros[:padding(int(size%8))]...)
	d.str(")")
	return nil
}

func (d *dumper) symlink(dirfd int, name, path string) error {
	if d.link == nil {
		d.link = make([]byte, 4096)
	}
	for {
		n, err := unix.Readlinkat(dirfd, name, d.link)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "readlink", Path: path, Err: err}
		}
		if n < len(d.link) {
			target := d.link[:n]
			if err := d.room(4*16 + 16 + len(target)); err != nil {
				return err
			}
			d.str("(")
			d.str("type")
			d.str("symlink")
			d.str("target")
			d.u64(uint64(len(target)))
			d.buf = append(d.buf, target...)
			d.buf = append(d.buf, zeros[:padding(len(target))]...)
			d.str(")")
			return nil
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

func (d *dumper) directory(dirfd int, name, path string) error {
	fd, err := openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	ents, err := d.readDir(fd, path)
	if err != nil {
		return err
	}
	if err := d.tokens("(", "type", "directory"); err != nil {
		return err
	}
	prefix := path
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	for _, e := range ents {
		if err := d.room(4*16 + 16 + len(e.name)); err != nil {
			return err
		}
		d.str("entry")
		d.str("(")
		d.str("name")
		d.str(e.name)
		d.str("node")
		if err := d.node(fd, e.name, prefix+e.name, e.typ); err != nil {
			return err
		}
		if err := d.tokens(")"); err != nil {
			return err
		}
	}
	return d.tokens(")")
}

// readDir lists a folder, sorted by the bytes of the names.
func (d *dumper) readDir(fd int, path string) ([]dirent, error) {
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
