package export

import (
	"archive/tar"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/gen"
	"github.com/storepack/storepack/store"
)

// Layer tars are reproducible: their bytes depend only on the layer's plan
// (entries and the store items' contents) and the mtime, never on the
// machine, time zone, umask, owner or mtimes of the files, working folder,
// GOMAXPROCS or map order.
//
//   - Entries come depth first, parents before children, the children of a
//     folder sorted by the bytes of their names (what `tar --sort=name`
//     and NAR serialisation do). Names are relative ("gnu/store/...-x/bin"),
//     folders end with "/".
//   - Every layer holds the store folder's parents (/gnu, /gnu/store, 0755)
//     so it extracts alone: engines that check parents come first accept it.
//   - Every entry has the given mtime, uid and gid 0, no user or group
//     names, no access or change times.
//   - Modes are those a store holds, normalised: folders 0555, regular
//     files 0555 when the owner may execute them else 0444, symlinks 0777
//     with their target verbatim. Hard links are written as regular files.
//     The plan's own entries keep their modes (0755, /tmp 1777, 0777).
//   - The format is PAX (POSIX.1-2001) as archive/tar writes it: a USTAR
//     header (a long name split over its prefix and name fields when it
//     fits them), preceded by a PAX extended header (named
//     "<dir>/PaxHeaders.0/<base>", all its fields zero, records sorted)
//     only when a name or link target does not fit USTAR or is not ASCII.
//
// A layer's length is known before its files are read: LayerSize walks the
// items' metadata (lstat and readdir, no contents) and adds header and
// padded content lengths. That lets a docker archive write each layer's tar
// header first and then stream the layer into it, reading every file once
// and keeping no temporary file.

// layerNode is a node of a layer's tree: a folder or symlink of the plan,
// or the root of a store item read from the file system.
type layerNode struct {
	name     string
	entry    *gen.Entry
	fsPath   string
	children []*layerNode
}

// layerTree builds the tree of l, finding store items through fsPaths.
func layerTree(l *gen.Layer, fsPaths map[store.Path]string) (*layerNode, error) {
	root := &layerNode{entry: &gen.Entry{Path: "/", Type: gen.EntryDirectory}}
	nodes := map[string]*layerNode{"/": root}
	attach := func(p string, n *layerNode) error {
		if _, dup := nodes[p]; dup {
			return fmt.Errorf("%s is in the layer twice", p)
		}
		parent, ok := nodes[path.Dir(p)]
		if !ok || parent.entry == nil || parent.entry.Type != gen.EntryDirectory {
			return fmt.Errorf("%s: its folder %s is not a folder of the layer", p, path.Dir(p))
		}
		nodes[p] = n
		parent.children = append(parent.children, n)
		return nil
	}
	entries := slices.Clone(l.Entries)
	slices.SortFunc(entries, func(a, b gen.Entry) int { return strings.Compare(a.Path, b.Path) })
	for i := range entries {
		e := &entries[i]
		if !path.IsAbs(e.Path) || path.Clean(e.Path) != e.Path || e.Path == "/" {
			return nil, fmt.Errorf("entry %q: not a clean absolute path below /", e.Path)
		}
		if e.Type != gen.EntryDirectory && e.Type != gen.EntrySymlink {
			return nil, fmt.Errorf("entry %s: unknown type %q", e.Path, e.Type)
		}
		if err := attach(e.Path, &layerNode{name: path.Base(e.Path), entry: e}); err != nil {
			return nil, err
		}
	}
	for _, p := range l.Items {
		fsPath, ok := fsPaths[p]
		if !ok || fsPath == "" {
			return nil, fmt.Errorf("store item %s: not in the closure", p)
		}
		if err := attach(string(p), &layerNode{name: p.Base(), fsPath: fsPath}); err != nil {
			return nil, fmt.Errorf("store item %w", err)
		}
	}
	return root, nil
}

// layerVisitor receives every entry of a layer in order; fsPath is the
// file to copy for regular files.
type layerVisitor func(hdr *tar.Header, fsPath string) error

// walkLayer visits the entries of l's tree in tar order.
func walkLayer(l *gen.Layer, mtime int64, fsPaths map[store.Path]string, visit layerVisitor) error {
	root, err := layerTree(l, fsPaths)
	if err != nil {
		return err
	}
	mt := time.Unix(mtime, 0)
	return walkNode(root, "", mt, visit)
}

