package export

import (
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/storepack/storepack/export/image"
	"github.com/storepack/storepack/internal/fanout"
)

// outFile is the temporary file writeAtomic fills, with the sha256 of its
// bytes. Writes go through a fanout to the file and to the hash, each in a
// goroutine of its own.
//
// It is an image.Resumable: archives that copy cached blobs (docker
// archives, oci-archives) can also append bytes without hashing them
// (AppendUnhashed) and then restore the hash state those bytes lead to,
// saved by an earlier export that wrote the same bytes (HashState,
// RestoreHash): a re-export then neither reads nor hashes the unchanged
// start of the archive, and the cached blobs are copied into it by the
// kernel (copy_file_range), which clones them on btrfs and XFS.
type outFile struct {
	f  *os.File
	h  hash.Hash
	wb *writebackFile
	fo *fanout.Writer
	// n counts the bytes in the file, written and appended.
	n int64
	// unhashed is set while bytes were appended that the hash has not
	// seen and no state was restored since.
	unhashed bool
}

var _ image.Resumable = (*outFile)(nil)

func newOutFile(f *os.File) *outFile {
	h := sha256.New()
	wb := newWritebackFile(f, diskWriteback)
	return &outFile{f: f, h: h, wb: wb, fo: fanout.New(wb, h)}
}

// writeback says when a writebackFile starts the writeback of what was
// written and when it makes it durable.
type writeback struct {
	// chunk is how many bytes written start their writeback.
	chunk int64
	// flushChunk is how many bytes written are made durable at once, with
	// flush, and then dropped from the page cache (dropPages).
	flushChunk int64
	flush      func(*os.File) error
}

// diskWriteback is the writeback of output files.
var diskWriteback = writeback{chunk: 32 << 20, flushChunk: 64 << 20, flush: flushData}

// writebackFile writes to a file and has a goroutine of its own start the
// writeback of what was written every chunk bytes (startWriteback) and
// make it durable every flushChunk bytes (flushData), so that the disk
// works while the export goes on and the fsync before the rename has
// little left to wait for. Starting the writeback only hands the pages to
// the disk, which may keep them in a cache of its own (a virtual
// machine's disk often does, in its host's page cache): the flush that
// empties that cache is what takes the time, and a single one at the end
// waits for the whole file. Once durable, the pages are dropped from the
// page cache: the next writes then reuse them rather than taking new ones
// (which costs more than the copy into them, on virtual machines most of
// all), and an export of gigabytes does not push what the machine was
// using out of memory. Both may block while the disk is busy: on their
// own goroutine, they never hold up the writes.
type writebackFile struct {
	f       *os.File
	wb      writeback
	n       int64         // the offset written up to, known to the writer
	signal  chan int64    // the offset to start writeback up to
	stopped chan struct{} // closed when the goroutine is done
	// err is the first error of a flush, read after stopped is closed: a
	// file reports a failed writeback to one fsync only, which may be
	// one of the goroutine's.
	err error
}

func newWritebackFile(f *os.File, wb writeback) *writebackFile {
	w := &writebackFile{f: f, wb: wb, signal: make(chan int64, 1), stopped: make(chan struct{})}
	off, err := f.Seek(0, io.SeekCurrent)
	if err == nil {
		w.n = off
	}
	go func() {
		defer close(w.stopped)
		started, flushed := w.n, w.n
		for off := range w.signal {
			if off > started {
				startWriteback(w.f, started, off-started)
				started = off
			}
			if w.err == nil && off-flushed >= w.wb.flushChunk {
				// Dropped from the start: the page cache's folios may
				// be larger than a page, and one that reaches past off
				// stays until a later range covers it whole.
				if w.err = w.wb.flush(w.f); w.err == nil {
					dropPages(w.f, 0, off)
				}
				flushed = off
			}
		}
	}()
	return w
}

