package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	sp "github.com/storepack/storepack"
	"github.com/storepack/storepack/internal/progress"
	"github.com/storepack/storepack/spec"
)

// specFlags are the flags of every verb that reads a spec.
type specFlags struct {
	dir     string
	out     string
	vars    varFlag
	timeout time.Duration
}

func (f *specFlags) register(fs *flag.FlagSet, withOut bool) {
	dirFlag(fs, &f.dir)
	fs.Var(&f.vars, "var", "set a variable: --var name=value (repeatable; overrides STOREPACK_VAR_name)")
	fs.DurationVar(&f.timeout, "timeout", 0, "give the whole run up after `DURATION` (e.g. 10m), removing its temporary files; 0: no limit (each network wait is bounded anyway: docs/cache.md)")
	if withOut {
		fs.StringVar(&f.out, "out", "", "the output folder (default: $STOREPACK_OUT, else out; a relative one in the -C folder)")
	}
}

// dirFlag registers -C on fs.
func dirFlag(fs *flag.FlagSet, dir *string) {
	fs.StringVar(dir, "C", "", "run as if started in `DIR`, as git -C: the spec (default: $STOREPACK_SPEC, else DIR), relative outputs and storepack.lock are taken from there")
}

// options gives the pipeline options, bounded by e's context and
// --timeout; names are the exports to run.
func (f *specFlags) options(e *env, names []string) sp.Options {
	e.setTimeout(f.timeout)
	return sp.Options{Dir: f.dir, OutDir: f.out, Vars: f.vars.m, Exports: names, Stderr: e.stderr, Context: e.ctx}.WithDefaults()
}

// progressDelay, when set at link time (go build -ldflags
// -X=main.progressDelay=-1s), is how long an export runs before its
// progress bar shows (a negative duration: at once), instead of a second:
// what the terminal test builds with, for exports that take milliseconds.
var progressDelay string

// progressFor is the progress reporter of an export verb writing to
// stderr: a bar on a terminal, plain lines elsewhere.
func progressFor(stderr io.Writer) progress.Reporter {
	var c progress.Config
	if d, err := time.ParseDuration(progressDelay); err == nil {
		c.Delay = d
	}
	return progress.Auto(stderr, c)
}

// varFlag collects --var name=value.
type varFlag struct{ m map[string]string }

func (v *varFlag) String() string { return "" }

func (v *varFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("want name=value, got %q", s)
	}
	if v.m == nil {
		v.m = map[string]string{}
	}
	v.m[name] = value
	return nil
}

// specError turns the pipeline's "the spec has errors" (whose diagnostics
// are already printed) into a short line.
func specError(o sp.Options, err error) error {
	if errors.Is(err, sp.ErrSpec) {
		return fmt.Errorf("%s: the spec has errors (above)", o.SpecDir)
	}
	return err
}

// specSetup is the setup of a verb that takes the spec flags only: run
// is given the options, with the exports named as operands, and its errors
// pass through specError.
func specSetup(run func(e *env, o sp.Options) error) func(fs *flag.FlagSet) func(*env, []string) error {
	return func(fs *flag.FlagSet) func(*env, []string) error {
		var f specFlags
		f.register(fs, false)
		return func(e *env, args []string) error {
			o := f.options(e, args)
			if err := run(e, o); err != nil {
				return specError(o, err)
			}
			return nil
		}
	}
}

var exportVerb = &verb{
	name:     "export",
	operands: "[EXPORT...]",
	summary:  "Write the spec's exports (all, or those named) into the output folder.",
	min:      0, max: -1,
	setup: func(fs *flag.FlagSet) func(*env, []string) error {
		var f specFlags
		var check, noCache, quiet bool
		f.register(fs, true)
		fs.BoolVar(&quiet, "q", false, "show no progress on stderr (default: $STOREPACK_QUIET; otherwise a bar on a terminal, plain lines elsewhere)")
		fs.BoolVar(&check, "check", false, "re-hash every store item first and fail when one differs from its recorded NAR hash, as nix-store --verify --check-contents (default: $STOREPACK_CHECK)")
		fs.BoolVar(&noCache, "no-cache", false, "read every image layer from the store, neither using nor filling the layer cache in $XDG_CACHE_HOME/storepack (default: $STOREPACK_NO_CACHE)")
		return func(e *env, args []string) error {
			o := f.options(e, args)
			o.Check = o.Check || check
			o.NoCache = o.NoCache || noCache
			if !quiet && !sp.Quiet() {
				o.Progress = progressFor(e.stderr)
			}
			files, err := sp.Export(o)
			if err != nil {
				return specError(o, err)
			}
			for _, file := range files {
				fmt.Fprintf(e.stdout, "%s/%s\tsha256:%s\t%d bytes\n", o.OutDir, file.Path, file.SHA256, file.Size)
			}
			return nil
		}
	},
}