func walkNode(n *layerNode, name string, mt time.Time, visit layerVisitor) error {
	if n.fsPath != "" {
		return walkFS(n.fsPath, name, mt, visit)
	}
	if name != "" { // the root itself is not an entry
		hdr := baseHeader(name, mt)
		hdr.Mode = int64(n.entry.Mode)
		switch n.entry.Type {
		case gen.EntryDirectory:
			hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		case gen.EntrySymlink:
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, n.entry.Target
		}
		if err := visit(hdr, ""); err != nil {
			return err
		}
	}
	slices.SortFunc(n.children, func(a, b *layerNode) int { return strings.Compare(a.name, b.name) })
	for _, c := range n.children {
		if err := walkNode(c, path.Join(name, c.name), mt, visit); err != nil {
			return err
		}
	}
	return nil
}

// walkFS visits the store item file or tree at fsPath, named name in the
// layer.
func walkFS(fsPath, name string, mt time.Time, visit layerVisitor) error {
	fi, err := os.Lstat(fsPath)
	if err != nil {
		return err
	}
	hdr := baseHeader(name, mt)
	switch m := fi.Mode(); {
	case m.IsRegular():
		hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeReg, fi.Size(), 0o444
		if m&0o100 != 0 {
			hdr.Mode = 0o555
		}
		return visit(hdr, fsPath)
	case m&fs.ModeSymlink != 0:
		target, err := os.Readlink(fsPath)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, target, 0o777
		return visit(hdr, "")
	case m.IsDir():
		hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", 0o555
		if err := visit(hdr, ""); err != nil {
			return err
		}
		des, err := os.ReadDir(fsPath) // sorted by name
		if err != nil {
			return err
		}
		for _, de := range des {
			if err := walkFS(fsPath+"/"+de.Name(), name+"/"+de.Name(), mt, visit); err != nil {
				return err
			}
		}
		return nil
	default:
		return fmt.Errorf("%s: a %s cannot be in a store item", fsPath, fileKind(m))
	}
}

// fileKind names the special file types a store cannot hold.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// baseHeader is what every entry shares: PAX format, mtime, uid and gid 0.
func baseHeader(name string, mt time.Time) *tar.Header {
	return &tar.Header{Format: tar.FormatPAX, Name: name, ModTime: mt}
}

