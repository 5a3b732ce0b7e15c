package nar

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// writerBuf is the size of the Writer's buffer: headers and small contents
// collect there; larger contents go straight to the underlying writer.
const writerBuf = 128 << 10

// Writer writes a NAR to an underlying stream. Call WriteHeader for each node
// in NAR order (a folder before its entries, entries in byte order of their
// names), Write for a regular file's contents, then Close. It refuses what a
// Reader would refuse: bad names, unsorted entries, empty symlink targets.
type Writer struct {
	w       io.Writer
	buf     []byte   // pending bytes, at most writerBuf before a flush
	dirs    []string // open folders, innermost last
	last    []string // last entry name written in each open folder
	started bool     // root header written
	done    bool     // root finished (non-folder root written, or Close)
	inFile  bool     // a regular file's contents are being written
	remain  int64    // content bytes still expected for the current file
	pad     int      // padding owed after the current file's contents
	err     error    // sticky error
}

// NewWriter returns a Writer that writes a NAR to w.
func NewWriter(w io.Writer) *Writer {
	nw := &Writer{w: w, buf: make([]byte, 0, writerBuf)}
	nw.str(Magic)
	return nw
}

func (w *Writer) u64(n uint64) { w.buf = binary.LittleEndian.AppendUint64(w.buf, n) }

func (w *Writer) str(s string) { w.buf = appendString(w.buf, s) }

func (w *Writer) flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) > 0 {
		_, w.err = w.w.Write(w.buf)
		w.buf = w.buf[:0]
	}
	return w.err
}

// fail records err as the Writer's sticky error and returns it.
func (w *Writer) fail(err error) error {
	w.err = err
	return err
}

// WriteHeader starts a new node. The previous regular file must have been
// written in full. h.Path is "/" (or "") for the root, then "/name",
// "/name/sub" and so on.
func (w *Writer) WriteHeader(h *Header) error {
	if w.err != nil {
		return w.err
	}
	if w.remain > 0 {
		return w.fail(fmt.Errorf("nar: %s: header written with %d bytes of the previous file missing", h.Path, w.remain))
	}
	w.endFile()
	if w.done {
		return w.fail(fmt.Errorf("nar: %s: header after the root node is complete", h.Path))
	}
	switch h.Type {
	case TypeRegular:
		if h.Size < 0 {
			return w.fail(fmt.Errorf("nar: %s: negative size %d", h.Path, h.Size))
		}
	case TypeSymlink:
		if err := checkTarget(h.LinkTarget); err != nil {
			return w.fail(fmt.Errorf("nar: %s: %w", h.Path, err))
		}
	case TypeDirectory:
	default:
		return w.fail(fmt.Errorf("nar: %s: unknown node type %d", h.Path, h.Type))
	}
	if !w.started {
		if h.Path != "/" && h.Path != "" {
			return w.fail(fmt.Errorf("nar: first node is %q, want the root \"/\"", h.Path))
		}
		w.started = true
	} else {
		name, err := w.placeEntry(h.Path)
		if err != nil {
			return w.fail(err)
		}
		w.str("entry")
		w.str("(")
		w.str("name")
		w.str(name)
		w.str("node")
	}
	w.str("(")
	w.str("type")
	switch h.Type {
	case TypeRegular:
		w.str("regular")
		if h.Executable {
			w.str("executable")
			w.str("")
		}
		w.str("contents")
		w.u64(uint64(h.Size))
		w.inFile, w.remain, w.pad = true, h.Size, padding(int(h.Size%8))
		w.endFile()
	case TypeSymlink:
		w.str("symlink")
		w.str("target")
		w.str(h.LinkTarget)
		w.str(")")
		w.closeNode()
	case TypeDirectory:
		w.str("directory")
		w.dirs = append(w.dirs, strings.TrimSuffix(h.Path, "/"))
		w.last = append(w.last, "")
	}
	if len(w.buf) >= writerBuf-8*1024 {
		return w.flush()
	}
	return nil
}

// placeEntry closes the folders that p is not in and checks that p's
// name sorts after its previous sibling.
func (w *Writer) placeEntry(p string) (string, error) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 || !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("nar: path %q is not absolute within the archive", p)
	}
	parent, name := p[:i], p[i+1:]
	if err := checkName(name); err != nil {
		return "", fmt.Errorf("nar: %s: %w", p, err)
	}
	for len(w.dirs) > 0 && w.dirs[len(w.dirs)-1] != parent {
		w.str(")") // close the folder node
		w.dirs = w.dirs[:len(w.dirs)-1]
		w.last = w.last[:len(w.last)-1]
		w.str(")") // close the entry holding it
	}
	if len(w.dirs) == 0 {
		return "", fmt.Errorf("nar: %s: parent %q is not an open folder", p, parent)
	}
	top := len(w.last) - 1
	if w.last[top] != "" && name <= w.last[top] {
		return "", fmt.Errorf("nar: %s: entry %s does not sort after %s", p, quote(name), quote(w.last[top]))
	}
	w.last[top] = name
	return name, nil
}

// closeNode ends an entry (or the root) after a non-folder node.
func (w *Writer) closeNode() {
	if len(w.dirs) > 0 {
		w.str(")") // close the entry
	} else {
		w.done = true
	}
}

// endFile closes the current regular file once all its contents are in.
func (w *Writer) endFile() {
	if w.inFile && w.remain == 0 {
		w.buf = append(w.buf, zeros[:w.pad]...)
		w.inFile = false
		w.str(")")
		w.closeNode()
	}
}

// Write writes contents of the current regular file. Small writes are
// buffered; large ones go straight to the underlying writer.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if !w.inFile || int64(len(p)) > w.remain {
		return 0, fmt.Errorf("nar: write of %d bytes past the file's size (%d bytes left)", len(p), w.remain)
	}
	if len(p) <= cap(w.buf)-len(w.buf) {
		w.buf = append(w.buf, p...)
		w.remain -= int64(len(p))
		return len(p), nil
	}
	if err := w.flush(); err != nil {
		return 0, err
	}
	if len(p) < cap(w.buf) {
		w.buf = append(w.buf, p...)
		w.remain -= int64(len(p))
		return len(p), nil
	}
	n, err := w.w.Write(p)
	w.remain -= int64(n)
	if err != nil {
		w.err = err
	}
	return n, err
}

// Close finishes the archive: it closes open folders and flushes. It does
// not close the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.remain > 0 {
		return w.fail(fmt.Errorf("nar: %d bytes of the last file missing", w.remain))
	}
	if !w.started {
		return w.fail(errors.New("nar: no root node written"))
	}
	w.endFile()
	for len(w.dirs) > 0 {
		w.str(")")
		w.dirs = w.dirs[:len(w.dirs)-1]
		w.last = w.last[:len(w.last)-1]
		if len(w.dirs) > 0 {
			w.str(")")
		}
	}
	w.done = true
	return w.flush()
}
