package storepack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-cmp/cmp"

	"github.com/storepack/storepack/export"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/atomicfile"
	"github.com/storepack/storepack/internal/bounded"
	"github.com/storepack/storepack/internal/layercache"
	"github.com/storepack/storepack/plan"
)

// Lock is what storepack.lock holds: for each export and system the
// closure's digest, and the digest and size of every output file but
// those that vary by design (export.File.Varies: ECDSA signatures).
type Lock struct {
	Version int          `json:"version"`
	Exports []LockExport `json:"exports"`
}

// LockExport is one export's entry in a lock file.
type LockExport struct {
	Name    string        `json:"name"`
	Format  format.Format `json:"format"`
	Systems []LockSystem  `json:"systems"`
	Files   []export.File `json:"files"`
}

// LockSystem is one system's closure digest, and its image's base (as the
// spec names it) with the digest of the system's base manifest, when it
// has one.
type LockSystem struct {
	System        string `json:"system"`
	ClosureDigest string `json:"closure_digest"`
	Base          string `json:"base,omitempty"`
	BaseDigest    string `json:"base_digest,omitempty"`
	// Layers are an image's layer blobs (base layers first) with their
	// reasons and items: what storepack diff and plan --since compare. A
	// lock written before they were recorded has none, and Verify then
	// leaves them out of the comparison.
	Layers []LayerEntry `json:"layers,omitempty"`
}

// lockOf builds the lock of a plan and the files its export wrote, with
// the layers of its images when d, the plan described, is not nil; bases
// in files (oci:, docker-archive:) are recorded relative to specDir
// (lockBase).
func lockOf(plan *plan.Plan, files []export.File, d *export.Description, specDir string) *Lock {
	layers := map[string][]LayerEntry{}
	if d != nil {
		for _, il := range descriptionLayers(d) {
			layers[il.Name] = il.Layers
		}
	}
	l := &Lock{Version: 1, Exports: []LockExport{}}
	for _, e := range plan.Exports {
		le := LockExport{Name: e.Name, Format: e.Format, Files: []export.File{}}
		for _, s := range e.Systems {
			ls := LockSystem{System: s.Name, ClosureDigest: string(s.ClosureDigest), Layers: layers[e.Name+"/"+s.Name]}
			if s.Image != nil && s.Image.Base != nil {
				ls.Base, ls.BaseDigest = lockBase(s.Image.Base.Ref, specDir), string(s.Image.Base.Digest)
			}
			le.Systems = append(le.Systems, ls)
		}
		for _, f := range files {
			if f.Export == e.Name && !f.Varies {
				le.Files = append(le.Files, f)
			}
		}
		l.Exports = append(l.Exports, le)
	}
	return l
}

// lockBase is how the lock records the base ref: an OCI layout or Docker
// archive by its path relative to the spec folder specDir (with slashes),
// so that the lock holds in another checkout; a registry reference as it
// is.
func lockBase(ref, specDir string) string {
	kind, rest := "", ""
	switch {
	case strings.HasPrefix(ref, "oci:"):
		kind, rest = "oci:", strings.TrimPrefix(ref, "oci:")
	case strings.HasPrefix(ref, "docker-archive:"):
		kind, rest = "docker-archive:", strings.TrimPrefix(ref, "docker-archive:")
	default:
		return ref
	}
	p, tag, hasTag := rest, "", false
	if kind == "oci:" {
		p, tag, hasTag = strings.Cut(rest, ":")
	}
	abs, err := filepath.Abs(specDir)
	if err != nil || !filepath.IsAbs(p) {
		return ref
	}
	rel, err := filepath.Rel(abs, p)
	if err != nil {
		return ref
	}
	out := kind + filepath.ToSlash(rel)
	if hasTag {
		out += ":" + tag
	}
	return out
}

