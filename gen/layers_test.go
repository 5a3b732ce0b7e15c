package gen

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store"
)

// fakePath gives a valid store path for name in dir, its hash part derived
// from the name.
func fakePath(dir store.Dir, name string) store.Path {
	sum := sha256.Sum256([]byte(name))
	return dir.Join(store.Encode32(sum[:20]) + "-" + name)
}

// fakeClosure builds items from a graph given as name -> referenced names.
func fakeClosure(dir store.Dir, graph map[string][]string) []plan.Item {
	var items []plan.Item
	for name, refs := range graph {
		it := plan.Item{Path: fakePath(dir, name), NarHash: sha256.Sum256([]byte(name)), References: []store.Path{}}
		for _, r := range refs {
			it.References = append(it.References, fakePath(dir, r))
		}
		items = append(items, it)
	}
	return items
}

func TestPopularity(t *testing.T) {
	const d = store.Dir("/gnu/store")
	tests := []struct {
		name  string
		graph map[string][]string
		want  map[string]int
	}{
		{
			name:  "chain",
			graph: map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"d"}, "d": nil},
			want:  map[string]int{"a": 1, "b": 2, "c": 3, "d": 4},
		},
		{
			name: "diamond with self references",
			graph: map[string][]string{
				"app": {"app", "libx", "liby"}, "libx": {"libx", "glibc"},
				"liby": {"glibc"}, "glibc": {"glibc"},
			},
			want: map[string]int{"app": 1, "libx": 2, "liby": 2, "glibc": 4},
		},
		{
			name:  "two roots sharing a dependency, one reference outside the closure",
			graph: map[string][]string{"a": {"shared", "elsewhere"}, "b": {"shared"}, "shared": nil},
			want:  map[string]int{"a": 1, "b": 1, "shared": 3},
		},
		{
			name:  "transitive counts each dependent once",
			graph: map[string][]string{"top": {"mid1", "mid2", "base"}, "mid1": {"base"}, "mid2": {"mid1", "base"}, "base": nil},
			want:  map[string]int{"top": 1, "mid2": 2, "mid1": 3, "base": 4},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]int{}
			for p, n := range popularity(fakeClosure(d, tt.graph)) {
				got[p.Name()] = n
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("popularity (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPopularityLarge(t *testing.T) {
	// A chain longer than one bit-set word: item i depends on item i+1.
	const n = 150
	graph := map[string][]string{}
	for i := 0; i < n; i++ {
		var refs []string
		if i+1 < n {
			refs = []string{fmt.Sprintf("item%03d", i+1)}
		}
		graph[fmt.Sprintf("item%03d", i)] = refs
	}
	pop := popularity(fakeClosure("/nix/store", graph))
	for i := 0; i < n; i++ {
		if got := pop[fakePath("/nix/store", fmt.Sprintf("item%03d", i))]; got != i+1 {
			t.Errorf("item%03d: popularity %d, want %d", i, got, i+1)
		}
	}
}

func TestRankItems(t *testing.T) {
	const d = store.Dir("/gnu/store")
	graph := map[string][]string{
		"app": {"liby", "libx", "zlib"}, "libx": {"glibc"}, "liby": {"glibc"},
		"zlib": {"glibc"}, "glibc": nil, "extra-root": nil,
	}
	var got []string
	for _, p := range rankItems(fakeClosure(d, graph)) {
		got = append(got, p.Name())
	}
	// glibc 5; libx, liby, zlib 2 each (by name); app and extra-root 1 (by name).
	want := []string{"glibc", "libx", "liby", "zlib", "app", "extra-root"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rank (-want +got):\n%s", diff)
	}
}

func TestRankItemsSourcesLast(t *testing.T) {
	// Among equally popular items, the spec's sources rank after the
	// store's, whatever their names; popularity still comes first.
	const d = store.Dir("/nix/store")
	graph := map[string][]string{
		"aaa-config": {"glibc"}, "app": nil, "tool": {"glibc"}, "glibc": nil, "zz-tool": nil, "assets": {"app"},
	}
	closure := fakeClosure(d, graph)
	for i := range closure {
		switch closure[i].Path.Name() {
		case "aaa-config", "app", "assets":
			closure[i].Source = closure[i].Path.Name()
		}
	}
	var got []string
	for _, p := range rankItems(closure) {
		got = append(got, p.Name())
	}
	// glibc 3, then app 2 (a source, but more popular), then the items of
	// popularity 1: store items tool, zz-tool, then sources aaa-config, assets.
	want := []string{"glibc", "app", "tool", "zz-tool", "aaa-config", "assets"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rank (-want +got):\n%s", diff)
	}
}

func TestRankItemsStableAcrossRebuilds(t *testing.T) {
	// A rebuilt item (same name, new hash) keeps its place among equally
	// popular items, whatever its hash sorts like.
	const d = store.Dir("/gnu/store")
	base := []plan.Item{
		{Path: d.Join("00000000000000000000000000000000-b"), References: nil},
		{Path: d.Join("11111111111111111111111111111111-a"), References: nil},
	}
	rebuilt := []plan.Item{base[0], {Path: d.Join("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-a")}}
	for _, items := range [][]plan.Item{base, rebuilt} {
		r := rankItems(items)
		if r[0].Name() != "a" || r[1].Name() != "b" {
			t.Errorf("rank of %v: %v, want a then b", items, r)
		}
	}
}

func TestGroupItems(t *testing.T) {
	const d = store.Dir("/nix/store")
	var ranked []store.Path
	// Ranked order deliberately not sorted by path.
	for _, n := range []string{"e", "d", "c", "b", "a"} {
		ranked = append(ranked, fakePath(d, n))
	}
	tests := []struct {
		slots int
		want  [][]string
	}{
		{slots: 10, want: [][]string{{"e"}, {"d"}, {"c"}, {"b"}, {"a"}}},
		{slots: 5, want: [][]string{{"e"}, {"d"}, {"c"}, {"b"}, {"a"}}},
		{slots: 4, want: [][]string{{"e"}, {"d"}, {"c"}, sortedByPath(d, "b", "a")}},
		{slots: 2, want: [][]string{{"e"}, sortedByPath(d, "d", "c", "b", "a")}},
		{slots: 1, want: [][]string{sortedByPath(d, "e", "d", "c", "b", "a")}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.slots), func(t *testing.T) {
			groups, err := groupItems(ranked, tt.slots)
			if err != nil {
				t.Fatal(err)
			}
			var got [][]string
			for _, g := range groups {
				var names []string
				for _, p := range g {
					names = append(names, p.Name())
				}
				got = append(got, names)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("groups (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := groupItems(ranked, 0); err == nil {
		t.Error("groupItems with 0 slots: no error")
	}
	if g, err := groupItems(nil, 3); err != nil || g != nil {
		t.Errorf("groupItems of nothing = %v, %v; want nil, nil", g, err)
	}
}

// sortedByPath lists names in the order of their fake store paths.
func sortedByPath(d store.Dir, names ...string) []string {
	var ps []store.Path
	for _, n := range names {
		ps = append(ps, fakePath(d, n))
	}
	var out []string
	for _, p := range store.SortPaths(ps) {
		out = append(out, p.Name())
	}
	return out
}
