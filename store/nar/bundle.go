package nar

import (
	"encoding/binary"
	"errors"
	"io"
	"strings"
)

// BundleMagic follows each NAR in an export bundle: "NIXE" read as a
// little-endian number.
const BundleMagic = 0x4558494e

// maxBundleString bounds the strings of a bundle's item trailers (store
// paths, references, derivers, legacy signatures).
const maxBundleString = 4096

// BundleEntry describes one store item of an export bundle, from the
// trailer that follows its NAR.
type BundleEntry struct {
	// Path is the item's store path.
	Path string
	// References are the store paths it refers to, as recorded (Nix and
	// storepack write them sorted).
	References []string
	// Deriver is the derivation that built it, or "".
	Deriver string
	// NarOffset is where the item's NAR starts in the bundle; NarSize is
	// its length.
	NarOffset, NarSize int64
}

// BundleReader reads an export bundle, as `nix-store --export` and
// `guix archive --export` write it: for each item the u64 1, its NAR, the
// u64 BundleMagic, its store path, the count and the strings of its
// references, its deriver and the u64 0 (or 1 and a legacy signature,
// which is skipped, as `nix-store --import` does); then the u64 0.
//
// Because an item's path follows its NAR, reading is in two steps: Next
// returns a Reader over the item's NAR, and Entry, once the caller has read
// as much of the NAR as it wants, reads the rest and returns the item's
// path, references and deriver.
//
// It is strict: framing and padding must be exact, strings are at most 4096
// bytes, store paths and references absolute and free of NUL, and nothing
// may follow the end marker. Errors are *FormatError with the offset in
// the bundle (also those of an item's Reader) and the item's path when
// known. It reads exactly as far as it needs; give it a buffered reader.
type BundleReader struct {
	r     io.Reader
	off   int64 // bytes consumed from r
	nar   *Reader
	start int64 // where the current NAR starts
	buf   [8]byte
	done  bool
	err   error // sticky
}

// NewBundleReader returns a BundleReader reading an export bundle from r.
func NewBundleReader(r io.Reader) *BundleReader {
	return &BundleReader{r: r}
}

// Offset returns the number of bytes consumed from the underlying reader,
// the NAR being read through Next's Reader excepted.
func (b *BundleReader) Offset() int64 { return b.off }

// Next advances to the next item, finishing the current one as Entry
// does, and returns a Reader over the item's NAR. It returns io.EOF after
// the bundle's end marker.
func (b *BundleReader) Next() (*Reader, error) {
	if b.err != nil {
		return nil, b.err
	}
	if b.nar != nil {
		if _, err := b.Entry(); err != nil {
			return nil, err
		}
	}
	if b.done {
		return nil, io.EOF
	}
	at := b.off
	more, err := b.u64("item marker")
	if err != nil {
		return nil, b.fail(err)
	}
	switch more {
	case 0:
		var one [1]byte
		if n, err := io.ReadFull(b.r, one[:]); n > 0 {
			return nil, b.fail(b.errAt(b.off, "", "data after the end marker"))
		} else if err != nil && !errors.Is(err, io.EOF) {
			return nil, b.fail(b.errAt(b.off, "", "after the end marker", err))
		}
		b.done = true
		return nil, io.EOF
	case 1:
	default:
		return nil, b.fail(b.errAt(at, "", "item marker is not 0 or 1"))
	}
	b.start = b.off
	b.nar = &Reader{r: b.r, base: b.start}
	return b.nar, nil
}

// Entry finishes the current item: it reads what the caller left of its
// NAR, then its trailer, and returns the item's path, references and
// deriver. It is an error to call it before Next or twice for one item.
func (b *BundleReader) Entry() (*BundleEntry, error) {
	if b.err != nil {
		return nil, b.err
	}
	if b.nar == nil {
		return nil, errors.New("nar: BundleReader.Entry called without a current item")
	}
	nr := b.nar
	b.nar = nil
	for {
		if _, err := nr.Next(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, b.fail(err)
		}
	}
	b.off = b.start + nr.Offset()
	e := &BundleEntry{NarOffset: b.start, NarSize: nr.Offset()}
	at := b.off
	magic, err := b.u64("export magic")
	if err != nil {
		return nil, b.fail(err)
	}
	if magic != BundleMagic {
		return nil, b.fail(b.errAt(at, "", "export magic is not NIXE"))
	}
	if e.Path, err = b.path("store path", ""); err != nil {
		return nil, b.fail(err)
	}
	n, err := b.u64("reference count")
	if err != nil {
		return nil, b.fail(err)
	}
	e.References = []string{}
	for i := uint64(0); i < n; i++ {
		r, err := b.path("reference", e.Path)
		if err != nil {
			return nil, b.fail(err)
		}
		e.References = append(e.References, r)
	}
	if e.Deriver, err = b.str("deriver", e.Path); err != nil {
		return nil, b.fail(err)
	}
	if e.Deriver != "" {
		if err := checkPath(e.Deriver); err != "" {
			return nil, b.fail(b.errAt(b.off, e.Path, "deriver "+err))
		}
	}
	at = b.off
	sig, err := b.u64("signature marker")
	if err != nil {
		return nil, b.fail(err)
	}
	switch sig {
	case 0:
	case 1:
		if _, err := b.str("legacy signature", e.Path); err != nil {
			return nil, b.fail(err)
		}
	default:
		return nil, b.fail(b.errAt(at, e.Path, "signature marker is not 0 or 1"))
	}
	return e, nil
}

// fail makes err sticky.
func (b *BundleReader) fail(err error) error {
	b.err = err
	return err
}

// errAt makes a *FormatError at offset off about item.
func (b *BundleReader) errAt(off int64, item, reason string, cause ...error) error {
	e := &FormatError{Offset: off, Path: item, Reason: "bundle: " + reason}
	if len(cause) > 0 {
		e.Err = cause[0]
	}
	return e
}

// full reads exactly len(p) bytes.
func (b *BundleReader) full(p []byte, item, what string) error {
	at := b.off
	n, err := io.ReadFull(b.r, p)
	b.off += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return b.errAt(at, item, "reading the "+what, err)
	}
	return nil
}

func (b *BundleReader) u64(what string) (uint64, error) {
	if err := b.full(b.buf[:], "", what); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b.buf[:]), nil
}

// str reads a padded string of at most maxBundleString bytes.
func (b *BundleReader) str(what, item string) (string, error) {
	at := b.off
	if err := b.full(b.buf[:], item, what+"'s length"); err != nil {
		return "", err
	}
	n := binary.LittleEndian.Uint64(b.buf[:])
	if n > maxBundleString {
		return "", b.errAt(at, item, what+" is longer than 4096 bytes")
	}
	p := make([]byte, (n+7)/8*8)
	if err := b.full(p, item, what); err != nil {
		return "", err
	}
	for _, c := range p[n:] {
		if c != 0 {
			return "", b.errAt(at, item, what+" has non-zero padding")
		}
	}
	return string(p[:n]), nil
}

// path reads a string that must be an absolute path without NUL.
func (b *BundleReader) path(what, item string) (string, error) {
	at := b.off
	s, err := b.str(what, item)
	if err != nil {
		return "", err
	}
	if msg := checkPath(s); msg != "" {
		if item == "" {
			item = s
		}
		return "", b.errAt(at, item, what+" "+msg)
	}
	return s, nil
}

// checkPath says what is wrong with a store path read from a bundle.
func checkPath(s string) string {
	switch {
	case !strings.HasPrefix(s, "/"):
		return "is not an absolute path"
	case strings.ContainsRune(s, 0):
		return "contains NUL"
	}
	return ""
}
