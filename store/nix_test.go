package store

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/storepack/storepack/internal/oracle"
	"github.com/storepack/storepack/store/nar"
)

// realStores are the store layouts the Nix oracle is run with: Nix's own,
// and Guix's folders (the same schema, under /gnu/store and /var/guix).
var realStores = []struct {
	dir Dir
	env []string
}{
	{"/nix/store", nil},
	{"/gnu/store", []string{"NIX_STORE_DIR=/gnu/store", "NIX_STATE_DIR=/var/guix", "NIX_LOG_DIR=/var/log/guix"}},
}

// nixCmd runs a Nix tool in single-user mode against the store at dir,
// returning its standard output.
func nixCmd(t *testing.T, env []string, tool string, args ...string) string {
	t.Helper()
	return string(oracle.Output(t, oracle.Nix(t, env, tool, args...)))
}

// openReal opens a real store with its database ("auto") or by scanning.
func openReal(t *testing.T, dir Dir, db string) *Store {
	t.Helper()
	t.Setenv("NIX_STATE_DIR", "")
	s, err := Open(Options{Dir: dir, DB: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if db == DBAuto && s.DBPath() == "" {
		t.Fatalf("no database found for %s", dir)
	}
	return s
}

// TestSourcePathNix compares SourcePath with the paths nix-store --add
// gives a file and a folder, and reads them back from the store.
func TestSourcePathNix(t *testing.T) {
	nixStore := oracle.Require(t, "nix-store")
	for _, st := range realStores {
		for _, src := range []string{"testdata/source/hello.txt", "testdata/source"} {
			t.Run(string(st.dir)+"/"+filepath.Base(src), func(t *testing.T) {
				abs, err := filepath.Abs(src)
				if err != nil {
					t.Fatal(err)
				}
				want := strings.TrimSpace(nixCmd(t, st.env, nixStore, "--add", abs))
				sum, size, err := nar.Hash(abs)
				if err != nil {
					t.Fatal(err)
				}
				got, err := st.dir.SourcePath(sum[:], filepath.Base(abs), nil, false)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != want {
					t.Fatalf("SourcePath = %s, nix-store --add gives %s", got, want)
				}
				for _, mode := range []string{DBAuto, DBNone} {
					info, err := openReal(t, st.dir, mode).Info(got)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(info.NarHash, sum[:]) || info.NarSize != size || len(info.References) != 0 {
						t.Errorf("%s: Info(%s) = %x %d %q, want %x %d and no references", mode, got, info.NarHash, info.NarSize, info.References, sum, size)
					}
				}
			})
		}
	}
}

// TestClosureNix builds testdata/graph.nix with Nix and compares what the
// store package reads, from the database and by scanning, with nix-store.
func TestClosureNix(t *testing.T) {
	nixBuild := oracle.Require(t, "nix-build")
	nixStore := oracle.Require(t, "nix-store")
	for _, st := range realStores {
		t.Run(string(st.dir), func(t *testing.T) {
			out := nixCmd(t, st.env, nixBuild, "--option", "sandbox", "false", "--option", "build-users-group", "",
				"--no-out-link", "testdata/graph.nix")
			byName := map[string]Path{}
			for _, line := range strings.Fields(out) {
				p, err := st.dir.Parse(line)
				if err != nil {
					t.Fatal(err)
				}
				byName[strings.TrimPrefix(p.Name(), "storepack-store-test-")] = p
			}
			if len(byName) != 7 {
				t.Fatalf("nix-build printed %q", out)
			}
			queries := [][]string{{"leaf1", "mid1"}, {"top2", "mid1"}, {"top", "top2"}, {"mid3", "mid2", "leaf2"}}
			for n := range byName {
				queries = append(queries, []string{n})
			}
			slices.SortFunc(queries, func(a, b []string) int { return slices.Compare(a, b) })
			distinguishing := 0
			for _, mode := range []string{DBAuto, DBNone} {
				s := openReal(t, st.dir, mode)
				for _, n := range slices.Sorted(maps.Keys(byName)) {
					p := byName[n]
					refs, err := s.References(p)
					if err != nil {
						t.Fatal(err)
					}
					if want := nixLines(nixCmd(t, st.env, nixStore, "-q", "--references", string(p))); !slices.Equal(refs, SortPaths(want)) {
						t.Errorf("%s: References(%s) = %q, nix-store -q --references gives %q", mode, n, refs, want)
					}
					info, err := s.Info(p)
					if err != nil {
						t.Fatal(err)
					}
					if got, want := "sha256:"+Encode32(info.NarHash), strings.TrimSpace(nixCmd(t, st.env, nixStore, "-q", "--hash", string(p))); got != want {
						t.Errorf("%s: NarHash of %s = %s, nix-store -q --hash gives %s", mode, n, got, want)
					}
					if got, want := fmt.Sprint(info.NarSize), strings.TrimSpace(nixCmd(t, st.env, nixStore, "-q", "--size", string(p))); got != want {
						t.Errorf("%s: NarSize of %s = %s, nix-store -q --size gives %s", mode, n, got, want)
					}
					if mode == DBAuto {
						if want := strings.TrimSpace(nixCmd(t, st.env, nixStore, "-q", "--deriver", string(p))); info.Deriver != want {
							t.Errorf("Deriver(%s) = %q, nix-store -q --deriver gives %q", n, info.Deriver, want)
						}
					}
				}
				for _, q := range queries {
					roots := []Path{}
					args := []string{"-qR"}
					for _, n := range q {
						roots = append(roots, byName[n])
						args = append(args, string(byName[n]))
					}
					want := nixLines(nixCmd(t, st.env, nixStore, args...))
					got, err := s.Closure(roots...)
					if err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(got, want) {
						t.Errorf("%s: Closure(%q) =\n%s\nnix-store %s gives\n%s", mode, q, lines(got), strings.Join(args, " "), lines(want))
					}
					if !slices.Equal(want, dfsFromRoots(t, s, roots)) {
						distinguishing++
					}
				}
			}
			t.Logf("%d closure queries whose order differs from a depth-first walk from the roots", distinguishing/2)
		})
	}
}

// dfsFromRoots is the order a walk from the sorted roots would give: not
// Nix's, which walks the whole closure set in sorted order.
func dfsFromRoots(t *testing.T, s *Store, roots []Path) []Path {
	seen := map[Path]bool{}
	var out []Path
	var visit func(Path)
	visit = func(p Path) {
		if seen[p] {
			return
		}
		seen[p] = true
		refs, err := s.References(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range refs {
			if r != p {
				visit(r)
			}
		}
		out = append(out, p)
	}
	for _, r := range SortPaths(roots) {
		visit(r)
	}
	return out
}

func nixLines(s string) []Path {
	out := []Path{}
	for _, l := range strings.Fields(s) {
		out = append(out, Path(l))
	}
	return out
}

func lines(ps []Path) string { return strings.Join(pathStrings(ps), "\n") }

// TestExportOrderNix checks that nix-store --export writes a closure in
// Closure's order, whatever order it is given the paths in.
func TestExportOrderNix(t *testing.T) {
	nixBuild := oracle.Require(t, "nix-build")
	nixStore := oracle.Require(t, "nix-store")
	st := realStores[0]
	out := nixCmd(t, st.env, nixBuild, "--option", "sandbox", "false", "--option", "build-users-group", "",
		"--no-out-link", "testdata/graph.nix")
	s := openReal(t, st.dir, DBAuto)
	for _, root := range nixLines(out) {
		want, err := s.Closure(root)
		if err != nil {
			t.Fatal(err)
		}
		given := slices.Clone(want)
		slices.Reverse(given)
		bundle := nixCmd(t, st.env, nixStore, append([]string{"--export"}, pathStrings(given)...)...)
		got, err := exportedPaths(strings.NewReader(bundle))
		if err != nil {
			t.Fatalf("reading nix-store --export of %s: %v", root, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("nix-store --export of %s's closure writes\n%s\nClosure gives\n%s", root, lines(got), lines(want))
		}
	}
}

// exportedPaths lists the store paths of an export bundle, in order.
func exportedPaths(r io.Reader) ([]Path, error) {
	br := nar.NewBundleReader(bufio.NewReader(r))
	var out []Path
	for {
		if _, err := br.Next(); err == io.EOF {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		e, err := br.Entry()
		if err != nil {
			return nil, err
		}
		out = append(out, Path(e.Path))
	}
}
