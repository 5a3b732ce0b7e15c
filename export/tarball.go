package export

import (
	"io"
	"slices"

	"github.com/storepack/storepack/export/tree"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/compress"
	"github.com/storepack/storepack/internal/fanout"
	"github.com/storepack/storepack/plan"
)

// tarballDef declares the format: a tar of each system's tree, compressed.
var tarballDef = format.Def{Name: "tarball", Kind: format.Tree, PerSystem: true,
	Compressions: tarballCompressions, Exts: tarballExts(),
	Attrs: slices.Concat(format.TreeAttrs, format.DatabaseAttrs, format.RelocatableAttrs), Blocks: format.ContentBlocks, BinLink: true}

// tarballCompressions are a tarball's compressions, the default first.
var tarballCompressions = []format.Compression{format.Gzip, format.Zstd, format.XZ, format.None}

// tarballExts names a tarball by its compression: ".tar" and the
// compressor's extension.
func tarballExts() map[format.Compression]string {
	m := map[format.Compression]string{}
	for _, c := range tarballCompressions {
		m[c] = ".tar" + compress.Ext(c)
	}
	return m
}

// tarballWriter writes tarball exports: one tar of each system's tree
// (package tree), compressed on every core (package compress), as GNU tar
// extracts it.
type tarballWriter struct{ treeWriter }

// Def declares the format.
func (tarballWriter) Def() *format.Def { return &tarballDef }

func (tarballWriter) write(j job) (written, error) {
	outDir := j.outDir
	return writeTrees(j, func(sys *plan.System, t *plan.TreeOutput, src tree.Source) (File, error) {
		return writeAtomic(outDir, sys.Output, func(w io.Writer) error { return writeTarball(w, t, src) })
	})
}

// writeTarball writes t's tar to w, compressed as t says. Compression runs
// on goroutines of its own, so that it overlaps reading the store: gzip
// and zstd have theirs (compress.Options.Parallel), xz is fed through a
// fanout.
func writeTarball(w io.Writer, t *plan.TreeOutput, src tree.Source) error {
	cw, err := compress.NewWriter(w, t.Compression, compress.Options{Parallel: true})
	if err != nil {
		return err
	}
	tw := io.Writer(cw)
	var fo *fanout.Writer
	if t.Compression == format.XZ {
		fo = fanout.New(cw)
		tw = fo
	}
	_, err = tree.WriteTar(tw, &t.Tree, t.MTime(), src)
	if fo != nil {
		if ferr := fo.Close(); err == nil {
			err = ferr
		}
	}
	if cerr := cw.Close(); err == nil {
		err = cerr
	}
	return err
}