var planVerb = &verb{
	name:     "plan",
	operands: "[EXPORT...]",
	summary:  "Print the evaluated plan as JSON (--summary: for people); no archive is written.",
	min:      0, max: -1,
	setup: func(fs *flag.FlagSet) func(*env, []string) error {
		var f specFlags
		var summary bool
		var since string
		f.register(fs, false)
		fs.BoolVar(&summary, "summary", false, "print each export's outputs and, for images, each layer with its size, reason and items, the largest items and the total, instead of the JSON")
		fs.StringVar(&since, "since", "", "print only the image layers the plan has that the release `LOCK` (a storepack.lock) lacks, their bytes and items, instead of the JSON")
		return func(e *env, args []string) error {
			o := f.options(e, args)
			if since != "" {
				diff, next, err := sp.Since(o, o.InDir(since))
				if err != nil {
					return specError(o, pathError(since, err))
				}
				sp.WriteDiff(e.stdout, diff, next)
				return nil
			}
			plan, err := sp.Plan(o)
			if err != nil {
				return specError(o, err)
			}
			if summary {
				return sp.WriteSummary(e.stdout, plan)
			}
			return sp.WritePlan(e.stdout, plan)
		}
	},
}

var diffVerb = &verb{
	name:     "diff",
	operands: "OLD NEW",
	summary:  "Print the image layers NEW has that OLD lacks, their bytes and items: what a push and a pull of NEW cost (plans from storepack plan, storepack.lock files, OCI layouts or archives).",
	min:      2, max: 2,
	setup: func(fs *flag.FlagSet) func(*env, []string) error {
		return func(e *env, args []string) error {
			prev, err := sp.ReadLayers(args[0])
			if err != nil {
				return pathError(args[0], err)
			}
			next, err := sp.ReadLayers(args[1])
			if err != nil {
				return pathError(args[1], err)
			}
			sp.WriteDiff(e.stdout, sp.DiffLayers(prev, next), next)
			return nil
		}
	},
}

var whyVerb = &verb{
	name:     "why",
	operands: "EXPORT PATH",
	summary:  "Print the chain of references that pulls PATH (a store path or an item's name) into EXPORT's closure, as nix why-depends.",
	min:      2, max: 2,
	setup: func(fs *flag.FlagSet) func(*env, []string) error {
		var f specFlags
		var system string
		f.register(fs, false)
		fs.StringVar(&system, "system", "", "the system whose closure to search (default: the export's first)")
		return func(e *env, args []string) error {
			o := f.options(e, nil)
			chain, err := sp.Why(o, args[0], system, args[1])
			if err != nil {
				return specError(o, err)
			}
			sp.WriteWhy(e.stdout, chain)
			return nil
		}
	},
}

var lockVerb = &verb{
	name:     "lock",
	operands: "",
	summary:  "Rebuild every export and record the digests of its outputs in storepack.lock.",
	min:      0, max: 0,
	setup: specSetup(func(e *env, o sp.Options) error {
		p, err := sp.WriteLock(o)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, "wrote", p)
		return nil
	}),
}

var verifyVerb = &verb{
	name:     "verify",
	operands: "[EXPORT...]",
	summary:  "Rebuild the exports and fail, with a diff, on any difference from storepack.lock.",
	min:      0, max: -1,
	setup: specSetup(func(e *env, o sp.Options) error {
		if err := sp.Verify(o); err != nil {
			var d *sp.VerifyError
			if errors.As(err, &d) {
				fmt.Fprintf(e.stderr, "%s differs from a fresh build (-want +got):\n%s", d.Lock, d.Diff)
				return fmt.Errorf("%s: exports %s differ from a fresh build (diff above)", d.Lock, strings.Join(d.Exports, ", "))
			}
			return err
		}
		fmt.Fprintln(e.stdout, "verified: every output matches", sp.LockFile)
		return nil
	}),
}

var validateVerb = &verb{
	name:     "validate",
	operands: "",
	summary:  "Check the spec and print every problem found.",
	min:      0, max: 0,
	setup: specSetup(func(e *env, o sp.Options) error {
		if _, err := sp.Load(o); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, "the spec is valid")
		return nil
	}),
}

var fmtVerb = &verb{
	name:     "fmt",
	operands: "[FILE...]",
	summary:  "Rewrite the spec's *.hcl files (or FILEs) in canonical layout; -check only lists them and fails.",
	min:      0, max: -1,
	setup: func(fs *flag.FlagSet) func(*env, []string) error {
		var dir string
		var check bool
		dirFlag(fs, &dir)
		fs.BoolVar(&check, "check", false, "write nothing; exit 1 when a file is not formatted")
		return func(e *env, args []string) error {
			o := sp.Options{Dir: dir}
			files := make([]string, len(args))
			for i, a := range args {
				files[i] = o.InDir(a)
			}
			changed, diags, err := spec.Format(o.WithDefaults().SpecDir, files, check)
			for _, c := range changed {
				fmt.Fprintln(e.stdout, c)
			}
			if len(diags) > 0 {
				spec.WriteDiagnostics(e.stderr, nil, diags, false)
				return fmt.Errorf("%s: syntax errors (above); not formatted", diags[0].Subject.Filename)
			}
			if err != nil {
				return err
			}
			if check && len(changed) > 0 {
				return fmt.Errorf("%s: not formatted (run storepack fmt)", strings.Join(changed, ", "))
			}
			return nil
		}
	},
}
