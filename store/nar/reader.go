package nar

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// FormatError is returned by a Reader for input that is not a well-formed
// NAR, or that ends early. Offset is the position in the input of the token
// at fault; Path is the node being read ("" before the root).
type FormatError struct {
	Offset int64
	Path   string
	Reason string
	Err    error // an underlying cause such as io.ErrUnexpectedEOF, or nil
}

func (e *FormatError) Error() string {
	s := fmt.Sprintf("nar: byte %d", e.Offset)
	if e.Path != "" {
		s += " (" + e.Path + ")"
	}
	s += ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying cause.
func (e *FormatError) Unwrap() error { return e.Err }

// Reader reads a NAR as a sequence of nodes, like archive/tar: Next returns
// each node's Header in NAR order, Read returns the contents of the current
// regular file.
//
// It accepts exactly the canonical serialisation that Nix writes and
// refuses, with a *FormatError, everything Nix refuses and a little more: a
// wrong magic, non-zero padding, entry names that are empty, ".", "..",
// contain '/' or NUL or exceed 255 bytes, entries not in strictly increasing
// byte order of their names (duplicates included), unknown or misplaced
// tokens (Nix 2.8 tolerates some reorderings that no Nix ever writes; the
// Reader does not), symlink targets that are empty, contain NUL or exceed
// 4095 bytes, folders nested more than 256 deep, and input that ends early.
// Token lengths are checked before anything is allocated, so a hostile
// length costs nothing.
//
// The Reader never reads past the end of the NAR: once Next has returned
// io.EOF the underlying reader is positioned just after the root node, so a
// NAR can be read out of a longer stream (an export bundle); whatever
// follows is left to the caller. It reads the input in small pieces, so
// give it a buffered reader (bufio.Reader) when reads are costly.
type Reader struct {
	r      io.Reader
	off    int64 // bytes consumed from r
	tok    [8 + maxTarget + 8]byte
	dirs   []readDir // open folders, innermost last
	cur    Header    // the current node
	state  readState
	remain int64 // unread contents of the current regular file
	err    error // sticky
	// base is added to the offsets of errors: where the NAR starts in a
	// longer stream (a bundle read by a BundleReader).
	base int64
}

// readDir is an open folder: its path and its last entry name.
type readDir struct {
	path string
	last string
}

type readState uint8

const (
	stateStart   readState = iota // nothing read
	stateFile                     // in a regular file's contents
	stateSymlink                  // after a symlink's target
	stateDir                      // inside a folder, before its next entry or end
	stateDone                     // root complete
)

// NewReader returns a Reader reading a NAR from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: r}
}

// Offset returns the number of bytes consumed from the underlying reader.
// After Next has returned io.EOF it is the length of the NAR.
func (r *Reader) Offset() int64 { return r.off }

// Next advances to the next node, skipping what is left of the current
// file's contents, and returns its header. It returns io.EOF once the root
// node is complete. The Header is the Reader's own and changes on the next
// call.
func (r *Reader) Next() (*Header, error) {
	if r.err != nil {
		return nil, r.err
	}
	h, err := r.next()
	if err != nil {
		r.err = err
		return nil, err
	}
	return h, nil
}

func (r *Reader) next() (*Header, error) {
	switch r.state {
	case stateStart:
		if err := r.magic(); err != nil {
			return nil, err
		}
		return r.node("/")
	case stateDone:
		return nil, io.EOF
	case stateFile:
		if err := r.skipContents(); err != nil {
			return nil, err
		}
		if err := r.expect(")"); err != nil {
			return nil, err
		}
		if err := r.endNode(); err != nil {
			return nil, err
		}
	case stateSymlink:
		if err := r.expect(")"); err != nil {
			return nil, err
		}
		if err := r.endNode(); err != nil {
			return nil, err
		}
	}
	// Inside a folder: an entry or the folder's end, repeatedly.
	for r.state == stateDir {
		top := &r.dirs[len(r.dirs)-1]
		r.cur.Path = top.path
		at := r.off
		tag, err := r.token(maxTag, "tag")
		if err != nil {
			return nil, err
		}
		switch tag {
		case ")":
			r.dirs = r.dirs[:len(r.dirs)-1]
			if err := r.endNode(); err != nil {
				return nil, err
			}
			continue
		case "entry":
		default:
			return nil, r.errAt(at, fmt.Sprintf("expected \"entry\" or \")\", got %s", quote(tag)))
		}
		if err := r.expect("("); err != nil {
			return nil, err
		}
		if err := r.expect("name"); err != nil {
			return nil, err
		}
		at = r.off
		name, err := r.token(maxName, "entry name")
		if err != nil {
			return nil, err
		}
		if err := checkName(name); err != nil {
			return nil, r.errAt(at, err.Error())
		}
		if top.last != "" && name <= top.last {
			why := "is not sorted after"
			if name == top.last {
				why = "duplicates"
			}
			return nil, r.errAt(at, fmt.Sprintf("entry %s %s the previous entry %s", quote(name), why, quote(top.last)))
		}
		top.last = name
		path := top.path + "/" + name
		if top.path == "/" {
			path = "/" + name
		}
		r.cur.Path = path
		if err := r.expect("node"); err != nil {
			return nil, err
		}
		return r.node(path)
	}
	return nil, io.EOF
}