func (w *writebackFile) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		return n, err
	}
	// Other writes (outFile.AppendUnhashed) move the offset too: ask the
	// file where it is every chunk.
	w.n += int64(n)
	if w.n%w.wb.chunk < int64(n) {
		if off, serr := w.f.Seek(0, io.SeekCurrent); serr == nil {
			w.n = off
			select {
			case w.signal <- off:
			default: // the goroutine is busy; the next chunk's signal covers this one
			}
		}
	}
	return n, nil
}

// stop ends the writeback goroutine, once nothing writes any more, and
// returns the first error of its flushes.
func (w *writebackFile) stop() error {
	close(w.signal)
	<-w.stopped
	if w.err != nil {
		return fmt.Errorf("writing to disk: %w", w.err)
	}
	return nil
}

// Write writes p to the file and the hash.
func (o *outFile) Write(p []byte) (int, error) {
	if o.unhashed {
		return 0, errors.New("archive written after unhashed bytes without restoring the hash")
	}
	n, err := o.fo.Write(p)
	o.n += int64(n)
	return n, err
}

// ReadFrom writes what r reads to the file and the hash.
func (o *outFile) ReadFrom(r io.Reader) (int64, error) {
	if o.unhashed {
		return 0, errors.New("archive written after unhashed bytes without restoring the hash")
	}
	n, err := o.fo.ReadFrom(r)
	o.n += n
	return n, err
}

// Len is the number of bytes in the file.
func (o *outFile) Len() int64 { return o.n }

// close waits for the file and hash writers and returns their first error.
func (o *outFile) close() error {
	err := o.fo.Close()
	if werr := o.wb.stop(); err == nil {
		err = werr
	}
	if err == nil && o.unhashed {
		err = errors.New("archive ends with unhashed bytes")
	}
	return err
}

// sum is the sha256 of the file's bytes, after close.
func (o *outFile) sum() []byte { return o.h.Sum(nil) }

// HashState returns the state of the hash after every byte written so
// far (sha256's binary marshaling, which holds the length hashed).
func (o *outFile) HashState() ([]byte, error) {
	if err := o.fo.Flush(); err != nil {
		return nil, err
	}
	if o.unhashed {
		return nil, errors.New("hash state asked after unhashed bytes")
	}
	return o.h.(encoding.BinaryMarshaler).MarshalBinary()
}

// AppendUnhashed appends head, the first size bytes of the file at blob
// and pad zero bytes to the file without hashing them. The caller must
// then RestoreHash with the state of an archive that starts with the same
// bytes. The blob is copied with copy_file_range, which on btrfs and XFS
// clones the blocks instead (when head ends on a multiple of their block
// size in the file, as resumable archives make it: image.CloneAlign).
func (o *outFile) AppendUnhashed(head []byte, blob string, size int64, pad int) error {
	if err := o.fo.Flush(); err != nil {
		return err
	}
	o.unhashed = true
	if _, err := o.f.Write(head); err != nil {
		return err
	}
	o.n += int64(len(head))
	src, err := os.Open(blob)
	if err != nil {
		return fmt.Errorf("layer cache: %w", err)
	}
	defer src.Close()
	n, err := io.Copy(o.f, io.LimitReader(src, size))
	o.n += n
	// The final fsync then waits for less: the copy's writeback starts now.
	startWriteback(o.f, o.n-n, n)
	if err != nil {
		return fmt.Errorf("layer cache: %s: %w", blob, err)
	}
	if n != size {
		return fmt.Errorf("layer cache: %s: %d bytes, %d expected: the cached blob changed while being read; export again, or with --no-cache", blob, n, size)
	}
	if pad > 0 {
		_, err = o.f.Write(make([]byte, pad))
		o.n += int64(pad)
	}
	return err
}

// RestoreHash sets the hash to state, which must cover exactly the bytes
// in the file (image.CheckState).
func (o *outFile) RestoreHash(state []byte) error {
	if err := o.fo.Flush(); err != nil {
		return err
	}
	if err := image.CheckState(state, o.n); err != nil {
		return err
	}
	if err := o.h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return fmt.Errorf("cached hash state: %w", err)
	}
	o.unhashed = false
	return nil
}
