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
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	chunkSize = 256 << 10 // bytes per buffer handed from the walker to the writer
	// ownChunks buffers a stream may always have (1 MiB), so that it goes
	// on whatever the others hold; beyond them, a stream takes buffers of
	// sharedChunks (3 MiB in all), shared by every stream of the process.
	// More gains nothing once the readers keep ahead of the consumer, and
	// fresh memory costs (17 MiB of heap buffers took a fifth more CPU
	// time than 4 MiB to hash a 270 MB item; see buffers_linux.go).
	ownChunks    = 4
	sharedChunks = 12
	// readers are the goroutines of a stream that read files into its
	// buffers, batchFiles the files the walker hands them at once (fewer
	// at the end of a buffer), and maxOpen the files a stream may have
	// open, opened by the walker and not yet read and closed.
	readers    = 4
	batchFiles = 16
	maxOpen    = 64
	// namesBlock is the bytes of folder entry names allocated at once.
	namesBlock = 64 << 10
)

// sharedTokens bounds the buffers taken beyond ownChunks, over every
// stream at once.
var sharedTokens = make(chan struct{}, sharedChunks)

// errStopped ends the walk after the consumer failed.
var errStopped = errors.New("nar: dump stopped")

// chunk is a buffer of the stream: the Framer's bytes, written by the
// walker, and regions of file contents, read into it by the readers.
type chunk struct {
	b []byte
	// pending counts the walker (until it hands the chunk on) and the
	// reads not done; done gets a value when it drops to 0.
	pending atomic.Int32
	done    chan struct{} // of capacity 1, made once: chunks are reused
	// err is the error of the read of the earliest region that failed,
	// which starts at errAt.
	mu    sync.Mutex
	err   error
	errAt int
	// partial: the walk failed while filling it; its bytes are not
	// written, only the errors of its reads told.
	partial bool
	shared  bool // holds a token of sharedTokens
}

// release counts one hold of c off and signals done at the last.
func (c *chunk) release() {
	if c.pending.Add(-1) == 0 {
		c.done <- struct{}{}
	}
}

// chunks keeps the chunk values of finished streams and given-back
// shared buffers, without their buffers.
var chunks = sync.Pool{New: func() any { return &chunk{done: make(chan struct{}, 1)} }}

// newChunk returns a chunk with an empty buffer.
func newChunk(shared bool) *chunk {
	c := chunks.Get().(*chunk)
	c.b, c.shared = getChunk(), shared
	return c
}

// freeChunk gives back c and its buffer.
func freeChunk(c *chunk) {
	putChunk(c.b)
	c.b = nil
	chunks.Put(c)
}

func (c *chunk) fail(at int, err error) {
	c.mu.Lock()
	if c.err == nil || at < c.errAt {
		c.err, c.errAt = err, at
	}
	c.mu.Unlock()
}

// openFile is a regular file the walker opened, closed when the reads
// of all its pieces are done.
type openFile struct {
	fd   int
	at   place
	size int64
	refs atomic.Int32
}

// openFiles keeps the openFile values of closed files for the next.
var openFiles = sync.Pool{New: func() any { return new(openFile) }}

// place is where a node is on the file system: the path of its folder,
// with a final slash ("" for the root), and its name (the root's path).
// Its path is joined only for an error: most nodes never need it.
type place struct {
	dir, name string
}

func (p place) path() string { return p.dir + p.name }

// piece is the read of the bytes at off of a file into dst, at at in
// its chunk.
type piece struct {
	f   *openFile
	off int64
	dst []byte
	at  int
}

// batch is pieces of one chunk, read in order on one reader.
type batch struct {
	c      *chunk
	pieces []piece
}

