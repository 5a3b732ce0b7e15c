//go:build !linux

package nar

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
)

// countingWriter counts the bytes passed to w.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// dump is the portable walk: plain os calls feeding a Writer, without the
// read-ahead goroutine of the Linux version.
func dump(w io.Writer, path string) (int64, error) {
	cw := &countingWriter{w: w}
	nw := NewWriter(cw)
	fi, err := os.Lstat(path)
	if err != nil {
		return cw.n, err
	}
	if err := dumpNode(nw, path, "/", fi, make([]byte, 128<<10)); err != nil {
		return cw.n, err
	}
	err = nw.Close()
	return cw.n, err
}

func dumpNode(nw *Writer, fsPath, narPath string, fi fs.FileInfo, buf []byte) error {
	mode := fi.Mode()
	switch {
	case mode.IsRegular():
		f, err := os.Open(fsPath)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := nw.WriteHeader(&Header{Path: narPath, Type: TypeRegular, Size: fi.Size(), Executable: mode&0o100 != 0}); err != nil {
			return err
		}
		n, err := io.CopyBuffer(onlyWriter{nw}, onlyReader{io.LimitReader(f, fi.Size())}, buf)
		if err != nil {
			return fmt.Errorf("%s: %w", fsPath, err)
		}
		if n != fi.Size() {
			return fmt.Errorf("%s: file changed size while being read (%d of %d bytes)", fsPath, n, fi.Size())
		}
		return nil
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(fsPath)
		if err != nil {
			return err
		}
		return nw.WriteHeader(&Header{Path: narPath, Type: TypeSymlink, LinkTarget: target})
	case mode.IsDir():
		if err := nw.WriteHeader(&Header{Path: narPath, Type: TypeDirectory}); err != nil {
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
		base := narPath
		if base == "/" {
			base = ""
		}
		for _, name := range names {
			child := fsPath + string(os.PathSeparator) + name
			cfi, err := os.Lstat(child)
			if err != nil {
				return err
			}
			if err := dumpNode(nw, child, base+"/"+name, cfi, buf); err != nil {
				return err
			}
		}
		return nil
	default:
		return specialFileError(fsPath, mode)
	}
}