// LayerSize is the length of l's layer tar, computed from the items'
// metadata without reading their contents. mtime is in Unix seconds;
// fsPaths says where each store item's files are.
func LayerSize(l *gen.Layer, mtime int64, fsPaths map[store.Path]string) (int64, error) {
	var n byteCounter
	err := walkLayer(l, mtime, fsPaths, func(hdr *tar.Header, _ string) error {
		if plainUSTAR(hdr) {
			n += 512
		} else if err := tar.NewWriter(&n).WriteHeader(hdr); err != nil {
			// A fresh writer per header: archive/tar encodes each
			// header without regard to the ones before it.
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
		n += byteCounter((hdr.Size + 511) &^ 511)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", l.ID, err)
	}
	return int64(n) + 1024, nil // the two zero blocks that end a tar
}

// WriteLayer writes l's layer tar to w, reading each file once, and
// returns its diff id (sha256 of the tar) and length, computed while
// writing. mtime is in Unix seconds; fsPaths says where each store item's
// files are. A file whose length changes while it is read is an error.
// Files are walked and read ahead in another goroutine (readAhead); w is
// only called from the calling goroutine.
func WriteLayer(w io.Writer, l *gen.Layer, mtime int64, fsPaths map[store.Path]string) (digest.Digest, int64, error) {
	ra := startReadAhead(l, mtime, fsPaths)
	defer ra.stop()
	dw := newDigestWriter(w)
	tw := tar.NewWriter(dw)
	fail := func(err error) (digest.Digest, int64, error) {
		return "", 0, fmt.Errorf("layer %s: %w", l.ID, err)
	}
	for m := range ra.msgs {
		switch {
		case m.err != nil:
			return fail(m.err)
		case m.hdr != nil:
			if err := tw.WriteHeader(m.hdr); err != nil {
				return fail(fmt.Errorf("%s: %w", m.hdr.Name, err))
			}
		default:
			if _, err := tw.Write(m.data); err != nil {
				return fail(err)
			}
			ra.free <- m.data[:0]
		}
	}
	if err := tw.Close(); err != nil {
		return fail(err)
	}
	return dw.digest(), dw.n, nil
}

// Read-ahead: one goroutine walks a layer's tree and reads its files into
// a bounded pool of buffers (readBuffers of readBufferSize bytes), so that
// reading overlaps framing and hashing.
const (
	readBuffers    = 8
	readBufferSize = 256 << 10
)

// readMsg is an entry's header, a chunk of the current regular file's
// contents, or the error that ended the walk.
type readMsg struct {
	hdr  *tar.Header
	data []byte
	err  error
}

// readAhead is a running walk of one layer.
type readAhead struct {
	msgs    chan readMsg
	free    chan []byte
	done    chan struct{}
	stopped bool
}

func newReadAhead() *readAhead {
	ra := &readAhead{
		msgs: make(chan readMsg, readBuffers),
		free: make(chan []byte, readBuffers),
		done: make(chan struct{}),
	}
	for range readBuffers {
		ra.free <- make([]byte, 0, readBufferSize)
	}
	return ra
}

// startReadAhead walks l in a new goroutine; msgs is closed at the end.
func startReadAhead(l *gen.Layer, mtime int64, fsPaths map[store.Path]string) *readAhead {
	ra := newReadAhead()
	go func() {
		defer close(ra.msgs)
		err := walkLayer(l, mtime, fsPaths, func(hdr *tar.Header, fsPath string) error {
			if !ra.send(readMsg{hdr: hdr}) {
				return errPipeAborted
			}
			if hdr.Typeflag != tar.TypeReg {
				return nil
			}
			return ra.readFile(fsPath, hdr.Size)
		})
		if err != nil && err != errPipeAborted {
			ra.send(readMsg{err: err})
		}
	}()
	return ra
}

// send passes m on unless the reader stopped.
func (ra *readAhead) send(m readMsg) bool {
	select {
	case ra.msgs <- m:
		return true
	case <-ra.done:
		return false
	}
}

// stop ends the walk early (when the reader failed) and waits for it.
func (ra *readAhead) stop() {
	if !ra.stopped {
		ra.stopped = true
		close(ra.done)
	}
	for range ra.msgs {
	}
}

// readFile sends exactly size bytes of the file at fsPath, in chunks. It
// opens the file without following a symlink and with no poller
// registration (plain system calls: a store file is read once, start to
// end).
func (ra *readAhead) readFile(fsPath string, size int64) error {
	fd, err := openNoFollow(fsPath)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	for read := int64(0); read < size; {
		var buf []byte
		select {
		case buf = <-ra.free:
		case <-ra.done:
			return errPipeAborted
		}
		want := int(min(int64(cap(buf)), size-read))
		buf = buf[:want]
		n, err := readFull(fd, buf)
		if err != nil {
			return &os.PathError{Op: "read", Path: fsPath, Err: err}
		}
		read += int64(n)
		if n < want {
			return fmt.Errorf("%s: shrank from %d to %d bytes while being read", fsPath, size, read)
		}
		if !ra.send(readMsg{data: buf}) {
			return errPipeAborted
		}
	}
	var one [1]byte
	if n, _ := readFull(fd, one[:]); n != 0 {
		return fmt.Errorf("%s: grew beyond %d bytes while being read", fsPath, size)
	}
	return nil
}

// openNoFollow opens a file for reading, failing on a symlink and not
// blocking on a FIFO that replaced a file since it was seen.
func openNoFollow(p string) (int, error) {
	for {
		fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: p, Err: err}
		}
		return fd, nil
	}
}

