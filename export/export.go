// Package export writes plans, and holds storepack's registry of formats
// (formats.go). Each format is a file of its own that declares it
// (format.Def), plans what it alone needs and writes it: store outputs
// (nar.go: export bundles; binarycache.go: Nix binary caches), file system
// trees (tarball.go, deb.go, rpm.go, squashfs.go) and images (docker.go:
// Docker archives; oci.go: OCI layouts and oci-archives; push.go:
// registries), built on the plumbing of their kind (export/tree,
// export/image, export/squashfs, export/rpm, store/nar,
// store/binarycache). supply.go writes the supply chain beside and inside
// every output (SBOMs, provenance, signatures).
//
// Export reads the plan and never writes into it: what it computes (the
// digests and sizes of files, layers and images) it returns. Every output
// is written to a temporary name in the output folder and renamed into
// place, so a failed export leaves no partial file and the previous output
// intact.
package export

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/storepack/storepack/internal/atomicfile"
	"github.com/storepack/storepack/internal/layercache"
	"github.com/storepack/storepack/internal/progress"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/nar"
)

// File is one file an export wrote, with its digest: what lock files hold.
type File struct {
	// Export and System name what the file belongs to (System is empty
	// for files holding every system).
	Export string `json:"export"`
	System string `json:"system,omitempty"`
	// Path is relative to the output folder, with forward slashes; for
	// an output outside it (format.Def.RemoteOutput: a binary cache in an
	// s3:// bucket), the object's URL.
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Varies is set for files whose bytes differ from run to run by
	// design: the signatures of an ECDSA key (randomised nonces). Lock
	// files leave them out.
	Varies bool `json:"-"`
}

// OutLockFile is the lock file Write holds in the output folder while it
// writes (distinct from the spec's storepack.lock, which records digests).
const OutLockFile = ".storepack-export.lock"

// Options are the settings of Write and Describe; the zero value writes
// without a cache and shows no progress.
type Options struct {
	// Cache, when not nil, supplies layers already built by earlier
	// exports (their diff ids, sizes, digests and blobs) and keeps the
	// layers built now: see docs/cache.md. Outputs are byte-identical with
	// and without it.
	Cache *layercache.Cache
	// Progress, when not nil, is told when each export begins and ends,
	// with its totals, and given the bytes and store items done as its
	// store files are read: see docs/progress.md.
	Progress progress.Reporter
	// Local writes the outputs outside the output folder (a binary
	// cache's s3:// bucket) into it instead, as folder outputs with the
	// same bytes, their files named as the export names them (s3://
	// URLs): nothing is written outside outDir. lock and verify build so:
	// a lock describes the bytes, and making it uploads nothing.
	Local bool
}

// Write writes every export of plan into outDir, which is created when
// missing. It returns the files written, in plan order.
//
// Exports into the same folder are serialised: Write holds an exclusive
// advisory lock (flock) on OutLockFile in outDir while it writes, and a
// second Write (in this process or another) waits for it. Holding the lock,
// it first removes the temporary files and folders ".<output>.tmp-*" that
// an export killed while writing those outputs left behind. When every
// export writes outside the output folder (remote), Write neither makes
// nor locks it.
func Write(plan *plan.Plan, outDir string, o Options) ([]File, error) {
	local := false
	for i := range plan.Exports {
		local = local || o.Local || !remoteOutput(&plan.Exports[i])
	}
	if local {
		if err := os.MkdirAll(outDir, 0o777); err != nil {
			return nil, fmt.Errorf("output folder %s: %w", outDir, bare(err))
		}
		unlock, err := lockOutDir(outDir)
		if err != nil {
			return nil, err
		}
		defer unlock()
		if err := startWriting(outDir); err != nil {
			return nil, err
		}
		defer doneWriting(outDir)
		if err := removeStale(plan, outDir); err != nil {
			return nil, err
		}
	}
	var files []File
	for i := range plan.Exports {
		fs, err := writeExport(plan, &plan.Exports[i], outDir, o)
		if err != nil {
			return files, err
		}
		files = append(files, fs...)
	}
	return files, nil
}

// remoteOutput reports whether e's output is outside the output folder (its
// format's RemoteOutput says so).
func remoteOutput(e *plan.Export) bool {
	d := e.Format.Def()
	return d.Remote(e.Output)
}

// writeExport writes e, an export of plan, with its format's writer, then
// its supply chain's files (SBOMs, provenance, signatures: chain), telling
// o.Progress (when set) how it goes.
func writeExport(plan *plan.Plan, e *plan.Export, outDir string, o Options) ([]File, error) {
	w, ok := writerOf(e.Format)
	if !ok {
		return nil, fmt.Errorf("export %q: no writer for the format %q", e.Name, e.Format)
	}
	c, err := newChain(plan, e)
	if err != nil {
		return nil, fmt.Errorf("export %q: %w", e.Name, err)
	}
	var count nar.Counter = nar.Discard
	var task *progress.Task
	if o.Progress != nil {
		bytes, items := w.totals(e)
		task = o.Progress.Begin(e.Name, bytes, items)
		count = task // a nil *Task counts nothing
	}
	var out written
	if remoteOutput(e) && c.active() {
		err = errors.New("sbom and provenance write files beside the output, which is outside the output folder")
	} else {
		out, err = w.write(job{e: e, outDir: outDir, cache: o.Cache, count: count, chain: c, local: o.Local})
	}
	files := out.files
	if err == nil {
		var side []File
		side, err = c.writeFiles(outDir, files, out.images)
		files = append(files, side...)
	}
	if err != nil {
		err = fmt.Errorf("export %q: %w", e.Name, err)
	}
	if o.Progress != nil {
		o.Progress.End(task, err)
	}
	return files, err
}

// closureTotals is the work of reading every system's closure, each item
// once per system, or once in all when distinct is set.
func closureTotals(e *plan.Export, distinct bool) (bytes, items int64) {
	seen := map[store.Path]bool{}
	for i := range e.Systems {
		for _, it := range e.Systems[i].Closure {
			if distinct {
				if seen[it.Path] {
					continue
				}
				seen[it.Path] = true
			}
			bytes += it.NarSize
			items++
		}
	}
	return bytes, items
}

// writeAtomic writes rel inside outDir through fill: into a temporary file
// in the same folder, synced, then renamed over rel. On any error the
// temporary file is removed and rel is untouched. The digest and size are
// computed while writing. fill is given an *outFile, an image.Resumable,
// which writers that can resume an archive (docker archives and
// oci-archives) look for.
func writeAtomic(outDir, rel string, fill func(io.Writer) error) (File, error) {
	tmp, final, err := createOutput(outDir, rel)
	if err != nil {
		return File{}, err
	}
	defer tmp.Abort()
	// The file is written and hashed in two goroutines of their own
	// (outFile), so that neither holds up fill.
	af := newOutFile(tmp.File)
	err = fill(af)
	if ferr := af.close(); err == nil {
		err = ferr
	}
	if err == nil {
		err = tmp.Commit()
	}
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", final, err)
	}
	return File{Path: filepath.ToSlash(rel), SHA256: hex.EncodeToString(af.sum()), Size: af.n}, nil
}

// writeAtomicAt is writeAtomic for outputs written out of order (a
// squashfs image's superblock comes last): fill gets the temporary file
// itself, and the digest is computed by reading the file back once fill
// is done.
func writeAtomicAt(outDir, rel string, fill func(*os.File) error) (File, error) {
	tmp, final, err := createOutput(outDir, rel)
	if err != nil {
		return File{}, err
	}
	defer tmp.Abort()
	err = fill(tmp.File)
	h := sha256.New()
	var n int64
	if err == nil {
		n, err = io.Copy(h, io.NewSectionReader(tmp.File, 0, math.MaxInt64))
	}
	if err == nil {
		err = tmp.Commit()
	}
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", final, err)
	}
	return File{Path: filepath.ToSlash(rel), SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

// createOutput starts the output file rel inside outDir under a
// temporary name, making its folder; a folder in the way is an error.
func createOutput(outDir, rel string) (*atomicfile.File, string, error) {
	final := filepath.Join(outDir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(final), 0o777); err != nil {
		return nil, final, fmt.Errorf("%s: %w", final, err)
	}
	if fi, err := os.Lstat(final); err == nil && fi.IsDir() {
		return nil, final, fmt.Errorf("%s: a folder is in the way of the output file (remove it)", final)
	}
	if err := interrupted(); err != nil {
		return nil, final, fmt.Errorf("%s: %w", final, err)
	}
	tmp, err := atomicfile.Create(final, 0o644)
	if err != nil {
		return nil, final, fmt.Errorf("%s: %w", final, err)
	}
	return tmp, final, nil
}

// The output folders this process is writing, each under its lock, so
// that an interrupt knows whose temporary files it may remove.
var active struct {
	sync.Mutex
	dirs    map[string]int
	stopped bool
}

// ErrInterrupted is the error of exports begun after RemoveTemporaries.
var ErrInterrupted = errors.New("interrupted")

// startWriting records that outDir, locked, is being written.
func startWriting(outDir string) error {
	active.Lock()
	defer active.Unlock()
	if active.stopped {
		return ErrInterrupted
	}
	if active.dirs == nil {
		active.dirs = map[string]int{}
	}
	active.dirs[outDir]++
	return nil
}

// doneWriting records that a Write into outDir is over.
func doneWriting(outDir string) {
	active.Lock()
	defer active.Unlock()
	if active.dirs[outDir]--; active.dirs[outDir] <= 0 {
		delete(active.dirs, outDir)
	}
}

// interrupted is ErrInterrupted once RemoveTemporaries ran.
func interrupted() error {
	active.Lock()
	defer active.Unlock()
	if active.stopped {
		return ErrInterrupted
	}
	return nil
}

// RemoveTemporaries removes the temporary files and folders in the
// output folders this process is writing now (their locks are this
// process's, so no other run owns them), and makes every output begun
// after it fail: what an interrupted command calls before it exits, while
// its exports are still running.
func RemoveTemporaries() {
	active.Lock()
	defer active.Unlock()
	active.stopped = true
	for dir := range active.dirs {
		atomicfile.RemoveTemps(dir, true)
	}
}

// removeStale removes what killed exports of plan's outputs left in
// outDir: temporary files and folders named ".<output>.tmp-*" next to each
// output, and ".tmp-*" NAR files in a binary cache's nar folder. The
// caller holds the output folder's lock, so no live export owns them.
func removeStale(plan *plan.Plan, outDir string) error {
	type pattern struct{ dir, prefix string }
	var pats []pattern
	add := func(rel string) {
		if rel == "" {
			return
		}
		final := filepath.Join(outDir, filepath.FromSlash(rel))
		pats = append(pats, pattern{filepath.Dir(final), atomicfile.TempPrefix(final)})
	}
	for _, e := range plan.Exports {
		if remoteOutput(&e) {
			continue
		}
		add(e.Output)
		for _, s := range e.Systems {
			add(s.Output)
		}
		if w, ok := writerOf(e.Format); ok && e.Output != "" {
			for _, d := range w.tempDirs() {
				pats = append(pats, pattern{filepath.Join(outDir, filepath.FromSlash(e.Output), d), atomicfile.UnnamedPrefix})
			}
		}
	}
	for _, p := range pats {
		ents, err := os.ReadDir(p.dir)
		if err != nil {
			continue // a folder not made yet holds nothing stale
		}
		for _, ent := range ents {
			if strings.HasPrefix(ent.Name(), p.prefix) {
				if err := os.RemoveAll(filepath.Join(p.dir, ent.Name())); err != nil {
					return fmt.Errorf("removing a stale temporary file: %w", err)
				}
			}
		}
	}
	return nil
}

// bare drops the operation and path from a *fs.PathError about a path the
// caller names anyway.
func bare(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
