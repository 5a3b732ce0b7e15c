package export

import (
	"github.com/storepack/storepack/export/image"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/layercache"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store/nar"
)

// The registry: each format is one file of this package, whose value
// declares the format (format.Def), plans what it alone needs
// (gen.TreePlanner, gen.ImagePlanner) and writes it (writer). Adding a
// format is its file, one line here and its docs.
func init() {
	format.Register(
		narWriter{},         // nar.go: export bundles
		dockerWriter{},      // docker.go: Docker archives
		ociWriter{},         // oci.go: OCI layouts and oci-archives
		binaryCacheWriter{}, // binarycache.go: Nix binary caches
		tarballWriter{},     // tarball.go
		debWriter{},         // deb.go
		rpmWriter{},         // rpm.go
		squashfsWriter{},    // squashfs.go
		appImageWriter{},    // appimage.go
	)
}

// A writer writes the exports of one format.
type writer interface {
	format.Entry
	// totals is the work write reads from the store, from the plan: the
	// NAR bytes and the number of store items read, which progress shows
	// the work done against.
	totals(e *plan.Export) (bytes, items int64)
	// write writes the job's export and returns what it wrote.
	write(j job) (written, error)
	// tempDirs are the folders, inside an output folder of the format,
	// where write keeps temporary files named ".tmp-*" (besides the
	// ".<output>.tmp-*" next to each output that every writer uses).
	tempDirs() []string
}

// job is one export for its format's writer to write.
type job struct {
	e *plan.Export
	// outDir is the output folder; the export's outputs are relative to it.
	outDir string
	// cache is the layer cache (nil for none): see Options.Cache.
	cache *layercache.Cache
	// count counts the store items read (a no-op counter when progress is
	// not shown).
	count nar.Counter
	// chain is the export's supply chain, which image writers ask for what
	// their images carry (chain.attach); it is read, never written.
	chain *chain
	// local writes a remote output into outDir instead: Options.Local.
	local bool
}

// written is what a writer wrote: the files, in order, and for images the
// image set they hold, which the supply chain's side files name.
type written struct {
	files  []File
	images *image.Set
}

// writerOf is the writer of e's format.
func writerOf(f format.Format) (writer, bool) {
	w, ok := f.Entry().(writer)
	return w, ok
}
