package nar

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/storepack/storepack/internal/printable"
)

// Restore reads a NAR from r and recreates its tree at dir, which must not
// exist yet (its parent must). A root that is a regular file or a symlink
// becomes dir itself. Regular files end up mode 0444, or 0555 when
// executable; folders 0555, set once their entries are written; symlinks are
// created as they are, dangling or not. The umask plays no part.
//
// Nothing is written outside dir: names are checked by the Reader, and every
// file is created relative to its folder's open handle (os.Root), with
// O_EXCL, so no symlink is ever followed. On any error what was created is
// removed and the error names the NAR path at fault.
//
// Like `nix-store --restore`, Restore stops at the end of the root node and
// ignores what follows it; it reads r through a buffer, so it may consume
// bytes beyond the NAR (use NewReader to read a NAR out of a longer stream).
func Restore(r io.Reader, dir string) (err error) {
	nr := NewReader(bufio.NewReaderSize(r, 64<<10))
	h, err := nr.Next()
	if err != nil {
		return fmt.Errorf("restore %s: %w", dir, err)
	}
	rs := &restorer{nr: nr, dir: dir, buf: make([]byte, 64<<10)}
	defer func() {
		if err != nil {
			rs.abort()
		}
	}()
	if err := rs.root(h); err != nil {
		return err
	}
	for {
		h, err := nr.Next()
		if err == io.EOF {
			return rs.finish()
		}
		if err != nil {
			return fmt.Errorf("restore %s: %w", dir, err)
		}
		if err := rs.entry(h); err != nil {
			return err
		}
	}
}

// restorer holds the folders being filled, innermost last.
type restorer struct {
	nr      *Reader
	dir     string
	buf     []byte
	created bool // dir exists and is ours to remove on failure
	isDir   bool
	open    []openDir
}

type openDir struct {
	path string // NAR path
	root *os.Root
}

func (rs *restorer) fail(narPath string, err error) error {
	return fmt.Errorf("nar: restore %s: %s: %w", rs.dir, printable.String(narPath), err)
}

func (rs *restorer) root(h *Header) error {
	switch h.Type {
	case TypeRegular:
		f, err := os.OpenFile(rs.dir, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return rs.fail(h.Path, err)
		}
		rs.created = true
		return rs.contents(f, h)
	case TypeSymlink:
		if err := os.Symlink(h.LinkTarget, rs.dir); err != nil {
			return rs.fail(h.Path, err)
		}
		rs.created = true
		return nil
	default:
		if err := os.Mkdir(rs.dir, 0o700); err != nil {
			return rs.fail(h.Path, err)
		}
		rs.created, rs.isDir = true, true
		root, err := os.OpenRoot(rs.dir)
		if err != nil {
			return rs.fail(h.Path, err)
		}
		rs.open = append(rs.open, openDir{path: "/", root: root})
		return nil
	}
}

// entry creates one node below the root.
func (rs *restorer) entry(h *Header) error {
	i := strings.LastIndexByte(h.Path, '/')
	parent, name := h.Path[:i], h.Path[i+1:]
	if parent == "" {
		parent = "/"
	}
	for len(rs.open) > 0 && rs.open[len(rs.open)-1].path != parent {
		if err := rs.closeDir(); err != nil {
			return err
		}
	}
	if len(rs.open) == 0 { // the Reader guarantees the order; be safe anyway
		return rs.fail(h.Path, errors.New("parent folder is not open"))
	}
	top := rs.open[len(rs.open)-1].root
	switch h.Type {
	case TypeRegular:
		f, err := top.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return rs.fail(h.Path, err)
		}
		return rs.contents(f, h)
	case TypeSymlink:
		if err := top.Symlink(h.LinkTarget, name); err != nil {
			return rs.fail(h.Path, err)
		}
		return nil
	default:
		if err := top.Mkdir(name, 0o700); err != nil {
			return rs.fail(h.Path, err)
		}
		sub, err := top.OpenRoot(name)
		if err != nil {
			return rs.fail(h.Path, err)
		}
		rs.open = append(rs.open, openDir{path: h.Path, root: sub})
		return nil
	}
}

// contents writes a regular file's contents into f, sets its mode and
// closes it.
func (rs *restorer) contents(f *os.File, h *Header) error {
	_, err := io.CopyBuffer(onlyWriter{f}, onlyReader{rs.nr}, rs.buf)
	if err != nil {
		f.Close()
		return rs.fail(h.Path, err)
	}
	mode := os.FileMode(0o444)
	if h.Executable {
		mode = 0o555
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return rs.fail(h.Path, err)
	}
	if err := f.Close(); err != nil {
		return rs.fail(h.Path, err)
	}
	return nil
}

// closeDir makes the innermost open folder read-only and closes it.
func (rs *restorer) closeDir() error {
	d := rs.open[len(rs.open)-1]
	rs.open = rs.open[:len(rs.open)-1]
	err := d.root.Chmod(".", 0o555)
	if cerr := d.root.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return rs.fail(d.path, err)
	}
	return nil
}

func (rs *restorer) finish() error {
	for len(rs.open) > 0 {
		if err := rs.closeDir(); err != nil {
			return err
		}
	}
	return nil
}

// abort removes everything created, making folders writable first.
func (rs *restorer) abort() {
	for _, d := range rs.open {
		d.root.Close()
	}
	rs.open = nil
	if !rs.created {
		return
	}
	if rs.isDir {
		filepath.WalkDir(rs.dir, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				os.Chmod(p, 0o700)
			}
			return nil
		})
		os.RemoveAll(rs.dir)
		return
	}
	os.Remove(rs.dir)
}

// onlyWriter hides an *os.File's ReadFrom from io.CopyBuffer, which would
// otherwise ignore the buffer.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }
