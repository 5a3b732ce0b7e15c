package nar

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"sync/atomic"

	"github.com/storepack/storepack/internal/bounded"
)

// Dump writes the NAR serialisation of the file, folder or symlink at path
// to w, byte for byte as `nix-store --dump` does. Sockets, FIFOs and devices
// are errors naming their path, as are files that cannot be read or that
// shrink while they are read.
//
// A second goroutine walks the tree and opens the files, and others read
// them ahead into a bounded set of buffers (Stream says how many), so
// reading overlaps whatever w does with the bytes (writing, hashing,
// scanning). w is only called from the calling goroutine, with chunks of
// up to 256 KiB. Wrapping w in a bufio.Writer gains nothing.
func Dump(w io.Writer, path string) error {
	_, err := DumpCounting(w, path, nil)
	return err
}

// DumpCounting is Dump that adds the bytes of the NAR to c's counter as
// they are written (see Stream) and returns the NAR's length. c may be
// nil.
func DumpCounting(w io.Writer, path string, c Counter) (int64, error) {
	return Stream(w, path, narFramer{}, c)
}

// Counter counts the work of reading store items, for a progress display
// (package progress's Task is one): the bytes read, which the walker adds
// to Bytes as it hands them on, and the items finished.
type Counter interface {
	// Bytes is the counter of bytes read, added to atomically from any
	// goroutine; nil counts nothing.
	Bytes() *atomic.Int64
	// Done counts items finished, with the bytes of theirs that Bytes
	// has not seen (those of an item not read at all, or the difference
	// between an item's NAR size and the bytes read of it).
	Done(items, bytes int64)
}

// ItemDone counts on c (which may be nil) a store item of planned NAR size
// narSize that was streamed (Stream) as streamed bytes, which c's byte
// counter has seen: the difference, so that the bytes done add up to the
// planned total (0 for a NAR; the framing's difference for a tar). An item
// of unknown size (0) keeps the bytes streamed.
func ItemDone(c Counter, narSize, streamed int64) {
	if c == nil {
		return
	}
	if narSize <= 0 {
		narSize = streamed
	}
	c.Done(1, narSize-streamed)
}

// Discard is the Counter that counts nothing.
var Discard Counter = discard{}

type discard struct{}

func (discard) Bytes() *atomic.Int64 { return nil }
func (discard) Done(int64, int64)    {}

// bytesOf is c's byte counter, nil when c is nil.
func bytesOf(c Counter) *atomic.Int64 {
	if c == nil {
		return nil
	}
	return c.Bytes()
}

// Hash returns the SHA-256 digest of the NAR serialisation of path and the
// length of that serialisation, as `nix-hash --type sha256 path` and a
// store's narSize report them. The files are opened and read ahead of the
// hasher on other goroutines (Stream), so that it never waits for a
// system call; memory stays bounded whatever the size of the tree.
func Hash(path string) (digest [32]byte, narSize int64, err error) {
	h := sha256.New()
	n, err := DumpCounting(h, path, nil)
	if err != nil {
		return digest, 0, err
	}
	h.Sum(digest[:0])
	return digest, n, nil
}

// specialFileError reports a node that a NAR cannot hold.
func specialFileError(path string, mode fs.FileMode) error {
	return fmt.Errorf("%s: %s cannot be stored in a NAR (only regular files, folders and symlinks)", path, bounded.Kind(mode))
}
