// Package export writes plans: NAR export bundles, Docker archives and OCI
// layouts. Every output is written to a temporary name in the output folder
// and renamed into place, so a failed export leaves no partial file and the
// previous output intact.
package export

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/storepack/storepack/gen"
	"github.com/storepack/storepack/progress"
	"github.com/storepack/storepack/store"
)

// File is one file an export wrote, with its digest: what lock files hold.
type File struct {
	// Export and System name what the file belongs to (System is empty
	// for files holding every system).
	Export string `json:"export"`
	System string `json:"system,omitempty"`
	// Path is relative to the output folder, with forward slashes.
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// OutLockFile is the lock file Write holds in the output folder while it
// writes (distinct from the spec's storepack.lock, which records digests).
const OutLockFile = ".storepack-export.lock"

// Write writes every export of plan into outDir, which is created when
// missing. It returns the files written, in plan order.
//
// Exports into the same folder are serialised: Write holds an exclusive
// advisory lock (flock) on OutLockFile in outDir while it writes, and a
// second Write (in this process or another) waits for it. Holding the lock,
// it first removes the temporary files and folders ".<output>.tmp-*" that
// an export killed while writing those outputs left behind.
func Write(plan *gen.Plan, outDir string) ([]File, error) {
	return WriteWith(plan, outDir, Options{})
}

// WriteWith is Write with options (a layer cache, a progress reporter).
func WriteWith(plan *gen.Plan, outDir string, o Options) ([]File, error) {
	if err := os.MkdirAll(outDir, 0o777); err != nil {
		return nil, fmt.Errorf("output folder %s: %w", outDir, bare(err))
	}
	unlock, err := lockOutDir(outDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := removeStale(plan, outDir); err != nil {
		return nil, err
	}
	var files []File
	for i := range plan.Exports {
		fs, err := writeExport(&plan.Exports[i], outDir, o)
		if err != nil {
			return files, err
		}
		files = append(files, fs...)
	}
	return files, nil
}

// WriteExport writes one export of a plan into outDir.
func WriteExport(e *gen.Export, outDir string) ([]File, error) {
	return writeExport(e, outDir, Options{})
}

// writeExport writes e, telling o.Progress (when set) how it goes.
func writeExport(e *gen.Export, outDir string, o Options) ([]File, error) {
	if o.Progress == nil {
		return writeFormat(e, outDir, o, nil)
	}
	bytes, items := Totals(e)
	task := o.Progress.Begin(e.Name, bytes, items)
	files, err := writeFormat(e, outDir, o, task)
	o.Progress.End(task, err)
	return files, err
}

// writeFormat writes e, counting the store items it reads on task (which
// may be nil).
func writeFormat(e *gen.Export, outDir string, o Options, task *progress.Task) ([]File, error) {
	switch e.Format {
	case "nar":
		var files []File
		for i := range e.Systems {
			sys := &e.Systems[i]
			f, err := writeAtomic(outDir, sys.Output, func(w io.Writer) error {
				return writeBundle(w, sys.Closure, task)
			})
			if err != nil {
				return files, fmt.Errorf("export %q: %w", e.Name, err)
			}
			f.Export, f.System = e.Name, sys.Name
			files = append(files, f)
		}
		return files, nil
	case "binary-cache":
		return WriteCache(e, outDir, CacheSettings{Compression: e.Compression, SignKey: e.SignKey, Progress: task})
	case "docker":
		f, err := writeAtomic(outDir, e.Output, func(w io.Writer) error { return writeDocker(w, e, o.Cache, task) })
		if err != nil {
			return nil, fmt.Errorf("export %q: %w", e.Name, err)
		}
		f.Export = e.Name
		return []File{f}, nil
	case "oci":
		var f File
		var err error
		if strings.HasSuffix(e.Output, ".tar") {
			dir := filepath.Dir(filepath.Join(outDir, filepath.FromSlash(e.Output)))
			f, err = writeAtomic(outDir, e.Output, func(w io.Writer) error { return writeOCIArchive(w, dir, e, o.Cache, task) })
		} else {
			f, err = writeOCIDir(outDir, e.Output, e, o.Cache, task)
		}
		if err != nil {
			return nil, fmt.Errorf("export %q: %w", e.Name, err)
		}
		f.Export = e.Name
		return []File{f}, nil
	}
	return nil, fmt.Errorf("export %q: the %s format cannot be written yet", e.Name, e.Format)
}

// Totals is the work writing e reads from the store, from its plan: the
// NAR size and the number of the store items read. Those are, for images,
// the items of each distinct layer (an item in two differently grouped
// layers is read twice); for nar bundles, each system's closure; for
// binary caches, each distinct item once. A progress reporter shows the
// bytes and items done against these.
func Totals(e *gen.Export) (bytes, items int64) {
	switch e.Format {
	case "docker", "oci":
		for _, ul := range uniqueLayers(e) {
			for _, p := range ul.layer.Items {
				bytes += ul.narSizes[p]
				items++
			}
		}
	default:
		seen := map[store.Path]bool{}
		for i := range e.Systems {
			for _, it := range e.Systems[i].Closure {
				if e.Format == "binary-cache" {
					if seen[it.Path] {
						continue
					}
					seen[it.Path] = true
				}
				bytes += it.NarSize
				items++
			}
		}
	}
	return bytes, items
}

// itemDone counts on task a store item of planned NAR size narSize whose
// files were streamed as streamed bytes (which the task's counter has
// seen): the difference, so that the bytes done add up to the planned
// total. An item of unknown size (0) keeps the bytes streamed.
func itemDone(task *progress.Task, narSize, streamed int64) {
	if narSize <= 0 {
		narSize = streamed
	}
	task.Done(1, narSize-streamed)
}

// writeAtomic writes rel inside outDir through fill: into a temporary file
// in the same folder, synced, then renamed over rel. On any error the
// temporary file is removed and rel is untouched. The digest and size are
// computed while writing. fill is given an *atomicFile, which writers that
// can use its other methods (docker archives and oci-archives, resume.go)
// look for.
func writeAtomic(outDir, rel string, fill func(io.Writer) error) (File, error) {
	final := filepath.Join(outDir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(final), 0o777); err != nil {
		return File{}, fmt.Errorf("%s: %w", final, err)
	}
	if fi, err := os.Lstat(final); err == nil && fi.IsDir() {
		return File{}, fmt.Errorf("%s: a folder is in the way of the output file (remove it)", final)
	}
	tmp, err := os.CreateTemp(filepath.Dir(final), "."+filepath.Base(final)+".tmp-*")
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", final, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// The file is written and hashed in two goroutines of their own
	// (atomicFile), so that neither holds up fill.
	af := newAtomicFile(tmp)
	err = fill(af)
	if ferr := af.close(); err == nil {
		err = ferr
	}
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", final, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return File{}, fmt.Errorf("%s: %w", final, err)
	}
	if err := tmp.Sync(); err != nil {
		return File{}, fmt.Errorf("%s: %w", final, err)
	}
	if err := tmp.Close(); err != nil {
		return File{}, fmt.Errorf("%s: %w", final, err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return File{}, fmt.Errorf("%s: %w", final, err)
	}
	ok = true
	return File{Path: filepath.ToSlash(rel), SHA256: hex.EncodeToString(af.sum()), Size: af.n}, nil
}

// removeStale removes what killed exports of plan's outputs left in
// outDir: temporary files and folders named ".<output>.tmp-*" next to each
// output, and ".tmp-*" NAR files in a binary cache's nar folder. The
// caller holds the output folder's lock, so no live export owns them.
func removeStale(plan *gen.Plan, outDir string) error {
	type pattern struct{ dir, prefix string }
	var pats []pattern
	add := func(rel string) {
		if rel == "" {
			return
		}
		final := filepath.Join(outDir, filepath.FromSlash(rel))
		pats = append(pats, pattern{filepath.Dir(final), "." + filepath.Base(final) + ".tmp-"})
	}
	for _, e := range plan.Exports {
		add(e.Output)
		for _, s := range e.Systems {
			add(s.Output)
		}
		if e.Format == "binary-cache" && e.Output != "" {
			pats = append(pats, pattern{filepath.Join(outDir, filepath.FromSlash(e.Output), "nar"), ".tmp-"})
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
