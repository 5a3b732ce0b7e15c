package storepack

// This file keeps docs/architecture.md true: it reads the layer list
// drawn there and checks the module's imports against it.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path"
	"slices"
	"sort"
	"strings"
	"testing"
)

// architectureDoc is the document whose ```layers block the tests read.
const architectureDoc = "docs/architecture.md"

// testHelpers are the packages that exist for tests (module-relative).
// Non-test code imports them only from another test helper or from one
// of testHelperImporters.
var testHelpers = []string{
	"internal/fixture",
	"internal/storetest",
	"internal/nixdb",
	"internal/nixtest",
	"internal/oracle",
	"internal/gotest",
	"internal/s3test",
}

// testHelperImporters may import test helpers from non-test code: the
// benchmark runner builds its stores with them.
var testHelperImporters = []string{
	"internal/bench",
}

// writerForbidden lists what no writer (a package under export/) links,
// directly or not: a dependency matches an entry that is it or a folder
// above it.
var writerForbidden = []struct{ dep, what string }{
	{"github.com/hashicorp/hcl", "the spec language"},
	{"github.com/google/go-containerregistry/pkg/v1/remote", "a registry client"},
}

// writerExempt are the packages under export/ (and export itself) that
// may link what writerForbidden lists, by design.
var writerExempt = map[string]string{
	"export": "the orchestrating package: it takes a spec's settings and pushes to registries",
}

// writerAllowlist are writers that link what writerForbidden lists
// today although they should not; each entry is a TODO to remove.
// The test fails when an entry is no longer needed.
var writerAllowlist = map[string]string{
	// None today. Add "export/<pkg>": "TODO: ..." only with a plan to
	// move the dependency out.
}

// layer is one line of the layers block: its name, its package
// patterns and the line of the document it is on.
type layer struct {
	name     string
	patterns []string
	line     int
}

// parseLayers reads the one ```layers block of an architecture
// document: the layers top to bottom, one a line, each
// `name: pattern pattern... # description`. Lines whose first
// non-blank character is '#' (headings, descriptions carried over to
// the next line) and blank lines are skipped.
func parseLayers(r io.Reader) ([]layer, error) {
	var (
		layers       []layer
		in, found    bool
		names        = map[string]bool{}
		patternLayer = map[string]string{}
	)
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		switch {
		case !in && text == "```layers":
			if found {
				return nil, fmt.Errorf("line %d: a second ```layers block", n)
			}
			in, found = true, true
			continue
		case !in:
			continue
		case strings.HasPrefix(text, "```"):
			in = false
			continue
		}
		text, _, _ = strings.Cut(text, "#")
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		name, rest, ok := strings.Cut(text, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("line %d: %q is not `layer: patterns # description`", n, text)
		}
		if names[name] {
			return nil, fmt.Errorf("line %d: layer %q twice", n, name)
		}
		names[name] = true
		l := layer{name: name, patterns: strings.Fields(rest), line: n}
		if len(l.patterns) == 0 {
			return nil, fmt.Errorf("line %d: layer %q has no packages", n, name)
		}
		for _, p := range l.patterns {
			if err := checkPattern(p); err != nil {
				return nil, fmt.Errorf("line %d: %v", n, err)
			}
			if other, ok := patternLayer[p]; ok {
				return nil, fmt.Errorf("line %d: pattern %q in layers %q and %q", n, p, other, name)
			}
			patternLayer[p] = name
		}
		layers = append(layers, l)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	switch {
	case !found:
		return nil, errors.New("no ```layers block")
	case in:
		return nil, errors.New("the ```layers block does not end")
	case len(layers) == 0:
		return nil, errors.New("the ```layers block lists no layers")
	}
	return layers, nil
}

// checkPattern reports whether p is a module-relative package pattern:
// "." or a clean relative path, optionally ending in "/..." or holding
// path.Match wildcards.
func checkPattern(p string) error {
	dir := strings.TrimSuffix(p, "/...")
	if _, err := path.Match(dir, ""); err != nil || dir == "" || path.Clean(dir) != dir ||
		path.IsAbs(dir) || dir == ".." || strings.HasPrefix(dir, "../") || strings.Contains(dir, "...") ||
		(dir == "." && dir != p) {
		return fmt.Errorf("bad package pattern %q", p)
	}
	return nil
}

// matchPattern reports whether the module-relative package path rel
// ("." for the root package) matches pattern: "dir/..." matches dir and
// every package under it, a pattern with wildcards matches as path.Match
// does (so "dir/*" matches the packages right under dir), and any other
// pattern only the package it names.
func matchPattern(pattern, rel string) bool {
	if dir, ok := strings.CutSuffix(pattern, "/..."); ok {
		return rel == dir || strings.HasPrefix(rel, dir+"/")
	}
	if strings.ContainsAny(pattern, `*?[\`) {
		ok, _ := path.Match(pattern, rel)
		return ok
	}
	return rel == pattern
}

// specificity ranks the patterns that match one package; the highest
// wins. A full path beats any wildcard; between wildcards the longer
// literal folder wins, and "dir/*" beats "dir/...".
func specificity(pattern string) int {
	if dir, ok := strings.CutSuffix(pattern, "/..."); ok {
		return 2 * len(dir+"/")
	}
	if i := strings.IndexAny(pattern, `*?[\`); i >= 0 {
		return 2*i + 1
	}
	return math.MaxInt
}

// assignLayers gives each package (module-relative) the index of its
// layer in layers: the layer of its most specific pattern. It returns
// the problems found (a package in no layer, a tie between layers, a
// pattern that places no package).
func assignLayers(layers []layer, rels []string) (map[string]int, []string) {
	var problems []string
	placed := map[string]bool{} // patterns that won at least one package
	layerOf := map[string]int{}
	for _, rel := range rels {
		best, bestScore, tied := -1, -1, ""
		var bestPattern string
		for i, l := range layers {
			for _, p := range l.patterns {
				if !matchPattern(p, rel) {
					continue
				}
				switch s := specificity(p); {
				case s > bestScore:
					best, bestScore, bestPattern, tied = i, s, p, ""
				case s == bestScore && i != best:
					tied = fmt.Sprintf("%q (layer %q)", p, l.name)
				}
			}
		}
		switch {
		case best < 0:
			problems = append(problems, fmt.Sprintf("package %s is in no layer of %s", rel, architectureDoc))
		case tied != "":
			problems = append(problems, fmt.Sprintf("package %s matches %q (layer %q) and %s equally",
				rel, bestPattern, layers[best].name, tied))
		default:
			layerOf[rel] = best
			placed[bestPattern] = true
		}
	}
	for _, l := range layers {
		for _, p := range l.patterns {
			if !placed[p] {
				problems = append(problems, fmt.Sprintf("pattern %q of layer %q (%s:%d) places no package",
					p, l.name, architectureDoc, l.line))
			}
		}
	}
	return layerOf, problems
}

// goPackage is what the tests read of `go list -json` about a package.
type goPackage struct {
	ImportPath string
	Imports    []string // non-test imports
	Deps       []string // everything it links, recursively
	Module     *struct{ Path string }
	Error      *struct{ Err string }
}

// listPackages runs `go list` once for the module's packages (for the
// host's GOOS and GOARCH and default build tags). It returns the module
// path and the packages by module-relative path ("." for the root).
func listPackages(t *testing.T) (string, map[string]goPackage) {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Imports,Deps,Module,Error", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	var module string
	pkgs := map[string]goPackage{}
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list: %v", err)
		}
		if p.Error != nil {
			t.Errorf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		if p.Module == nil {
			t.Fatalf("go list: %s is in no module", p.ImportPath)
		}
		if module == "" {
			module = p.Module.Path
		}
		rel, ok := relPath(module, p.ImportPath)
		if !ok {
			t.Fatalf("go list: %s is not in module %s", p.ImportPath, module)
		}
		pkgs[rel] = p
	}
	if len(pkgs) == 0 {
		t.Fatal("go list: no packages")
	}
	return module, pkgs
}

// relPath returns the module-relative path of importPath ("." for the
// module's root package) and whether it is in the module.
func relPath(module, importPath string) (string, bool) {
	if importPath == module {
		return ".", true
	}
	rel, ok := strings.CutPrefix(importPath, module+"/")
	return rel, ok
}

// TestLayering checks the module's packages against the layers of
// docs/architecture.md: every package is in exactly one layer (its most
// specific pattern), and a package imports no package of a layer above
// its own. It also checks that the test helpers stay out of non-test
// code and that the writers link neither the spec language nor a
// registry client.
func TestLayering(t *testing.T) {
	f, err := os.Open(architectureDoc)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := parseLayers(f)
	f.Close()
	if err != nil {
		t.Fatalf("%s: %v", architectureDoc, err)
	}
	module, pkgs := listPackages(t)
	rels := make([]string, 0, len(pkgs))
	for rel := range pkgs {
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	layerOf, problems := assignLayers(layers, rels)

	t.Run("OneLayerEach", func(t *testing.T) {
		for _, p := range problems {
			t.Error(p)
		}
	})

	t.Run("ImportsGoDown", func(t *testing.T) {
		// OneLayerEach reports the packages without a layer.
		for _, rel := range rels {
			from, ok := layerOf[rel]
			if !ok {
				continue
			}
			for _, imp := range pkgs[rel].Imports {
				irel, ok := relPath(module, imp)
				if !ok {
					continue
				}
				if to, ok := layerOf[irel]; ok && to < from {
					t.Errorf("%s (layer %q) imports %s (layer %q), a layer above it in %s",
						rel, layers[from].name, irel, layers[to].name, architectureDoc)
				}
			}
		}
	})

	t.Run("TestHelpers", func(t *testing.T) {
		for _, h := range testHelpers {
			if _, ok := pkgs[h]; !ok {
				t.Errorf("test helper %s is not a package of the module: update testHelpers", h)
			}
		}
		for _, rel := range rels {
			if slices.Contains(testHelpers, rel) || slices.Contains(testHelperImporters, rel) {
				continue
			}
			for _, imp := range pkgs[rel].Imports {
				if irel, ok := relPath(module, imp); ok && slices.Contains(testHelpers, irel) {
					t.Errorf("%s imports the test helper %s outside its tests", rel, irel)
				}
			}
		}
	})

	t.Run("WritersLinkNoSpecOrRegistry", func(t *testing.T) {
		for rel := range writerExempt {
			if _, ok := pkgs[rel]; !ok {
				t.Errorf("writerExempt: %s is not a package of the module", rel)
			}
		}
		for _, rel := range rels {
			if rel != "export" && !strings.HasPrefix(rel, "export/") {
				continue
			}
			if _, ok := writerExempt[rel]; ok {
				continue
			}
			var links []string
			for _, f := range writerForbidden {
				for _, dep := range pkgs[rel].Deps {
					if dep == f.dep || strings.HasPrefix(dep, f.dep+"/") {
						links = append(links, fmt.Sprintf("%s (%s)", dep, f.what))
						break
					}
				}
			}
			_, allowed := writerAllowlist[rel]
			switch {
			case len(links) > 0 && !allowed:
				for _, l := range links {
					t.Errorf("writer %s links %s", rel, l)
				}
			case len(links) == 0 && allowed:
				t.Errorf("writer %s links neither the spec language nor a registry client any more: remove it from writerAllowlist", rel)
			}
		}
		for rel := range writerAllowlist {
			if _, ok := pkgs[rel]; !ok {
				t.Errorf("writerAllowlist: %s is not a package of the module", rel)
			}
		}
	})
}

// TestLayeringPatterns checks the matching and ranking of package
// patterns that TestLayering relies on.
func TestLayeringPatterns(t *testing.T) {
	for _, tc := range []struct {
		pattern, rel string
		match        bool
	}{
		{".", ".", true},
		{".", "spec", false},
		{"spec", "spec", true},
		{"spec", "spec/x", false},
		{"export/*", "export/image", true},
		{"export/*", "export", false},
		{"export/*", "export/image/x", false},
		{"store/...", "store", true},
		{"store/...", "store/nar", true},
		{"store/...", "store/nar/x", true},
		{"store/...", "storetest", false},
		{"cmd/...", "cmd/storepack", true},
		{"internal/*", "internal/base", true},
	} {
		if got := matchPattern(tc.pattern, tc.rel); got != tc.match {
			t.Errorf("matchPattern(%q, %q) = %v, want %v", tc.pattern, tc.rel, got, tc.match)
		}
	}

	// Most specific first.
	ranked := []string{"export/image", "export/image/*", "export/image/...", "export/*", "export/...", "*"}
	for i := 1; i < len(ranked); i++ {
		if specificity(ranked[i-1]) <= specificity(ranked[i]) {
			t.Errorf("specificity(%q) <= specificity(%q)", ranked[i-1], ranked[i])
		}
	}

	for _, bad := range []string{"", "/spec", "./spec", "../x", "spec/", "a//b", "./...", "a/.../b", "a/["} {
		if checkPattern(bad) == nil {
			t.Errorf("checkPattern(%q) accepts it", bad)
		}
	}

	layers, err := parseLayers(strings.NewReader("text\n```layers\n# heading\ntop: a b/... # desc\n  # more desc\n\nbottom: b/c * # x\n```\n"))
	if err != nil {
		t.Fatal(err)
	}
	layerOf, problems := assignLayers(layers, []string{"a", "b", "b/c", "b/d", "z"})
	want := map[string]int{"a": 0, "b": 0, "b/c": 1, "b/d": 0, "z": 1}
	if len(problems) > 0 || fmt.Sprint(layerOf) != fmt.Sprint(want) {
		t.Errorf("assignLayers = %v, %q; want %v and no problems", layerOf, problems, want)
	}
	for _, doc := range []string{
		"no block",
		"```layers\n```\n",
		"```layers\nx: a\n",
		"```layers\nx a\n```\n",
		"```layers\nx:\n```\n",
		"```layers\nx: a\nx: b\n```\n",
		"```layers\nx: a\ny: a\n```\n",
		"```layers\nx: a\n```\n```layers\ny: b\n```\n",
	} {
		if _, err := parseLayers(strings.NewReader(doc)); err == nil {
			t.Errorf("parseLayers(%q) accepts it", doc)
		}
	}
}
