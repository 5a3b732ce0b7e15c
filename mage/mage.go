// Package mage holds storepack's mage targets. Import it into a magefile
// with
//
//	//mage:import
//	_ "github.com/storepack/storepack/mage"
//
// to get the targets export, plan, lock, verify and push. They read the spec from
// the current folder (STOREPACK_SPEC names another), write into out/
// (STOREPACK_OUT), run every export (STOREPACK_EXPORTS names some) and take
// variables from STOREPACK_VAR_<name>. Export shows each export's progress
// on stderr (a bar on a terminal, plain lines elsewhere) unless
// STOREPACK_QUIET=1.
package mage

import (
	"bufio"
	"context"
	"fmt"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/storepack/storepack"
	"github.com/storepack/storepack/internal/progress"
)

// Deps are targets that run before every storepack target, such as the
// build of a program a spec's source block adds. A magefile sets it in an
// init function.
var Deps []any

// Options are the options the targets run with; a magefile may set fields
// that the environment does not (SpecDir, OutDir, Vars).
var Options storepack.Options

func prepare(ctx context.Context) {
	if len(Deps) > 0 {
		mg.CtxDeps(ctx, Deps...)
	}
}

// Export writes every export of the spec (or those in STOREPACK_EXPORTS) into out/, showing progress on stderr (STOREPACK_QUIET=1: none).
func Export(ctx context.Context) error {
	prepare(ctx)
	o := Options.WithDefaults()
	if o.Progress == nil && !storepack.Quiet() {
		o.Progress = progress.Auto(o.Stderr, progress.Config{})
	}
	files, err := storepack.Export(o)
	if err != nil {
		return err
	}
	for _, f := range files {
		fmt.Printf("%s/%s\tsha256:%s\t%d bytes\n", o.OutDir, f.Path, f.SHA256, f.Size)
	}
	return nil
}

// Plan prints the evaluated plan as JSON on stdout; no archive is written.
func Plan(ctx context.Context) error {
	prepare(ctx)
	plan, err := storepack.Plan(Options)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(os.Stdout)
	if err := storepack.WritePlan(w, plan); err != nil {
		return err
	}
	return w.Flush()
}

// Lock rebuilds every export and records its digests in storepack.lock.
func Lock(ctx context.Context) error {
	prepare(ctx)
	p, err := storepack.WriteLock(Options)
	if err != nil {
		return err
	}
	fmt.Println("wrote", p)
	return nil
}

// Verify rebuilds every export and fails, with a diff, on any difference from storepack.lock.
func Verify(ctx context.Context) error {
	prepare(ctx)
	if err := storepack.Verify(Options); err != nil {
		return err
	}
	fmt.Println("verified: every output matches", storepack.LockFile)
	return nil
}
