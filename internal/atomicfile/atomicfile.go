// Package atomicfile writes files so that a final name only ever holds a
// whole file: each file is written under a temporary name in its folder,
// synced, given its mode and only then renamed (or linked) to its final
// name. On any error, or when the writer gives up, the temporary file is
// removed and the final name is untouched. Exports, binary caches, the
// layer cache, lock files and `storepack fmt` all write through it.
//
// It is also the one home of temporary names, by which whoever cleans up
// after a killed writer knows what to remove: what will be named final is
// made under a name starting with TempPrefix(final), ".<base name>.tmp-",
// in final's folder; a file whose final name is known only once written
// (a blob named by its digest) under one starting with UnnamedPrefix,
// ".tmp-".
package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// UnnamedPrefix starts the temporary names of files whose final name is
// not known when they are created (CreateIn with final "", committed with
// CommitAs): layer cache blobs, a binary cache's NAR files.
const UnnamedPrefix = ".tmp-"

// TempPrefix starts the temporary names of final in its folder:
// ".<base name>.tmp-". A writer that needs more temporary files or
// folders for one output (a deb's data, an rpm's spools) starts their
// names with it too.
func TempPrefix(final string) string { return "." + filepath.Base(final) + UnnamedPrefix }

// TempPattern is the os.CreateTemp or os.MkdirTemp pattern of a temporary
// name of final: TempPrefix(final) and a random part.
func TempPattern(final string) string { return TempPrefix(final) + "*" }

// UnnamedPattern is the os.CreateTemp pattern of a temporary name of a
// file whose final name is not known yet: UnnamedPrefix, then tag and "-"
// when tag is not "", then a random part.
func UnnamedPattern(tag string) string {
	if tag == "" {
		return UnnamedPrefix + "*"
	}
	return UnnamedPrefix + tag + "-*"
}

// TempName returns a new temporary name of final, in final's folder:
// TempPrefix(final) and 16 random hex digits. It creates nothing: it is
// for what other code makes at a path that must not exist yet (a NAR
// unpacked into a folder).
func TempName(final string) string {
	var rnd [8]byte
	rand.Read(rnd[:])
	return filepath.Join(filepath.Dir(final), TempPrefix(final)+hex.EncodeToString(rnd[:]))
}

// File is a file being written under a temporary name. Write to it (it
// is an *os.File), then Commit, CommitAs or CommitNew it; Abort, which may
// be deferred, removes it unless it was committed.
type File struct {
	*os.File
	final string
	perm  fs.FileMode
	sync  bool
	done  bool
}

// Option changes how a file is written.
type Option func(*File)

// NoSync skips the fsync before the rename: for caches, whose files
// another run simply makes again when a crash loses them.
func NoSync(f *File) { f.sync = false }

// Create starts writing the file final, with mode perm once committed:
// the temporary file is ".<base name>.tmp-*" in final's folder, so that
// whoever cleans up after a killed writer knows it by its name.
func Create(final string, perm fs.FileMode, opts ...Option) (*File, error) {
	return CreateIn(filepath.Dir(final), TempPattern(final), final, perm, opts...)
}

// CreateIn starts writing a file in dir whose temporary name follows
// pattern (as os.CreateTemp's) and whose final name is final, or, when
// final is "", the name given later to CommitAs (a blob named by its
// digest, known once written).
func CreateIn(dir, pattern, final string, perm fs.FileMode, opts ...Option) (*File, error) {
	tmp, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	f := &File{File: tmp, final: final, perm: perm, sync: true}
	for _, o := range opts {
		o(f)
	}
	return f, nil
}

// finish gives the temporary file its mode, syncs and closes it.
func (f *File) finish() error {
	if f.done {
		return errors.New("atomicfile: already committed or aborted")
	}
	if err := f.Chmod(f.perm); err != nil {
		return err
	}
	if f.sync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("%s: %w", f.Name(), err)
		}
	}
	return f.Close()
}

// Commit finishes the file and renames it to its final name, replacing
// what was there. On error the temporary file is removed.
func (f *File) Commit() error { return f.CommitAs(f.final) }

// CommitAs is Commit to the final name final, which must be in the
// temporary file's folder.
func (f *File) CommitAs(final string) error {
	if final == "" {
		f.Abort()
		return errors.New("atomicfile: no final name to commit to")
	}
	err := f.finish()
	if err == nil {
		err = os.Rename(f.Name(), final)
	}
	if err != nil {
		f.Abort()
		return err
	}
	f.done = true
	return nil
}

// CommitNew is Commit that never replaces a file: the final name is a
// hard link to the finished file, made only when nothing has that name
// (else created is false and the temporary file is dropped). Where the
// file system has no hard links, it renames after checking that the name
// is free.
func (f *File) CommitNew() (created bool, err error) {
	defer f.Abort()
	if err := f.finish(); err != nil {
		return false, err
	}
	err = os.Link(f.Name(), f.final)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrExist):
		return false, nil
	}
	if _, err := os.Lstat(f.final); err == nil {
		return false, nil
	}
	if err := os.Rename(f.Name(), f.final); err != nil {
		return false, err
	}
	f.done = true
	return true, nil
}

// Abort removes the temporary file, unless the file was committed.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.Close()
	os.Remove(f.Name())
}

// WriteFile writes data to the file name, mode perm, atomically.
func WriteFile(name string, data []byte, perm fs.FileMode, opts ...Option) error {
	f, err := Create(name, perm, opts...)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}

// IsTemp reports whether the base name name is a temporary name this
// package gives: TempPrefix's ".<name>.tmp-..." or UnnamedPrefix's
// ".tmp-...".
func IsTemp(name string) bool {
	return strings.HasPrefix(name, UnnamedPrefix) || strings.HasPrefix(name, ".") && strings.Contains(name, UnnamedPrefix)
}

// RemoveTemps removes every temporary file or folder (IsTemp) in dir and,
// when deep, in the folders below it, making read-only folders writable
// first; it returns the first error but goes on. Only whoever knows that
// no live writer owns them may call it (the holder of an output folder's
// lock, a run that knows itself alone).
func RemoveTemps(dir string, deep bool) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	var first error
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		switch {
		case IsTemp(e.Name()):
			if err := RemoveAll(p); err != nil && first == nil {
				first = err
			}
		case deep && e.IsDir():
			if err := RemoveTemps(p, true); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// RemoveAll removes p and what it holds, as os.RemoveAll, after making
// its folders writable (unpacked store items have read-only ones).
func RemoveAll(p string) error {
	filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(q, 0o755)
		}
		return nil
	})
	return os.RemoveAll(p)
}
