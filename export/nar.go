package export

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/storepack/storepack/gen"
	"github.com/storepack/storepack/nar"
	"github.com/storepack/storepack/store"
)

// exportMagic follows each NAR in an export bundle: "NIXE" read as a
// little-endian number.
const exportMagic = 0x4558494e

// bundleItem is one store item of an export bundle.
type bundleItem struct {
	// Path is the item's store path, as recorded in the bundle.
	Path store.Path
	// FSPath is where its files are read from; empty means Path.
	FSPath string
	// References are the store items it refers to (itself included when
	// it does); they are written sorted.
	References []store.Path
	// Deriver is the derivation that built it, or "" when unknown.
	Deriver string
	// NarHash, when not nil, is the SHA-256 digest the item's NAR must
	// have, and NarSize, when not 0, its length: as `nix-store --export`
	// does, writing fails when the files no longer match what the store
	// recorded.
	NarHash []byte
	NarSize int64
}

// narWriter writes nar exports: one export bundle per system.
type narWriter struct{}

func (narWriter) totals(e *gen.Export) (bytes, items int64) { return closureTotals(e, false) }

func (narWriter) tempDirs() []string { return nil }

func (narWriter) write(e *gen.Export, outDir string, o Options, count nar.Counter) ([]File, error) {
	var files []File
	for i := range e.Systems {
		sys := &e.Systems[i]
		f, err := writeAtomic(outDir, sys.Output, func(w io.Writer) error {
			return writeBundle(w, sys.Closure, count)
		})
		if err != nil {
			return files, err
		}
		f.Export, f.System = e.Name, sys.Name
		files = append(files, f)
	}
	return files, nil
}

// WriteBundle writes the export bundle of a plan's closure to w, the items in
// the order given (a closure lists dependencies first), as
// `nix-store --export` and `guix archive --export` write it. Each item's NAR
// hash, when known, is checked while its files are read.
func WriteBundle(w io.Writer, closure []gen.Item) error {
	return writeBundle(w, closure, nil)
}

// writeBundle is WriteBundle counting each item on count (nil for none).
func writeBundle(w io.Writer, closure []gen.Item, count nar.Counter) error {
	bw := newBundleWriter(w)
	bw.count = count
	for i := range closure {
		it := &closure[i]
		bi := bundleItem{Path: it.Path, FSPath: it.FSPath, References: it.References, Deriver: it.Deriver, NarSize: it.NarSize}
		if h, ok := strings.CutPrefix(it.NarHash, "sha256:"); ok {
			d, err := store.Decode32(h)
			if err != nil || len(d) != sha256.Size {
				return fmt.Errorf("%s: NAR hash %q is not a sha256 digest in Nix base32", it.Path, it.NarHash)
			}
			bi.NarHash = d
		} else if it.NarHash != "" {
			return fmt.Errorf("%s: NAR hash %q is not sha256:<nix base32>", it.Path, it.NarHash)
		}
		if err := bw.item(&bi); err != nil {
			return err
		}
	}
	return bw.end()
}

// WriteStoreBundle writes the export bundle of paths, in the order given, to
// w, taking each item's references, deriver and NAR hash from s: with
// paths = s.Closure(roots...) the bytes are those of
// `nix-store --export $(nix-store -qR roots...)`.
func WriteStoreBundle(w io.Writer, s *store.Store, paths []store.Path) error {
	bw := newBundleWriter(w)
	for _, p := range paths {
		info, err := s.Info(p)
		if err != nil {
			return err
		}
		bi := bundleItem{Path: p, References: info.References, Deriver: info.Deriver, NarHash: info.NarHash, NarSize: info.NarSize}
		if err := bw.item(&bi); err != nil {
			return err
		}
	}
	return bw.end()
}

// bundleWriter writes the framing of a bundle around each item's NAR.
type bundleWriter struct {
	w     io.Writer
	buf   []byte // framing being assembled
	h     hash.Hash
	count nar.Counter
}

func newBundleWriter(w io.Writer) *bundleWriter {
	return &bundleWriter{w: w, h: sha256.New()}
}

func (b *bundleWriter) u64(n uint64) { b.buf = binary.LittleEndian.AppendUint64(b.buf, n) }

func (b *bundleWriter) str(s string) {
	b.u64(uint64(len(s)))
	b.buf = append(b.buf, s...)
	b.buf = append(b.buf, make([]byte, (8-len(s)%8)%8)...)
}

func (b *bundleWriter) flush() error {
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

// item writes u64 1, the NAR, the export magic, the path, the sorted
// references, the deriver and u64 0 (no signature).
func (b *bundleWriter) item(it *bundleItem) error {
	fsPath := it.FSPath
	if fsPath == "" {
		fsPath = string(it.Path)
	}
	b.u64(1)
	if err := b.flush(); err != nil {
		return err
	}
	nw := &narSink{w: b.w}
	if it.NarHash != nil {
		b.h.Reset()
		nw.h = b.h
	}
	if _, err := nar.DumpCounting(nw, fsPath, b.count); nw.err != nil {
		return nw.err
	} else if err != nil {
		return fmt.Errorf("%s: %w", it.Path, err)
	}
	// what names the item in errors: its store path, and where its files
	// were read from when that is elsewhere (a source, a chroot store).
	what := string(it.Path)
	if fsPath != what {
		what += " (read from " + fsPath + ")"
	}
	if it.NarHash != nil {
		if got := b.h.Sum(nil); !bytes.Equal(got, it.NarHash) {
			return fmt.Errorf("%s: its files have changed since it was planned: NAR hash sha256:%s, but the plan recorded sha256:%s",
				what, store.Encode32(got), store.Encode32(it.NarHash))
		}
	}
	if it.NarSize != 0 && nw.n != it.NarSize {
		return fmt.Errorf("%s: its files have changed since it was planned: NAR size %d, but the plan recorded %d", what, nw.n, it.NarSize)
	}
	itemDone(b.count, it.NarSize, nw.n)
	b.u64(exportMagic)
	b.str(string(it.Path))
	refs := store.SortPaths(it.References)
	b.u64(uint64(len(refs)))
	for _, r := range refs {
		b.str(string(r))
	}
	b.str(it.Deriver)
	b.u64(0)
	return b.flush()
}

// end writes the u64 0 that closes a bundle.
func (b *bundleWriter) end() error {
	b.u64(0)
	return b.flush()
}

// narSink passes a NAR on to w, hashing it when h is set and counting it.
// Errors from w are kept apart so they are not reported as errors reading
// the item.
type narSink struct {
	w   io.Writer
	h   hash.Hash
	n   int64
	err error
}

func (s *narSink) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.h != nil {
		s.h.Write(p)
	}
	n, err := s.w.Write(p)
	s.n += int64(n)
	if err != nil {
		s.err = err
	}
	return n, err
}
