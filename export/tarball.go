package export

import (
	"fmt"
	"io"

	"github.com/storepack/storepack/compress"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/gen"
	"github.com/storepack/storepack/internal/fanout"
	"github.com/storepack/storepack/nar"
	"github.com/storepack/storepack/tree"
)

// tarballWriter writes tarball exports: one tar of each system's tree
// (package tree), compressed on every core (package compress), as GNU tar
// extracts it.
type tarballWriter struct{}

func (tarballWriter) totals(e *gen.Export) (bytes, items int64) { return closureTotals(e, false) }

func (tarballWriter) tempDirs() []string { return nil }

func (tarballWriter) write(e *gen.Export, outDir string, o Options, count nar.Counter) ([]File, error) {
	var files []File
	for i := range e.Systems {
		sys := &e.Systems[i]
		t, src, err := treeSource(e, sys, count)
		if err != nil {
			return files, err
		}
		f, err := writeAtomic(outDir, sys.Output, func(w io.Writer) error {
			return writeTarball(w, t, src)
		})
		if err != nil {
			return files, err
		}
		f.Export, f.System = e.Name, sys.Name
		files = append(files, f)
	}
	return files, nil
}

// treeSource is the tree of one system of a tree export, and where its
// items are read from, counted on count, with the store database when the
// tree holds it.
func treeSource(e *gen.Export, sys *gen.System, count nar.Counter) (*gen.TreeOutput, tree.Source, error) {
	t := sys.Tree
	if t == nil {
		return nil, tree.Source{}, fmt.Errorf("export %q, system %s: no tree plan", e.Name, sys.Name)
	}
	src, err := tree.Source{Items: gen.Items(sys.Closure), Counter: count}.WithDB(&t.Tree, t.MTime())
	if err != nil {
		return nil, tree.Source{}, fmt.Errorf("export %q, system %s: %w", e.Name, sys.Name, err)
	}
	return t, src, nil
}

// writeTarball writes t's tar to w, compressed as t says. Compression runs
// on goroutines of its own, so that it overlaps reading the store: gzip
// and zstd have theirs (compress.Options.Parallel), xz is fed through a
// fanout.
func writeTarball(w io.Writer, t *gen.TreeOutput, src tree.Source) error {
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