// magic reads the archive's first token.
func (r *Reader) magic() error {
	n, err := r.u64("magic")
	if err != nil {
		return err
	}
	const padded = len(Magic) + (8-len(Magic)%8)%8
	if n != uint64(len(Magic)) {
		return r.errAt(0, "not a NAR: no \"nix-archive-1\" magic")
	}
	if err := r.full(r.tok[:padded], 0, "magic"); err != nil {
		return err
	}
	if string(r.tok[:padded]) != Magic+string(zeros[:padded-len(Magic)]) {
		return r.errAt(0, "not a NAR: no \"nix-archive-1\" magic")
	}
	return nil
}

// node reads a node's opening tokens up to its contents, target or
// entries.
func (r *Reader) node(path string) (*Header, error) {
	r.cur = Header{Path: path}
	if err := r.expect("("); err != nil {
		return nil, err
	}
	if err := r.expect("type"); err != nil {
		return nil, err
	}
	at := r.off
	typ, err := r.token(maxTag, "node type")
	if err != nil {
		return nil, err
	}
	switch typ {
	case "regular":
		r.cur.Type = TypeRegular
		at = r.off
		tag, err := r.token(maxTag, "tag")
		if err != nil {
			return nil, err
		}
		if tag == "executable" {
			r.cur.Executable = true
			at = r.off
			v, err := r.token(maxTag, "executable marker")
			if err != nil {
				return nil, err
			}
			if v != "" {
				return nil, r.errAt(at, fmt.Sprintf("executable marker has the non-empty value %s", quote(v)))
			}
			at = r.off
			if tag, err = r.token(maxTag, "tag"); err != nil {
				return nil, err
			}
		}
		if tag != "contents" {
			return nil, r.errAt(at, fmt.Sprintf("expected \"contents\", got %s", quote(tag)))
		}
		at = r.off
		size, err := r.u64("contents size")
		if err != nil {
			return nil, err
		}
		if size > math.MaxInt64 {
			return nil, r.errAt(at, fmt.Sprintf("contents size %d does not fit in a file", size))
		}
		r.cur.Size = int64(size)
		r.remain = r.cur.Size
		r.state = stateFile
	case "symlink":
		r.cur.Type = TypeSymlink
		if err := r.expect("target"); err != nil {
			return nil, err
		}
		at = r.off
		target, err := r.token(maxTarget, "symlink target")
		if err != nil {
			return nil, err
		}
		if err := checkTarget(target); err != nil {
			return nil, r.errAt(at, err.Error())
		}
		r.cur.LinkTarget = target
		r.state = stateSymlink
	case "directory":
		r.cur.Type = TypeDirectory
		if len(r.dirs) > maxDepth {
			return nil, r.errAt(at, fmt.Sprintf("folders nested deeper than %d", maxDepth))
		}
		r.dirs = append(r.dirs, readDir{path: path})
		r.state = stateDir
	default:
		return nil, r.errAt(at, fmt.Sprintf("unknown node type %s", quote(typ)))
	}
	return &r.cur, nil
}

// endNode follows a node's closing token: the entry holding it closes, or
// the archive is complete.
func (r *Reader) endNode() error {
	if len(r.dirs) == 0 {
		r.state = stateDone
		return nil
	}
	r.state = stateDir
	r.cur.Path = r.dirs[len(r.dirs)-1].path
	return r.expect(")")
}

