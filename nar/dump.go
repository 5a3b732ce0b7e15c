package nar

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// Dump writes the NAR serialisation of the file, folder or symlink at path
// to w, as `nix-store --dump` does. Sockets, FIFOs and devices are errors
// naming the path.
func Dump(w io.Writer, path string) error {
	nw := NewWriter(w)
	if err := dumpTree(nw, path, "/"); err != nil {
		return err
	}
	return nw.Close()
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256*1024); return &b }}

func dumpTree(nw *Writer, fsPath, narPath string) error {
	fi, err := os.Lstat(fsPath)
	if err != nil {
		return err
	}
	return dumpNode(nw, fsPath, narPath, fi)
}

func dumpNode(nw *Writer, fsPath, narPath string, fi fs.FileInfo) error {
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
		bp := copyBufs.Get().(*[]byte)
		defer copyBufs.Put(bp)
		n, err := io.CopyBuffer(onlyWriter{nw}, io.LimitReader(f, fi.Size()), *bp)
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
			child := filepath.Join(fsPath, name)
			if err := dumpTree(nw, child, base+"/"+name); err != nil {
				return err
			}
		}
		return nil
	default:
		return fmt.Errorf("%s: %s is not allowed in a store item (only regular files, folders and symlinks)", fsPath, fileKind(mode))
	}
}

func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "a special file"
}

// onlyWriter hides ReadFrom so io.CopyBuffer uses the buffer.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }
