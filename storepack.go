// Package storepack runs the pipeline that the front ends (the mage targets
// in package mage and the storepack command) share: load a spec, evaluate
// it into a plan, write the plan's archives, and lock or verify their
// digests.
package storepack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/storepack/storepack/export"
	"github.com/storepack/storepack/gen"
	"github.com/storepack/storepack/internal/atomicfile"
	"github.com/storepack/storepack/internal/layercache"
	"github.com/storepack/storepack/internal/progress"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
)

// Environment variables the front ends read.
const (
	EnvSpec    = "STOREPACK_SPEC"    // the spec folder (default: the current one)
	EnvOut     = "STOREPACK_OUT"     // the output folder (default: out)
	EnvExports = "STOREPACK_EXPORTS" // the exports to run, comma or space separated (default: all)
	EnvCheck   = "STOREPACK_CHECK"   // "1" (or "true"): re-hash every store item before exporting (Options.Check)
	EnvQuiet   = "STOREPACK_QUIET"   // "1" (or "true"): the front ends show no export progress (Quiet)
)

// LockFile is the name of the lock file written next to the spec files.
const LockFile = "storepack.lock"

// Options says which spec to load and where its outputs go. Empty fields
// take their defaults from the environment, then from the rules above.
type Options struct {
	// Dir is the folder the other relative paths are taken from, as if
	// storepack were started there (storepack -C DIR, as git -C, make -C
	// and go -C); "" is the current folder.
	Dir string
	// SpecDir is the folder holding the spec's *.hcl files (and the lock
	// file); default: STOREPACK_SPEC, else Dir itself.
	SpecDir string
	// Vars override the spec's variables (--var name=value).
	Vars map[string]string
	// OutDir is the output folder; default: STOREPACK_OUT, else out (in
	// Dir).
	OutDir string
	// Exports restricts the run to these export names.
	Exports []string
	// Stderr receives diagnostics (default os.Stderr).
	Stderr io.Writer
	// Color prints diagnostics with terminal colours.
	Color bool
	// Check re-hashes the files of every store item of the plan before
	// anything is written and fails on any whose NAR hash differs from
	// the one the store database (or the source's loading) recorded, as
	// `nix-store --verify --check-contents` does (storepack export
	// --check, STOREPACK_CHECK=1).
	Check bool
	// NoCache turns the layer cache off (storepack export --no-cache,
	// STOREPACK_NO_CACHE=1): every layer is read from the store.
	NoCache bool
	// CacheDir is the layer cache folder (default: layercache.DefaultDir,
	// $XDG_CACHE_HOME/storepack; relative: in Dir).
	CacheDir string
	// Context bounds the run's reaching outside the machine (substituted
	// items, base images, pushes): when it ends (storepack --timeout, an
	// interrupt), they stop and remove what they had begun. Nil: none.
	Context context.Context
	// Progress, when not nil, shows the progress of each export (Export
	// only): the front ends set progress.Auto(Stderr), a bar on a
	// terminal and plain lines elsewhere, unless Quiet.
	// Nil shows nothing.
	Progress progress.Reporter
}

// Quiet reports whether STOREPACK_QUIET asks the front ends to show no
// export progress.
func Quiet() bool {
	q, _ := strconv.ParseBool(os.Getenv(EnvQuiet))
	return q
}

// ErrSpec is returned when the spec has errors; they have been printed.
var ErrSpec = errors.New("the spec has errors")

