package export

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/nar"
)

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

// narDef declares the format: an export bundle of each system's closure, as `nix-store --export` writes it.
var narDef = format.Def{Name: "nar", Kind: format.Store, Ext: ".nar", PerSystem: true}

// narWriter writes nar exports: one export bundle per system.
type narWriter struct{}

// Def declares the format.
func (narWriter) Def() *format.Def { return &narDef }

func (narWriter) totals(e *plan.Export) (bytes, items int64) { return closureTotals(e, false) }

func (narWriter) tempDirs() []string { return nil }

func (narWriter) write(j job) (written, error) {
	var out written
	for i := range j.e.Systems {
		sys := &j.e.Systems[i]
		f, err := writeAtomic(j.outDir, sys.Output, func(w io.Writer) error {
			return writeBundle(w, sys.Closure, j.count)
		})
		if err != nil {
			return out, err
		}
		f.Export, f.System = j.e.Name, sys.Name
		out.files = append(out.files, f)
	}
	return out, nil
}

// writeBundle writes the export bundle of a plan's closure to w, the
// items in the order given (a closure lists dependencies first), as
// `nix-store --export` and `guix archive --export` write it, counting each
// item on count (which may be nil). Each item's NAR hash and size are
// checked while its files are read.
func writeBundle(w io.Writer, closure []plan.Item, count nar.Counter) error {
	bw := newBundleWriter(w)
	bw.count = count
	for i := range closure {
		it := &closure[i]
		bi := bundleItem{Path: it.Path, FSPath: it.FSPath, References: it.References, Deriver: it.Deriver, NarHash: it.NarHash[:], NarSize: it.NarSize}
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

// bundleWriter writes a bundle of store items, checking each item's NAR
// against its recorded hash and size.
type bundleWriter struct {
	bw    *nar.BundleWriter
	h     hash.Hash
	count nar.Counter
}

func newBundleWriter(w io.Writer) *bundleWriter {
	return &bundleWriter{bw: nar.NewBundleWriter(w), h: sha256.New()}
}

// item writes one item: its NAR, checked as it goes by, then its trailer.
func (b *bundleWriter) item(it *bundleItem) error {
	fsPath := it.FSPath
	if fsPath == "" {
		fsPath = string(it.Path)
	}
	e := &nar.BundleEntry{Path: string(it.Path), Deriver: it.Deriver}
	for _, r := range it.References {
		e.References = append(e.References, string(r))
	}
	var tee io.Writer
	if it.NarHash != nil {
		b.h.Reset()
		tee = b.h
	}
	n, err := b.bw.WriteNAR(e, fsPath, tee, b.count)
	if err != nil {
		return err
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
	if it.NarSize != 0 && n != it.NarSize {
		return fmt.Errorf("%s: its files have changed since it was planned: NAR size %d, but the plan recorded %d", what, n, it.NarSize)
	}
	nar.ItemDone(b.count, it.NarSize, n)
	return b.bw.WriteTrailer(e)
}

// end writes the u64 0 that closes a bundle.
func (b *bundleWriter) end() error { return b.bw.Close() }
