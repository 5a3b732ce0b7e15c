package nar

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"
)

// BundleWriter writes an export bundle, as `nix-store --export` and
// `guix archive --export` write it (BundleReader reads it back): for each
// item the u64 1 and its NAR (WriteNAR), then the u64 BundleMagic, its
// store path, the count and the strings of its references (sorted), its
// deriver and the u64 0, no signature (WriteTrailer); then, on Close, the
// u64 0.
type BundleWriter struct {
	w   io.Writer
	buf []byte // framing being assembled
}

// NewBundleWriter returns a BundleWriter writing an export bundle to w.
func NewBundleWriter(w io.Writer) *BundleWriter {
	return &BundleWriter{w: w}
}

// WriteNAR starts the item e: it writes the NAR of the file, folder or
// symlink at fsPath (Dump's bytes, counted on c, which may be nil), also
// to tee when not nil (to hash it), and returns its length. An error
// reading the item names e.Path; an error of the underlying writer is
// returned as is. WriteTrailer ends the item.
func (b *BundleWriter) WriteNAR(e *BundleEntry, fsPath string, tee io.Writer, c Counter) (int64, error) {
	b.u64(1)
	if err := b.flush(); err != nil {
		return 0, err
	}
	sink := &itemSink{w: b.w, tee: tee}
	n, err := DumpCounting(sink, fsPath, c)
	if sink.err != nil {
		return n, sink.err
	}
	if err != nil {
		return n, fmt.Errorf("%s: %w", e.Path, err)
	}
	return n, nil
}

// WriteTrailer ends the item whose NAR WriteNAR wrote with e's path,
// references and deriver.
func (b *BundleWriter) WriteTrailer(e *BundleEntry) error {
	b.u64(BundleMagic)
	b.buf = appendString(b.buf, e.Path)
	refs := slices.Compact(slices.Sorted(slices.Values(e.References)))
	b.u64(uint64(len(refs)))
	for _, r := range refs {
		b.buf = appendString(b.buf, r)
	}
	b.buf = appendString(b.buf, e.Deriver)
	b.u64(0)
	return b.flush()
}

// Close writes the u64 0 that ends a bundle. It does not close the
// underlying writer.
func (b *BundleWriter) Close() error {
	b.u64(0)
	return b.flush()
}

func (b *BundleWriter) u64(n uint64) { b.buf = binary.LittleEndian.AppendUint64(b.buf, n) }

func (b *BundleWriter) flush() error {
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

// itemSink passes a NAR on to w and tee, keeping w's errors apart so
// that they are not reported as errors reading the item.
type itemSink struct {
	w, tee io.Writer
	err    error
}

func (s *itemSink) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.tee != nil {
		s.tee.Write(p)
	}
	n, err := s.w.Write(p)
	if err != nil {
		s.err = err
	}
	return n, err
}