// WithDefaults fills the empty fields of o from the environment and the
// built-in defaults, and takes relative paths from o.Dir, which it then
// clears (so that it is idempotent).
func (o Options) WithDefaults() Options {
	if o.SpecDir == "" {
		o.SpecDir = os.Getenv(EnvSpec)
	}
	if o.SpecDir == "" {
		o.SpecDir = "."
	}
	if o.OutDir == "" {
		o.OutDir = os.Getenv(EnvOut)
	}
	if o.OutDir == "" {
		o.OutDir = "out"
	}
	if len(o.Exports) == 0 {
		o.Exports = strings.FieldsFunc(os.Getenv(EnvExports), func(r rune) bool { return r == ',' || r == ' ' })
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if !o.Check {
		o.Check, _ = strconv.ParseBool(os.Getenv(EnvCheck))
	}
	if !o.NoCache {
		o.NoCache = layercache.Disabled()
	}
	o.SpecDir, o.OutDir = o.InDir(o.SpecDir), o.InDir(o.OutDir)
	if o.CacheDir != "" {
		o.CacheDir = o.InDir(o.CacheDir)
	}
	o.Dir = ""
	return o
}

// InDir is the path p as storepack started in o.Dir sees it: p itself
// when absolute or when Dir is empty, else p below Dir.
func (o Options) InDir(p string) string {
	if o.Dir == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(o.Dir, p)
}

// Load loads and checks the spec, printing every diagnostic to o.Stderr.
func Load(o Options) (*spec.Spec, error) {
	o = o.WithDefaults()
	parser := hclparse.NewParser()
	sp, diags := spec.Load(spec.LoadOptions{Dir: o.SpecDir, Vars: o.Vars, Parser: parser})
	if len(diags) > 0 {
		spec.WriteDiagnostics(o.Stderr, parser.Files(), diags, o.Color)
	}
	if diags.HasErrors() {
		return nil, ErrSpec
	}
	if err := selectExports(sp, o.Exports); err != nil {
		return nil, err
	}
	return sp, nil
}

// selectExports keeps only the named exports; every name must exist.
func selectExports(sp *spec.Spec, names []string) error {
	if len(names) == 0 {
		return nil
	}
	var kept []spec.Export
	for _, e := range sp.Exports {
		if slices.Contains(names, e.Name) {
			kept = append(kept, e)
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(kept, func(e spec.Export) bool { return e.Name == n }) {
			return fmt.Errorf("%s: no export named %q in the spec", EnvExports, n)
		}
	}
	sp.Exports = kept
	return nil
}

// Plan loads the spec and evaluates it into a plan, with the digests of
// every image layer, config and manifest (which means reading every store
// file of the images, but those of layers the cache has records of);
// nothing is written.
func Plan(o Options) (*export.Description, error) {
	plan, done, err := generate(o)
	if err != nil {
		return nil, err
	}
	defer done()
	return export.Describe(plan, exportOptions(o))
}

// generate loads the spec and evaluates it into a plan: Plan without the
// images' digests, which writing the archives computes anyway. done
// removes the folders the plan's substituted items and profiles were
// written into when those are not the cache (workDir): call it once the
// plan is written.
func generate(o Options) (p *plan.Plan, done func(), err error) {
	sp, err := Load(o)
	if err != nil {
		return nil, nil, err
	}
	profiles := slices.ContainsFunc(sp.Exports, func(e spec.Export) bool { return e.Profile != nil })
	subs, doneSubs := workDir(o, "substitutes", "substituted items", len(sp.Store.Substituters) > 0)
	profs, doneProfs := workDir(o, "profiles", "profiles", profiles)
	done = func() { doneSubs(); doneProfs() }
	p, err = gen.GenerateIn(o.context(), sp, gen.Dirs{Substitutes: subs, Profiles: profs})
	if err != nil {
		done()
		return nil, nil, err
	}
	return p, done, nil
}

// workDir is where a plan's what (substituted items, profiles) are
// written for the writers to read: name/ in the cache folder (o.CacheDir,
// else the default), or, with the cache turned off (NoCache) or a cache
// folder that cannot be written (reported on o.Stderr), a temporary
// folder that done removes. When the plan needs none it is "" and done
// does nothing.
func workDir(o Options, name, what string, needed bool) (dir string, done func()) {
	o = o.WithDefaults()
	if !needed {
		return "", func() {}
	}
	if !o.NoCache {
		base := o.CacheDir
		err := error(nil)
		if base == "" {
			base, err = layercache.DefaultDir()
		}
		if err == nil {
			dir = filepath.Join(base, name)
			if err = os.MkdirAll(dir, 0o755); err == nil {
				err = probeWritable(dir)
			}
		}
		if err == nil {
			return dir, func() {}
		}
		fmt.Fprintf(o.Stderr, "storepack: not using the %s cache: %v; %s go to a temporary folder\n", name, err, what)
	}
	tmp, err := os.MkdirTemp("", "storepack-"+name+"-")
	if err != nil {
		return "", func() {} // gen reports the default folder's error
	}
	return tmp, func() { atomicfile.RemoveAll(tmp) }
}

// probeWritable checks that files can be made in dir.
func probeWritable(dir string) error {
	f, err := os.CreateTemp(dir, atomicfile.UnnamedPattern("probe"))
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// Export writes every selected export into the output folder and returns
// the files written.
func Export(o Options) ([]export.File, error) {
	o = o.WithDefaults()
	p, done, err := generate(o)
	if err != nil {
		return nil, err
	}
	defer done()
	if o.Check {
		if err := gen.CheckContents(p); err != nil {
			return nil, err
		}
	}
	eo := exportOptions(o)
	eo.Progress = o.Progress
	return export.Write(p, o.OutDir, eo)
}

// exportOptions opens the layer cache unless o turns it off. A cache that
// cannot be opened (no home folder, a read-only one) is not used: the
// cache only ever saves time.
func exportOptions(o Options) export.Options {
	o = o.WithDefaults()
	if o.NoCache {
		return export.Options{}
	}
	dir := o.CacheDir
	if dir == "" {
		d, err := layercache.DefaultDir()
		if err != nil {
			return export.Options{}
		}
		dir = d
	}
	c, err := layercache.Open(dir)
	if err != nil {
		fmt.Fprintf(o.Stderr, "storepack: not using the layer cache: %v\n", err)
		return export.Options{}
	}
	return export.Options{Cache: c}
}

// context is o.Context, or a context that never ends.
func (o Options) context() context.Context {
	if o.Context == nil {
		return context.Background()
	}
	return o.Context
}

// lockPath is the lock file of o's spec.
func lockPath(o Options) string { return filepath.Join(o.SpecDir, LockFile) }

// WritePlan prints plan as indented JSON: what `storepack plan` and
// `mage plan` print and golden files hold.
func WritePlan(w io.Writer, plan *export.Description) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(plan)
}
