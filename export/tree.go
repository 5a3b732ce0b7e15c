package export

import (
	"fmt"
	"strings"

	"github.com/storepack/storepack/export/tree"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store"
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
		p.Description = closureDescription(s.Roots)
	}
	t.Package = &p
	return nil
}

// closureDescription is the default description of a package of the
// closure of roots, as lintian and rpmlint want one: a capitalised
// synopsis of at most 80 characters with no article first ("Store closure
// of hello-2.12, guile-3.0.9"; "and N more" past the limit), and an
// extended description saying what the package installs.
func closureDescription(roots []store.Path) string {
	synopsis := "Store closure of"
	var names []string
	for i, r := range roots {
		names = append(names, r.Name())
		more := ""
		if rest := len(roots) - i - 1; rest > 0 {
			more = fmt.Sprintf(" and %d more", rest)
		}
		if i > 0 && len(synopsis)+2+len(r.Name())+len(more) > 80 {
			synopsis += fmt.Sprintf(" and %d more", len(roots)-i)
			break
		}
		if i > 0 {
			synopsis += ","
		}
		synopsis += " " + r.Name()
	}
	dir := "the store"
	if len(roots) > 0 {
		dir = string(roots[0].Dir())
	}
	return synopsis + "\n" + wrap("The store items "+strings.Join(names, ", ")+" and every item they reference, installed at their paths in "+dir+".", 79)
}

// wrap breaks text into lines of at most width bytes at spaces (a longer
// word stays whole).
func wrap(text string, width int) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(text) {
		switch {
		case i == 0:
		case n+1+len(w) > width:
			b.WriteByte('\n')
			n = 0
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}
