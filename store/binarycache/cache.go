package binarycache

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/storepack/storepack/internal/atomicfile"
	"github.com/storepack/storepack/internal/bounded"
	"github.com/storepack/storepack/internal/printable"
)

// Reader reads the files of a binary cache: a folder (Dir) or an S3
// bucket (S3). Names are relative to the cache, with forward slashes
// ("nix-cache-info", "<hash>.narinfo", "nar/<file>").
type Reader interface {
	// String names the cache in messages (an S3 URL without
	// credentials).
	String() string
	// Open returns the file rel; an error wrapping fs.ErrNotExist when
	// the cache has none.
	Open(ctx context.Context, rel string) (io.ReadCloser, error)
	// Size returns the size of the file rel; an error wrapping
	// fs.ErrNotExist when the cache has none.
	Size(ctx context.Context, rel string) (int64, error)
	// NarInfos lists the names of the cache's narinfo files, sorted.
	NarInfos(ctx context.Context) ([]string, error)
	// Location is where the file rel is, for messages and file lists:
	// a path in the folder, or an s3:// URL.
	Location(rel string) string
}

// absentLister is a cache that tells at once which of many files right
// under it are missing: an S3 bucket lists a thousand names in one
// request, where asking for each missing narinfo takes a request apiece
// (and, where the server closes every connection, a connection).
type absentLister interface {
	// Absent returns those of names that the cache surely lacks. It may
	// leave out some it lacks (those are then asked for one by one), and
	// returns nil when it cannot tell.
	Absent(ctx context.Context, names []string) map[string]bool
}

// Cache is a binary cache that Write adds to: a Reader that also writes.
type Cache interface {
	Reader
	// Prepare is called once before a Write: it makes a missing folder,
	// or checks that the bucket is there and reachable with the
	// credentials at hand.
	Prepare(ctx context.Context) error
	// PutNew writes the small file rel (nix-cache-info, a narinfo) when
	// the cache has none; created is false, and nothing is written,
	// when it has one.
	PutNew(ctx context.Context, rel string, data []byte) (created bool, err error)
	// CreateNAR starts the compressed NAR of it, whose name (its file
	// hash) is known only once it is written.
	CreateNAR(ctx context.Context, it *Item, compression string) (NARFile, error)
	// Remove removes the file rel (a NAR this run added).
	Remove(ctx context.Context, rel string) error
}

// NARFile is a NAR being written into a cache, under a temporary name.
type NARFile interface {
	io.Writer
	// Commit puts the NAR written at rel, whose size is size. written
	// is false when the cache already had a file of that name and size
	// (named by its hash, so the same bytes), which is then kept.
	Commit(ctx context.Context, rel string, size int64) (written bool, err error)
	// Abort drops what was written; it does nothing after Commit.
	Abort()
}

// Open returns the cache at loc: an s3:// URL (see ParseS3URL) or a
// folder.
func Open(loc string) (Cache, error) {
	if IsS3(loc) {
		return NewS3(loc)
	}
	return Dir(loc), nil
}

// Dir is a binary cache folder.
type Dir string

func (d Dir) file(rel string) string { return filepath.Join(string(d), filepath.FromSlash(rel)) }

// String is the folder.
func (d Dir) String() string { return string(d) }

// Location is the path of rel in the folder.
func (d Dir) Location(rel string) string { return d.file(rel) }

// Open opens the file rel.
func (d Dir) Open(_ context.Context, rel string) (io.ReadCloser, error) {
	return bounded.Open(d.file(rel)) // regular files only: no FIFO, no device
}

// Size is the size of rel, which must be a regular file.
func (d Dir) Size(_ context.Context, rel string) (int64, error) {
	fi, err := os.Stat(d.file(rel))
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", d.file(rel))
	}
	return fi.Size(), nil
}