// walker walks a tree with *at system calls and fills buffers with the
// bytes its Framer gives for each node, leaving room for the contents of
// regular files, which readers read into them ahead of the consumer;
// Stream consumes them in order. In measure mode nothing is read or
// emitted: regular files are stat'ed and the bytes are counted.
type walker struct {
	f       Framer
	measure bool
	total   int64 // bytes counted, in measure mode
	cur     *chunk
	owned   int // buffers of ownChunks made
	out     chan *chunk
	free    chan *chunk
	stop    chan struct{}
	batch   batch // the pieces not yet handed to the readers
	jobs    chan batch
	// pieceLists are the readers' batches' lists given back for the
	// walker's next.
	pieceLists chan []piece
	open       chan struct{} // a token per file open
	started    bool          // the readers are running
	dents      []byte
	tree       []byte // the tree path of the node walked, see directory
	// lists are the folder listings of the folders being walked, by
	// depth, kept for the next folder at the same depth; names holds
	// their names (see readDir).
	lists   [][]dirent
	depth   int
	names   []byte
	link    []byte
	scratch []byte
	hdr     Header
}

// Stream walks the file, folder or symlink at path and writes to w the
// bytes f frames for each node, with the contents of every regular file
// (read once) between its Begin and End; it returns the number of bytes
// written. A second goroutine walks the tree and opens the files, and
// four more read them (a large one in a piece for each buffer it spans)
// into buffers ahead of w, 1 MiB for each stream and 3 MiB more shared by
// all streams at most, so that w seldom waits for a file to be read; w
// gets the buffers in order and is only called from the calling goroutine, with chunks of up to
// 256 KiB. Sockets, FIFOs and devices are errors naming their path, as
// are files that cannot be read or that change size while they are read;
// errors come in the order of the stream.
//
// The length of every chunk is added to c's byte counter as soon as w has
// taken it (one atomic add per chunk), so that another goroutine can watch
// the bytes go by: progress reports. c may be nil.
func Stream(w io.Writer, path string, f Framer, c Counter) (int64, error) {
	done := bytesOf(c)
	d := &walker{
		f:          f,
		out:        make(chan *chunk, ownChunks+sharedChunks),
		free:       make(chan *chunk, ownChunks),
		stop:       make(chan struct{}),
		jobs:       make(chan batch, maxOpen),
		pieceLists: make(chan []piece, maxOpen),
		open:       make(chan struct{}, maxOpen),
	}
	errc := make(chan error, 1)
	go func() {
		err := d.next()
		if err == nil {
			err = d.root(path)
		}
		if d.cur != nil {
			// The last buffer, or the one the walk failed in: the errors
			// of its reads come before the walk's.
			d.dispatch()
			d.cur.partial = err != nil
			d.cur.release()
			d.out <- d.cur
			d.cur = nil
		}
		close(d.jobs)
		close(d.out)
		errc <- err
	}()
	var (
		total int64
		first error // the first error of the stream: a read's or w's
	)
	for c := range d.out {
		<-c.done
		if first == nil {
			switch {
			case c.err != nil:
				first = c.err
			case !c.partial:
				var n int
				n, first = w.Write(c.b)
				total += int64(n)
				if done != nil {
					done.Add(int64(n))
				}
			}
			if first != nil {
				close(d.stop)
			}
		}
		d.recycle(c)
	}
	err := <-errc
	for range len(d.free) {
		freeChunk(<-d.free)
	}
	if first != nil {
		return total, first
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

// recycle gives back a buffer the consumer is done with: one of the
// stream's own for the walker's next, a shared one to the pool.
func (d *walker) recycle(c *chunk) {
	if c.shared {
		freeChunk(c)
		<-sharedTokens
		return
	}
	d.free <- c
}

// next makes d.cur an empty buffer: one of the stream's own given back, a
// new one of its own, or a shared one, whichever comes first.
func (d *walker) next() error {
	var c *chunk
	select {
	case c = <-d.free:
	default:
		switch {
		case d.owned < ownChunks:
			d.owned++
			c = newChunk(false)
		default:
			select {
			case c = <-d.free:
			case sharedTokens <- struct{}{}:
				c = newChunk(true)
			case <-d.stop:
				return errStopped
			}
		}
	}
	c.b, c.err, c.errAt, c.partial = c.b[:0], nil, 0, false
	c.pending.Store(1)
	d.cur = c
	return nil
}

// flush hands the current buffer to the consumer and takes an empty one.
func (d *walker) flush() error {
	if d.measure {
		return nil
	}
	d.dispatch()
	c := d.cur
	d.cur = nil
	c.release()
	select {
	case d.out <- c:
	case <-d.stop:
		// The consumer drains out whatever happens.
		d.out <- c
		return errStopped
	}
	return d.next()
}

// emit appends p to the stream, across buffers when it does not fit.
func (d *walker) emit(p []byte) error {
	if d.measure {
		d.total += int64(len(p))
		return nil
	}
	for len(p) > 0 {
		if len(d.cur.b) == cap(d.cur.b) {
			if err := d.flush(); err != nil {
				return err
			}
		}
		b := d.cur.b
		n := copy(b[len(b):cap(b)], p)
		d.cur.b, p = b[:len(b)+n], p[n:]
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
	// A NUL after the path, as after readDir's names (see openName).
	name := (path + "\x00")[:len(path)]
	return d.node(unix.AT_FDCWD, place{name: name}, "/", modeType(st.Mode))
}

// node walks the entry at.name of the folder dirfd (at at on the file
// system, tree at treePath), whose type the folder listing gave (0 when
// unknown).
func (d *walker) node(dirfd int, at place, treePath string, typ uint32) error {
	switch typ {
	case unix.S_IFREG:
		return d.regular(dirfd, at, treePath)
	case unix.S_IFLNK:
		return d.symlink(dirfd, at, treePath)
	case unix.S_IFDIR:
		return d.directory(dirfd, at, treePath)
	case 0:
		var st unix.Stat_t
		err := ignoringEINTR(func() error { return unix.Fstatat(dirfd, at.name, &st, unix.AT_SYMLINK_NOFOLLOW) })
		if err != nil {
			return &fs.PathError{Op: "lstat", Path: at.path(), Err: err}
		}
		if t := modeType(st.Mode); t != 0 {
			return d.node(dirfd, at, treePath, t)
		}
		return specialFileError(at.path(), fileModeOf(st.Mode))
	default:
		return specialFileError(at.path(), fileModeOf(typ))
	}
}

// regular opens the regular file name of dir, frames it, and leaves
// room for its contents in the buffers, which readers fill (in a piece
// for each buffer it spans) and then close it.
func (d *walker) regular(dirfd int, at place, treePath string) error {
	if d.measure {
		var st unix.Stat_t
		err := ignoringEINTR(func() error { return unix.Fstatat(dirfd, at.name, &st, unix.AT_SYMLINK_NOFOLLOW) })
		if err != nil {
			return &fs.PathError{Op: "lstat", Path: at.path(), Err: err}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return specialFileError(at.path(), fileModeOf(st.Mode))
		}
		d.hdr = Header{Path: treePath, Type: TypeRegular, Size: st.Size, Executable: st.Mode&0o100 != 0}
		if err := d.begin(); err != nil {
			return err
		}
		d.total += st.Size
		return d.end()
	}
	if err := d.takeOpen(); err != nil {
		return err
	}
	fd, err := openName(dirfd, at.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK)
	if err != nil {
		<-d.open
		return &fs.PathError{Op: "open", Path: at.path(), Err: err}
	}
	f := openFiles.Get().(*openFile)
	f.fd, f.at, f.size = fd, at, 0
	f.refs.Store(1) // the walker's, until it has queued every piece
	defer d.closeRef(f)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: at.path(), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return specialFileError(at.path(), fileModeOf(st.Mode))
	}
	f.size = st.Size
	d.hdr = Header{Path: treePath, Type: TypeRegular, Size: f.size, Executable: st.Mode&0o100 != 0}
	if err := d.begin(); err != nil {
		return err
	}
	for off := int64(0); off < f.size; {
		if len(d.cur.b) == cap(d.cur.b) {
			if err := d.flush(); err != nil {
				return err
			}
		}
		b := d.cur.b
		n := min(f.size-off, int64(cap(b)-len(b)))
		d.cur.b = b[:len(b)+int(n)]
		f.refs.Add(1)
		d.cur.pending.Add(1)
		if d.batch.pieces == nil {
			select {
			case d.batch.pieces = <-d.pieceLists:
			default:
				d.batch.pieces = make([]piece, 0, batchFiles)
			}
		}
		d.batch.pieces = append(d.batch.pieces, piece{f: f, off: off, dst: b[len(b) : len(b)+int(n)], at: len(b)})
		off += n
	}
	if len(d.batch.pieces) >= batchFiles {
		d.dispatch()
	}
	return d.end()
}

// takeOpen takes a token of d.open for a file to open, handing the pieces
// queued so far to the readers first if it has to wait (their files hold
// the tokens).
func (d *walker) takeOpen() error {
	select {
	case d.open <- struct{}{}:
		return nil
	default:
	}
	d.dispatch()
	select {
	case d.open <- struct{}{}:
		return nil
	case <-d.stop:
		return errStopped
	}
}

// closeRef counts a hold of f off, and closes it at the last.
func (d *walker) closeRef(f *openFile) {
	if fd, last := dropRef(f); last {
		unix.Close(fd)
		<-d.open
	}
}

// dropRef counts a hold of f off. At the last it gives f back and
// returns its descriptor, which the caller closes and then gives back
// its token of d.open.
func dropRef(f *openFile) (fd int, last bool) {
	if f.refs.Add(-1) != 0 {
		return -1, false
	}
	fd = f.fd
	openFiles.Put(f)
	return fd, true
}

// dispatch hands the pieces queued to the readers, starting them at the
// first.
func (d *walker) dispatch() {
	if len(d.batch.pieces) == 0 {
		return
	}
	if !d.started {
		d.started = true
		for range readers {
			go d.reader()
		}
	}
	d.batch.c = d.cur
	d.jobs <- d.batch
	d.batch = batch{}
}

// reader reads batches until the walk ends. The files whose last piece
// a batch held are closed together after it (see closeFds).
func (d *walker) reader() {
	var done []int
	for b := range d.jobs {
		done = done[:0]
		for _, p := range b.pieces {
			if err := p.read(); err != nil {
				b.c.fail(p.at, err)
			}
			if fd, last := dropRef(p.f); last {
				done = append(done, fd)
			}
			b.c.release()
		}
		closeFds(done)
		for range done {
			<-d.open
		}
		select {
		case d.pieceLists <- b.pieces[:0]:
		default:
		}
	}
}

// noCloseRange is set once close_range(2) is refused (Linux before
// 5.9, or a seccomp profile without it).
var noCloseRange atomic.Bool

// closeFds closes fds, which it sorts: each run of consecutive numbers
// in one close_range call, which closes every open file in the range,
// all of them fds' here. A system call costs a microsecond on a virtual
// machine, as much as the rest of a small file's close: files opened
// one after another mostly have consecutive numbers, and a batch of them
// is a call or two instead of one for each.
func closeFds(fds []int) {
	slices.Sort(fds)
	for len(fds) > 0 {
		n := 1
		for n < len(fds) && fds[n] == fds[n-1]+1 {
			n++
		}
		run := fds[:n]
		fds = fds[n:]
		if n > 1 && !noCloseRange.Load() {
			err := unix.CloseRange(uint(run[0]), uint(run[n-1]), 0)
			if err == nil {
				continue
			}
			noCloseRange.Store(true)
		}
		for _, fd := range run {
			unix.Close(fd)
		}
	}
}

// read reads the bytes of p's file at p.off into p.dst.
func (p *piece) read() error {
	for dst := p.dst; len(dst) > 0; {
		off := p.off + int64(len(p.dst)-len(dst))
		n, err := unix.Pread(p.f.fd, dst, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "read", Path: p.f.at.path(), Err: err}
		}
		if n == 0 {
			return fmt.Errorf("%s: file changed size while being read (%d of %d bytes)", p.f.at.path(), off, p.f.size)
		}
		dst = dst[n:]
	}
	return nil
}

func (d *walker) symlink(dirfd int, at place, treePath string) error {
	if d.link == nil {
		d.link = make([]byte, 4096)
	}
	for {
		n, err := unix.Readlinkat(dirfd, at.name, d.link)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "readlink", Path: at.path(), Err: err}
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

func (d *walker) directory(dirfd int, at place, treePath string) error {
	fd, err := openName(dirfd, at.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
	if err != nil {
		return &fs.PathError{Op: "open", Path: at.path(), Err: err}
	}
	defer unix.Close(fd)
	if d.depth == len(d.lists) {
		d.lists = append(d.lists, nil)
	}
	ents, err := d.readDir(fd, at, d.lists[d.depth])
	if err != nil {
		return err
	}
	d.lists[d.depth] = ents
	d.depth++
	defer func() { d.depth-- }()
	d.hdr = Header{Path: treePath, Type: TypeDirectory}
	if err := d.begin(); err != nil {
		return err
	}
	fsPath := d.folderPath(at)
	// The children's tree paths are built in d.tree, which holds
	// treePath's bytes (but the root's "/") and which the children only
	// write beyond: each child's is a string over it, valid while the
	// child is walked. Nothing keeps one longer (Framers must not keep
	// h), and none is allocated.
	base := len(treePath)
	if treePath == "/" {
		base = 0
	}
	for _, e := range ents {
		d.tree = append(append(d.tree[:base], '/'), e.name...)
		child := unsafe.String(&d.tree[0], len(d.tree))
		if err := d.node(fd, place{fsPath, e.name}, child, e.typ); err != nil {
			return err
		}
	}
	d.hdr = Header{Path: treePath, Type: TypeDirectory}
	return d.end()
}

// readDir lists the folder fd (at at) into ents (emptied), sorted by
// the bytes of the names. The names are appended to d.names, each
// followed by a NUL (for openat, see openName), and never written over:
// the strings over them stay as made, and a folder's names cost no
// allocation of their own.
func (d *walker) readDir(fd int, at place, ents []dirent) ([]dirent, error) {
	if d.dents == nil {
		d.dents = make([]byte, 32<<10)
	}
	ents = ents[:0]
	for {
		n, err := unix.Getdents(fd, d.dents)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "readdirent", Path: at.path(), Err: err}
		}
		if n <= 0 {
			break
		}
		d.namesRoom(n) // the names of n bytes of records take fewer
		b := d.dents[:n]
		for len(b) >= 19 {
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			if reclen < 19 || reclen > len(b) {
				return nil, fmt.Errorf("%s: malformed directory listing", at.path())
			}
			typ, rec := b[18], b[19:reclen]
			b = b[reclen:]
			if i := slices.Index(rec, 0); i >= 0 {
				rec = rec[:i]
			}
			if len(rec) == 0 || string(rec) == "." || string(rec) == ".." {
				continue
			}
			start := len(d.names)
			d.names = append(append(d.names, rec...), 0)
			ents = append(ents, dirent{name: unsafe.String(&d.names[start], len(rec)), typ: direntType(typ)})
		}
	}
	slices.SortFunc(ents, func(a, b dirent) int { return strings.Compare(a.name, b.name) })
	return ents, nil
}

// folderPath returns the path of the folder at, with a final slash, for
// its children's places; like the names, it is kept in d.names.
func (d *walker) folderPath(at place) string {
	d.namesRoom(len(at.dir) + len(at.name) + 1)
	start := len(d.names)
	d.names = append(append(d.names, at.dir...), at.name...)
	if !strings.HasSuffix(at.name, "/") {
		d.names = append(d.names, '/')
	}
	return unsafe.String(&d.names[start], len(d.names)-start)
}

// namesRoom makes room for n more bytes in d.names, in a new block when
// the one at hand lacks it. Not internal/blockbuf: a name must stay
// whole in one block, for the string over it and for openat.
func (d *walker) namesRoom(n int) {
	if cap(d.names)-len(d.names) < n {
		d.names = make([]byte, 0, max(namesBlock, n))
	}
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

// openName is openat of name, which a NUL follows in memory (readDir's
// names and root's path do), so that no NUL-terminated copy of it is
// made: one for every file of the tree is a third of the walk's
// allocations.
func openName(dirfd int, name string, flags int) (int, error) {
	for {
		fd, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(unsafe.StringData(name))), uintptr(flags|unix.O_CLOEXEC), 0, 0, 0)
		switch e {
		case 0:
			return int(fd), nil
		case unix.EINTR:
			continue
		}
		return -1, e
	}
}

func ignoringEINTR(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}
