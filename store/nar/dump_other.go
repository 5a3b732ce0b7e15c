//go:build !linux

package nar

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sync/atomic"
)

// BufferArena is 0: this version's buffers are the Go heap's.
const BufferArena = 0

// Stream walks the file, folder or symlink at path and writes to w the
// bytes f frames for each node, with the contents of every regular file
// (read once) between its Begin and End; it returns the number of bytes
// written. This portable version uses plain os calls, without the
// read-ahead goroutine of the Linux one. The length of every write to w
// is added to c's byte counter as soon as w has taken it. c may be nil.
func Stream(w io.Writer, path string, f Framer, c Counter) (int64, error) {
	if done := bytesOf(c); done != nil {
		w = &countingWriter{w, done}
	}
	pw := &portableWalk{w: w, f: f, buf: make([]byte, 128<<10)}
	err := pw.root(path)
	return pw.n, err
}

// Measure returns the number of bytes Stream would write for the tree at
// path with f, from the files' metadata alone: no file is opened for
// reading.
func Measure(path string, f Framer) (int64, error) {
	pw := &portableWalk{f: f, measure: true}
	err := pw.root(path)
	return pw.n, err
}

type portableWalk struct {
	w       io.Writer
	f       Framer
	measure bool
	n       int64
	buf     []byte
	scratch []byte
}

func (pw *portableWalk) emit(p []byte) error {
	if pw.measure {
		pw.n += int64(len(p))
		return nil
	}
	n, err := pw.w.Write(p)
	pw.n += int64(n)
	return err
}

func (pw *portableWalk) frame(begin bool, h *Header) error {
	if begin {
		pw.scratch = pw.f.Begin(pw.scratch[:0], h)
	} else {
		pw.scratch = pw.f.End(pw.scratch[:0], h)
	}
	return pw.emit(pw.scratch)
}

func (pw *portableWalk) root(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	return pw.node(path, "/", fi)
}

func (pw *portableWalk) node(fsPath, treePath string, fi fs.FileInfo) error {
	mode := fi.Mode()
	switch {
	case mode.IsRegular():
		h := &Header{Path: treePath, Type: TypeRegular, Size: fi.Size(), Executable: mode&0o100 != 0}
		if pw.measure {
			pw.n += fi.Size()
			if err := pw.frame(true, h); err != nil {
				return err
			}
			return pw.frame(false, h)
		}
		f, err := os.Open(fsPath)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pw.frame(true, h); err != nil {
			return err
		}
		n, err := io.CopyBuffer(onlyWriter{pw.w}, onlyReader{io.LimitReader(f, fi.Size())}, pw.buf)
		pw.n += n
		if err != nil {
			return fmt.Errorf("%s: %w", fsPath, err)
		}
		if n != fi.Size() {
			return fmt.Errorf("%s: file changed size while being read (%d of %d bytes)", fsPath, n, fi.Size())
		}
		return pw.frame(false, h)
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(fsPath)
		if err != nil {
			return err
		}
		h := &Header{Path: treePath, Type: TypeSymlink, LinkTarget: target}
		if err := pw.frame(true, h); err != nil {
			return err
		}
		return pw.frame(false, h)
	case mode.IsDir():
		h := &Header{Path: treePath, Type: TypeDirectory}
		if err := pw.frame(true, h); err != nil {
			return err
		}
		d, err := os.Open(fsPath)
		if err != nil {
			return err
		}
		names, err := d.Readdirnames(-1)
		d.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", fsPath, err)
		}
		slices.Sort(names)
		for _, name := range names {
			child := fsPath + string(os.PathSeparator) + name
			cfi, err := os.Lstat(child)
			if err != nil {
				return err
			}
			if err := pw.node(child, childPath(treePath, name), cfi); err != nil {
				return err
			}
		}
		return pw.frame(false, h)
	default:
		return specialFileError(fsPath, mode)
	}
}

// countingWriter adds what w takes to done.
type countingWriter struct {
	w    io.Writer
	done *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.done.Add(int64(n))
	return n, err
}