// NarInfos lists the folder's narinfo files (temporary files, starting
// with a dot, left out).
func (d Dir) NarInfos(context.Context) ([]string, error) {
	entries, err := os.ReadDir(string(d))
	if err != nil {
		return nil, fmt.Errorf("binary cache %s: %w", d, err)
	}
	var names []string
	for _, e := range entries {
		if n := e.Name(); strings.HasSuffix(n, ".narinfo") && !strings.HasPrefix(n, ".") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, nil
}

// Prepare makes the folder and its nar folder.
func (d Dir) Prepare(context.Context) error {
	if err := os.MkdirAll(d.file("nar"), 0o777); err != nil {
		return fmt.Errorf("binary cache folder %s: %w", d, err)
	}
	return nil
}

// PutNew writes rel through a temporary file linked into place, which
// never replaces a file that appeared meanwhile (atomicfile.CommitNew).
func (d Dir) PutNew(_ context.Context, rel string, data []byte) (bool, error) {
	file := d.file(rel)
	if _, err := os.Lstat(file); err == nil {
		return false, nil
	}
	f, err := atomicfile.Create(file, 0o644)
	if err != nil {
		return false, fmt.Errorf("binary cache: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return false, err
	}
	return f.CommitNew()
}

// Remove removes rel.
func (d Dir) Remove(_ context.Context, rel string) error { return os.Remove(d.file(rel)) }

// fileBuffers are the 1 MiB buffers in front of NAR files, kept for the
// next NAR rather than made anew for each.
var fileBuffers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 1<<20) }}

// CreateNAR makes a temporary file ".tmp-*" in the nar folder, written
// through a 1 MiB buffer.
func (d Dir) CreateNAR(_ context.Context, it *Item, _ string) (NARFile, error) {
	tmp, err := atomicfile.CreateIn(d.file("nar"), atomicfile.UnnamedPattern(it.Path.HashPart()), "", 0o644)
	if err != nil {
		return nil, fmt.Errorf("binary cache: %w", err)
	}
	buf := fileBuffers.Get().(*bufio.Writer)
	buf.Reset(tmp)
	return &dirNAR{d: d, tmp: tmp, buf: buf}, nil
}

// dirNAR is a NAR file being written in a cache folder.
type dirNAR struct {
	d   Dir
	tmp *atomicfile.File
	buf *bufio.Writer // nil once given back
}

func (n *dirNAR) Write(p []byte) (int, error) { return n.buf.Write(p) }

// release gives the buffer back.
func (n *dirNAR) release() {
	if n.buf != nil {
		n.buf.Reset(nil)
		fileBuffers.Put(n.buf)
		n.buf = nil
	}
}

func (n *dirNAR) Abort() {
	n.release()
	n.tmp.Abort()
}

func (n *dirNAR) Commit(_ context.Context, rel string, size int64) (bool, error) {
	err := n.buf.Flush()
	n.release()
	if err != nil {
		n.tmp.Abort()
		return false, err
	}
	final := n.d.file(rel)
	if fi, err := os.Stat(final); err == nil && fi.Mode().IsRegular() && fi.Size() == size {
		n.tmp.Abort()
		return false, nil // named by its hash: the same bytes are there
	}
	if err := n.tmp.CommitAs(final); err != nil {
		return false, err
	}
	return true, nil
}

// readSmall reads the small file rel (a narinfo, nix-cache-info) of c,
// at most 1 MiB; nil and no error when c has none.
func readSmall(ctx context.Context, c Reader, rel string) ([]byte, error) {
	b, err := readFile(ctx, c, rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// readFile reads the small file rel of c, at most 1 MiB; an error
// wrapping fs.ErrNotExist when c has none.
func readFile(ctx context.Context, c Reader, rel string) ([]byte, error) {
	rc, err := c.Open(ctx, rel)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	limit := int64(bounded.NarInfo)
	if rel == CacheInfoFile {
		limit = bounded.CacheInfo
	}
	b, err := bounded.ReadAll(rc, limit)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", printable.String(c.Location(rel)), err)
	}
	return b, nil
}