// build exports into a fresh temporary folder and returns the lock of
// what it wrote.
func build(o Options) (*Lock, error) {
	o = o.WithDefaults()
	plan, done, err := generate(o)
	if err != nil {
		return nil, err
	}
	defer done()
	tmp, err := os.MkdirTemp("", "storepack-verify-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	// A layer cache of the build's own, so that describing the images
	// for their layers' digests reads no layer twice.
	cache, err := layercache.Open(filepath.Join(tmp, "cache"))
	if err != nil {
		return nil, err
	}
	out := filepath.Join(tmp, "out")
	// Outputs in a bucket are built in the folder too (Local): a lock
	// describes their bytes, and neither lock nor verify uploads them.
	files, err := export.Write(plan, out, export.Options{Cache: cache, Local: true})
	if err != nil {
		return nil, err
	}
	d, err := export.Describe(plan, export.Options{Cache: cache})
	if err != nil {
		return nil, err
	}
	return lockOf(plan, files, d, o.SpecDir), nil
}

// WriteLock exports into a temporary folder and writes storepack.lock
// next to the spec files.
func WriteLock(o Options) (string, error) {
	o = o.WithDefaults()
	l, err := build(o)
	if err != nil {
		return "", err
	}
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return "", err
	}
	data = append(data, '\n')
	p := lockPath(o)
	return p, atomicfile.WriteFile(p, data, 0o644)
}

// Verify rebuilds every export into a temporary folder and compares the
// result with storepack.lock. A difference is an error holding the go-cmp
// diff (-want +got).
func Verify(o Options) error {
	o = o.WithDefaults()
	p := lockPath(o)
	data, err := bounded.ReadFile(p, bounded.LockFile)
	if err != nil {
		return fmt.Errorf("%w (run lock first)", err)
	}
	var want Lock
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&want); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	got, err := build(o)
	if err != nil {
		return err
	}
	if len(o.Exports) > 0 {
		want.Exports = filterLock(want.Exports, o.Exports)
	}
	unrecordedLayers(&want, got)
	if d := cmp.Diff(&want, got); d != "" {
		return &VerifyError{Lock: p, Diff: d, Exports: changedExports(&want, got)}
	}
	return nil
}

// VerifyError is a difference between a lock file and a fresh build.
type VerifyError struct {
	// Lock is the lock file's path.
	Lock string
	// Diff is the go-cmp diff of the lock file and the fresh build, (-want +got).
	Diff string
	// Exports are the exports whose entries differ.
	Exports []string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("%s: exports %s differ from a fresh build (-want +got):\n%s", e.Lock, strings.Join(e.Exports, ", "), e.Diff)
}

// changedExports names the exports whose lock entries differ.
func changedExports(want, got *Lock) []string {
	byName := map[string]LockExport{}
	for _, e := range want.Exports {
		byName[e.Name] = e
	}
	var names []string
	seen := map[string]bool{}
	for _, e := range got.Exports {
		seen[e.Name] = true
		if w, ok := byName[e.Name]; !ok || !cmp.Equal(w, e) {
			names = append(names, e.Name)
		}
	}
	for _, e := range want.Exports {
		if !seen[e.Name] {
			names = append(names, e.Name)
		}
	}
	return names
}

func filterLock(es []LockExport, names []string) []LockExport {
	out := []LockExport{}
	for _, e := range es {
		for _, n := range names {
			if e.Name == n {
				out = append(out, e)
			}
		}
	}
	return out
}

// unrecordedLayers leaves out of got the layers of the systems whose
// entries in want, a lock written before layers were recorded, have none.
func unrecordedLayers(want, got *Lock) {
	recorded := map[string]bool{}
	for _, e := range want.Exports {
		for _, s := range e.Systems {
			recorded[e.Name+"/"+s.System] = len(s.Layers) > 0
		}
	}
	for i := range got.Exports {
		e := &got.Exports[i]
		for j := range e.Systems {
			if !recorded[e.Name+"/"+e.Systems[j].System] {
				e.Systems[j].Layers = nil
			}
		}
	}
}
