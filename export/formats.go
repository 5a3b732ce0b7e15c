package export

import (
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store/nar"
)

// writers maps each format to its writer, each in a file of its own:
// store outputs (nar.go, binarycache.go), file system trees (tarball.go,
// deb.go, rpm.go, squashfs.go) and images (docker.go, oci.go).
// A format is added to package format's table and here.
var writers = map[format.Format]writer{
	format.NAR:         narWriter{},
	format.BinaryCache: binaryCacheWriter{},
	format.Docker:      dockerWriter{},
	format.OCI:         ociWriter{},
	format.Tarball:     tarballWriter{},
	format.Deb:         debWriter{},
	format.RPM:         rpmWriter{},
	format.Squashfs:    squashfsWriter{},
}

// A writer writes the exports of one format.
type writer interface {
	// totals is the work write reads from the store, from the plan: the
	// NAR bytes and the number of store items read, which progress shows
	// the work done against.
	totals(e *plan.Export) (bytes, items int64)
	// write writes e into outDir, counting the store items it reads on
	// count (which may be nil), and returns the files written.
	write(e *plan.Export, outDir string, o Options, count nar.Counter) ([]File, error)
	// tempDirs are the folders, inside an output folder of the format,
	// where write keeps temporary files named ".tmp-*" (besides the
	// ".<output>.tmp-*" next to each output that every writer uses).
	tempDirs() []string
}