// readFull reads into b until it is full or the file ends.
func readFull(fd int, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := syscall.Read(fd, b[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}

// digestWriter passes writes on while hashing and counting them.
type digestWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func newDigestWriter(w io.Writer) *digestWriter { return &digestWriter{w: w, h: sha256.New()} }

func (d *digestWriter) Write(p []byte) (int, error) {
	n, err := d.w.Write(p)
	d.h.Write(p[:n])
	d.n += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return n, err
}

func (d *digestWriter) digest() digest.Digest { return digest.NewDigest(digest.SHA256, d.h) }

// closureFS maps each closure item of sys to the place its files are read.
func closureFS(sys *gen.System) map[store.Path]string {
	m := make(map[store.Path]string, len(sys.Closure))
	for i := range sys.Closure {
		m[sys.Closure[i].Path] = sys.Closure[i].FSPath
	}
	return m
}

// plainUSTAR reports whether archive/tar writes hdr, one of ours, as a
// single 512-byte USTAR block: ASCII names and link targets that fit their
// fields, and numbers that fit theirs (TestLayerSizeMatches checks this
// against archive/tar itself). Others get PAX records or a split name and
// are measured by encoding them.
func plainUSTAR(hdr *tar.Header) bool {
	const maxOctal11 = 1<<33 - 1 // 11 octal digits
	return len(hdr.Name) <= 100 && len(hdr.Linkname) <= 100 && isASCIIName(hdr.Name) && isASCIIName(hdr.Linkname) &&
		hdr.Size <= maxOctal11 && hdr.ModTime.Unix() >= 0 && hdr.ModTime.Unix() <= maxOctal11 && hdr.ModTime.Nanosecond() == 0
}

// isASCIIName reports whether s is ASCII without NUL.
func isASCIIName(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 || s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// byteCounter counts the bytes written to it and drops them.
type byteCounter int64

func (c *byteCounter) Write(p []byte) (int, error) {
	*c += byteCounter(len(p))
	return len(p), nil
}

// Pipelining: a layer's tar is produced (files walked and read, tar framed,
// diff id hashed) in one goroutine while the caller's goroutine writes the
// bytes on (into the archive, through whatever hashing and writing the
// caller does), so that on a machine with two cores reading and writing
// overlap. They meet in a pipe of pipeBuffers buffers of pipeBufferSize
// bytes: memory stays bounded whatever the layer's size.
const (
	pipeBuffers    = 8
	pipeBufferSize = 256 << 10
)

// errPipeAborted stops the producing goroutine when the writer failed.
var errPipeAborted = errors.New("layer pipe aborted")

// bufPipe is a bounded, buffered pipe from one writing goroutine to one
// reading goroutine.
type bufPipe struct {
	free chan []byte
	full chan []byte
	done chan struct{}
	cur  []byte
}

func newBufPipe() *bufPipe {
	p := &bufPipe{
		free: make(chan []byte, pipeBuffers),
		full: make(chan []byte, pipeBuffers),
		done: make(chan struct{}),
	}
	for range pipeBuffers {
		p.free <- make([]byte, 0, pipeBufferSize)
	}
	return p
}

// Write copies b into the pipe's buffers, handing each on when full.
func (p *bufPipe) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		if p.cur == nil {
			select {
			case p.cur = <-p.free:
				p.cur = p.cur[:0]
			case <-p.done:
				return n, errPipeAborted
			}
		}
		k := copy(p.cur[len(p.cur):cap(p.cur)], b)
		p.cur, b, n = p.cur[:len(p.cur)+k], b[k:], n+k
		if len(p.cur) == cap(p.cur) {
			if err := p.send(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// send hands the current buffer to the reader.
func (p *bufPipe) send() error {
	select {
	case p.full <- p.cur:
		p.cur = nil
		return nil
	case <-p.done:
		return errPipeAborted
	}
}

// closeWrite hands on what is left and tells the reader that nothing more
// comes. Only the writing goroutine calls it, once.
func (p *bufPipe) closeWrite() {
	if len(p.cur) > 0 {
		p.send()
	}
	close(p.full)
}

// drainTo writes everything the pipe carries to w. On a write error it
// aborts the pipe, so that the writing goroutine stops, and returns the
// error.
func (p *bufPipe) drainTo(w io.Writer) error {
	for b := range p.full {
		if _, err := w.Write(b); err != nil {
			close(p.done)
			return err
		}
		p.free <- b
	}
	return nil
}

// streamLayer is WriteLayer with the layer produced in another goroutine:
// w is only called from the calling goroutine.
func streamLayer(w io.Writer, l *gen.Layer, mtime int64, fsPaths map[store.Path]string) (digest.Digest, int64, error) {
	p := newBufPipe()
	type result struct {
		id  digest.Digest
		n   int64
		err error
	}
	res := make(chan result, 1)
	go func() {
		id, n, err := WriteLayer(p, l, mtime, fsPaths)
		p.closeWrite()
		res <- result{id, n, err}
	}()
	werr := p.drainTo(w)
	r := <-res
	if werr != nil {
		return "", 0, werr
	}
	return r.id, r.n, r.err
}