// Read reads the contents of the current regular file. It returns io.EOF
// at the end of the contents, and at once for other node types.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.state != stateFile || r.remain == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.remain {
		p = p[:r.remain]
	}
	n, err := r.r.Read(p)
	r.off += int64(n)
	r.remain -= int64(n)
	switch {
	case err == io.EOF && r.remain > 0:
		err = r.errAt(r.off, fmt.Sprintf("input ends %d bytes before the end of the contents", r.remain), io.ErrUnexpectedEOF)
		r.err = err
	case err == io.EOF:
		err = nil
	case err != nil:
		err = r.errAt(r.off, "reading contents", err)
		r.err = err
	}
	if r.remain == 0 && err == nil {
		return n, io.EOF
	}
	return n, err
}

// skipContents discards the rest of the current file and reads its
// padding.
func (r *Reader) skipContents() error {
	if r.remain > 0 {
		var buf [32 << 10]byte
		for r.remain > 0 {
			p := buf[:]
			if int64(len(p)) > r.remain {
				p = p[:r.remain]
			}
			if _, err := r.Read(p); err != nil && err != io.EOF {
				return err
			}
		}
	}
	if pad := padding(int(r.cur.Size % 8)); pad > 0 {
		at := r.off
		if err := r.full(r.tok[:pad], at, "padding"); err != nil {
			return err
		}
		if string(r.tok[:pad]) != string(zeros[:pad]) {
			return r.errAt(at, "non-zero padding after the contents")
		}
	}
	return nil
}

// full reads exactly len(p) bytes; errors point at offset at, the start
// of the token being read.
func (r *Reader) full(p []byte, at int64, what string) error {
	n, err := io.ReadFull(r.r, p)
	r.off += int64(n)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return r.errAt(at, "input ends in the "+what, io.ErrUnexpectedEOF)
	}
	if err != nil {
		return r.errAt(at, "reading the "+what, err)
	}
	return nil
}

func (r *Reader) u64(what string) (uint64, error) {
	if err := r.full(r.tok[:8], r.off, what); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(r.tok[:8]), nil
}

// token reads a string token of at most max bytes. The result aliases the
// Reader's buffer only through the conversion to string, which copies.
func (r *Reader) token(max int, what string) (string, error) {
	at := r.off
	n, err := r.u64(what)
	if err != nil {
		return "", err
	}
	if n > uint64(max) {
		if max == maxTag {
			return "", r.errAt(at, fmt.Sprintf("%s of %d bytes where a token of at most %d was expected", what, n, max))
		}
		return "", r.errAt(at, fmt.Sprintf("%s of %d bytes is longer than %d", what, n, max))
	}
	l := int(n)
	padded := l + padding(l)
	if err := r.full(r.tok[:padded], at, what); err != nil {
		return "", err
	}
	if string(r.tok[l:padded]) != string(zeros[:padded-l]) {
		return "", r.errAt(at, fmt.Sprintf("non-zero padding after the %s", what))
	}
	return string(r.tok[:l]), nil
}

// expect reads a token that must be want.
func (r *Reader) expect(want string) error {
	at := r.off
	s, err := r.token(maxTag, quote(want))
	if err != nil {
		return err
	}
	if s != want {
		return r.errAt(at, fmt.Sprintf("expected %s, got %s", quote(want), quote(s)))
	}
	return nil
}

func (r *Reader) errAt(off int64, reason string, cause ...error) error {
	e := &FormatError{Offset: r.base + off, Path: r.cur.Path, Reason: reason}
	if len(cause) > 0 {
		e.Err = cause[0]
	}
	return e
}

// Copy reads the NAR from r and writes the same nodes to w, which then holds
// the same bytes, and closes w (not its underlying writer). It is how a NAR
// from an untrusted source is checked while it is passed on.
func Copy(w *Writer, r *Reader) error {
	buf := make([]byte, 64<<10)
	for {
		h, err := r.Next()
		if err == io.EOF {
			return w.Close()
		}
		if err != nil {
			return err
		}
		if err := w.WriteHeader(h); err != nil {
			return err
		}
		if h.Type == TypeRegular {
			if _, err := io.CopyBuffer(w, onlyReader{r}, buf); err != nil {
				return err
			}
		}
	}
}

// onlyReader hides a Reader's other methods from io.CopyBuffer.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }
