package export

import (
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
)

// atomicFile is the temporary file writeAtomic fills, with the sha256 of
// its bytes. Writes go through a fanout to the file and to the hash, each
// in a goroutine of its own.
//
// Archives that copy cached blobs (docker archives, oci-archives: see
// resume.go) can also append bytes
// without hashing them (appendUnhashed) and then restore the hash state
// those bytes lead to, saved by an earlier export that wrote the same
// bytes (hashState, restoreHash): a re-export then neither reads nor hashes
// the unchanged start of the archive, and the cached blobs are copied into
// it by the kernel (copy_file_range), which clones them on btrfs and XFS.
type atomicFile struct {
	f  *os.File
	h  hash.Hash
	fo *fanout
	// n counts the bytes in the file, written and appended.
	n int64
	// unhashed is set while bytes were appended that the hash has not
	// seen and no state was restored since.
	unhashed bool
}

func newAtomicFile(f *os.File) *atomicFile {
	h := sha256.New()
	return &atomicFile{f: f, h: h, fo: newFanout(f, h)}
}

// Write writes p to the file and the hash.
func (a *atomicFile) Write(p []byte) (int, error) {
	if a.unhashed {
		return 0, errors.New("archive written after unhashed bytes without restoring the hash")
	}
	n, err := a.fo.Write(p)
	a.n += int64(n)
	return n, err
}

// ReadFrom writes what r reads to the file and the hash.
func (a *atomicFile) ReadFrom(r io.Reader) (int64, error) {
	if a.unhashed {
		return 0, errors.New("archive written after unhashed bytes without restoring the hash")
	}
	n, err := a.fo.ReadFrom(r)
	a.n += n
	return n, err
}

// close waits for the file and hash writers and returns their first error.
func (a *atomicFile) close() error {
	err := a.fo.Close()
	if err == nil && a.unhashed {
		err = errors.New("archive ends with unhashed bytes")
	}
	return err
}

// sum is the hex-less sha256 of the file's bytes, after close.
func (a *atomicFile) sum() []byte { return a.h.Sum(nil) }

// hashState returns the state of the hash after every byte written so
// far (sha256's binary marshaling, which holds the length hashed).
func (a *atomicFile) hashState() ([]byte, error) {
	if err := a.fo.Flush(); err != nil {
		return nil, err
	}
	if a.unhashed {
		return nil, errors.New("hash state asked after unhashed bytes")
	}
	return a.h.(encoding.BinaryMarshaler).MarshalBinary()
}

// appendUnhashed appends head, the first size bytes of the file at blob
// and pad zero bytes to the file without hashing them. The caller must
// then restoreHash with the state of an archive that starts with the same
// bytes. The blob is copied with copy_file_range, which on btrfs and XFS
// clones the blocks instead (when head ends on a multiple of their block
// size in the file, as resumable archives make it: cloneAlign).
func (a *atomicFile) appendUnhashed(head []byte, blob string, size int64, pad int) error {
	if err := a.fo.Flush(); err != nil {
		return err
	}
	a.unhashed = true
	if _, err := a.f.Write(head); err != nil {
		return err
	}
	a.n += int64(len(head))
	src, err := os.Open(blob)
	if err != nil {
		return fmt.Errorf("layer cache: %w", err)
	}
	defer src.Close()
	n, err := io.Copy(a.f, io.LimitReader(src, size))
	a.n += n
	// The final fsync then waits for less: the copy's writeback starts now.
	startWriteback(a.f, a.n-n, n)
	if err != nil {
		return fmt.Errorf("layer cache: %s: %w", blob, err)
	}
	if n != size {
		return fmt.Errorf("layer cache: %s: %d bytes, %d expected: the cached blob changed while being read; export again, or with --no-cache", blob, n, size)
	}
	return a.appendZeros(pad)
}

func (a *atomicFile) appendZeros(n int) error {
	if n == 0 {
		return nil
	}
	_, err := a.f.Write(make([]byte, n))
	a.n += int64(n)
	return err
}

// restoreHash sets the hash to state, which must cover exactly the bytes
// in the file (checkState).
func (a *atomicFile) restoreHash(state []byte) error {
	if err := a.fo.Flush(); err != nil {
		return err
	}
	if err := checkState(state, a.n); err != nil {
		return err
	}
	if err := a.h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return fmt.Errorf("cached hash state: %w", err)
	}
	a.unhashed = false
	return nil
}

// checkState reports whether state is a sha256 state (as hashState
// returns) after n bytes.
func checkState(state []byte, n int64) error {
	if err := sha256.New().(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return fmt.Errorf("cached hash state: %w", err)
	}
	// The marshaled state ends with the length hashed, big-endian.
	if got := binary.BigEndian.Uint64(state[len(state)-8:]); got != uint64(n) {
		return fmt.Errorf("cached hash state after %d bytes, not %d", got, n)
	}
	return nil
}
