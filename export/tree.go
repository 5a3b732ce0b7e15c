package export

import (
	"fmt"
	"strings"

	"github.com/storepack/storepack/export/tree"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store/nar"
)

// treeWriter is what the writers of the file system tree formats share:
// each reads every system's closure once and keeps no temporary folder of
// its own. Their write is writeTrees with the format's own output.
type treeWriter struct{}

func (treeWriter) totals(e *plan.Export) (bytes, items int64) { return closureTotals(e, false) }

func (treeWriter) tempDirs() []string { return nil }

// writeTrees writes one output for each system of the tree export e with
// one, given the system's tree and the source of its items (counted on
// the job's counter), and returns the files, each with its export and
// system.
func writeTrees(j job, one func(sys *plan.System, t *plan.TreeOutput, src tree.Source) (File, error)) (written, error) {
	var out written
	e := j.e
	for i := range e.Systems {
		sys := &e.Systems[i]
		t, src, err := treeSource(e, sys, j.count)
		if err != nil {
			return out, err
		}
		f, err := one(sys, t, src)
		if err != nil {
			return out, fmt.Errorf("export %q, system %s: %w", e.Name, sys.Name, err)
		}
		f.Export, f.System = e.Name, sys.Name
		out.files = append(out.files, f)
	}
	return out, nil
}

// treeSource is the tree of one system of a tree export, and where its
// items are read from, counted on count, with the store database when the
// tree holds it.
func treeSource(e *plan.Export, sys *plan.System, count nar.Counter) (*plan.TreeOutput, tree.Source, error) {
	t := sys.Tree
	if t == nil {
		return nil, tree.Source{}, fmt.Errorf("export %q, system %s: no tree plan", e.Name, sys.Name)
	}
	src, err := tree.Source{Items: plan.Items(sys.Closure), Counter: count}.WithDB(&t.Tree, t.MTime())
	if err != nil {
		return nil, tree.Source{}, fmt.Errorf("export %q, system %s: %w", e.Name, sys.Name, err)
	}
	return t, src, nil
}

// planPackage sets the package metadata of a package format's tree t
// (deb, rpm) from the spec's package block, with the architecture arch
// names the system by in the format ("" when it has none) and, by default,
// a description naming the closure's roots.
func planPackage(t *plan.TreeOutput, s *plan.Settings, f format.Format, arch string) error {
	if s.Package == nil {
		return fmt.Errorf("format %s needs a package block", f)
	}
	if arch == "" {
		return fmt.Errorf("system %s has no %s architecture", s.System, f)
	}
	p := *s.Package
	p.Architecture = arch
	if strings.TrimSpace(p.Description) == "" {
		var roots []string
		for _, r := range s.Roots {
			roots = append(roots, r.Base())
		}
		p.Description = "the store closure of " + strings.Join(roots, ", ")
	}
	t.Package = &p
	return nil
}
