package gen

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
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
	for _, p := range Rank(fakeClosure(d, graph)) {
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
	for _, p := range Rank(closure) {
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
		r := Rank(items)
		if r[0].Name() != "a" || r[1].Name() != "b" {
			t.Errorf("rank of %v: %v, want a then b", items, r)
		}
	}
}

// names gives the names of each layer's items, with its reason first.
func names(ls []itemLayer) [][]string {
	var out [][]string
	for _, l := range ls {
		row := []string{l.reason + ":"}
		for _, p := range l.items {
			row = append(row, p.Name())
		}
		out = append(out, row)
	}
	return out
}

func TestSplitItems(t *testing.T) {
	const d = store.Dir("/nix/store")
	// app refers to everything; glibc is the most popular, then libx.
	graph := map[string][]string{
		"app-1.0": {"libx", "liby", "zlib", "glibc", "data"}, "libx": {"glibc"}, "liby": {"glibc", "libx"},
		"zlib": {"glibc"}, "glibc": nil, "data": nil,
	}
	closure := fakeClosure(d, graph)
	roots := []store.Path{fakePath(d, "app-1.0")}
	tests := []struct {
		slots int
		want  [][]string
	}{
		{slots: 10, want: [][]string{{"popular:", "glibc"}, {"popular:", "libx"}, {"popular:", "data"}, {"popular:", "liby"}, {"popular:", "zlib"}, {"root:", "app-1.0"}}},
		{slots: 6, want: [][]string{{"popular:", "glibc"}, {"popular:", "libx"}, {"popular:", "data"}, {"popular:", "liby"}, {"popular:", "zlib"}, {"root:", "app-1.0"}}},
		// 5 layers: the root, 2 popular, the other 3 items over 2 groups:
		// each only the top item uses, so each a run, and the first two
		// merged to fit.
		{slots: 5, want: [][]string{{"popular:", "glibc"}, {"popular:", "libx"}, append([]string{"group 1:"}, sortedByPath(d, "data", "liby")...), {"group 2:", "zlib"}, {"root:", "app-1.0"}}},
		// 2 layers: the root and one group.
		{slots: 2, want: [][]string{append([]string{"group 1:"}, sortedByPath(d, "glibc", "libx", "liby", "zlib", "data")...), {"root:", "app-1.0"}}},
		{slots: 1, want: [][]string{append([]string{"all:"}, sortedByPath(d, "app-1.0", "glibc", "libx", "liby", "zlib", "data")...)}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.slots), func(t *testing.T) {
			got, err := splitItems(closure, roots, tt.slots)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, names(got)); diff != "" {
				t.Errorf("layers (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := splitItems(closure, roots, 0); err == nil {
		t.Error("splitItems with 0 slots: no error")
	}
	if g, err := splitItems(nil, nil, 3); err != nil || g != nil {
		t.Errorf("splitItems of nothing = %v, %v; want nil, nil", g, err)
	}
}

func TestBoundaryIgnoresHashAndVersion(t *testing.T) {
	const d = store.Dir("/nix/store")
	a := boundary(d.Join("00000000000000000000000000000000-openssl-3.0.14"), map[string]int{})
	b := boundary(d.Join("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-openssl-3.0.15"), map[string]int{})
	if a != b {
		t.Errorf("openssl 3.0.14 and 3.0.15: boundary hashes %x and %x; want one", a, b)
	}
	seen := map[string]int{}
	first, second := boundary(d.Join("00000000000000000000000000000000-openssl-3.0.14"), seen), boundary(d.Join("11111111111111111111111111111111-openssl-3.0.14"), seen)
	if first == second {
		t.Errorf("two items of one package name in a row: the same boundary hash %x; want the second told apart", first)
	}
}

// chain is a closure like the scale benchmark's: item i refers to items
// i-1 and i/2, the last is the root; bump rebuilds item bump and so every
// item above it (new paths); extra adds an item only the root uses.
func chain(d store.Dir, n, bump int, extra bool) ([]plan.Item, []store.Path) {
	path := func(i int) store.Path {
		h := strings.Repeat("0", 32)
		if i >= bump && bump >= 0 {
			h = strings.Repeat("1", 32)
		}
		if extra && i == n-1 {
			h = strings.Repeat("3", 32) // the root refers to one more item
		}
		return d.Join(h + fmt.Sprintf("-pkg%03d-1.0", i))
	}
	var items []plan.Item
	for i := 0; i < n; i++ {
		it := plan.Item{Path: path(i), NarSize: 1000}
		if i > 0 {
			it.References = append(it.References, path(i-1))
		}
		if i/2 != i-1 && i > 0 {
			it.References = append(it.References, path(i/2))
		}
		if extra && i == n-1 {
			it.References = append(it.References, d.Join(strings.Repeat("2", 32)+"-extra-1.0"))
		}
		items = append(items, it)
	}
	if extra {
		items = append(items, plan.Item{Path: d.Join(strings.Repeat("2", 32) + "-extra-1.0"), NarSize: 1000})
	}
	return items, []store.Path{path(n - 1)}
}

// TestSplitFollowsDependencies: a rebuilt item deep in the graph changes
// the layers of the items rebuilt with it and at most one more; an item
// only the root uses has a layer of its own, so adding or removing it
// changes no other but the root's.
func TestSplitFollowsDependencies(t *testing.T) {
	const d = store.Dir("/nix/store")
	const n, slots = 500, 99
	layers := func(items []plan.Item, roots []store.Path) map[string][]store.Path {
		ls, err := splitItems(items, roots, slots)
		if err != nil {
			t.Fatal(err)
		}
		if len(ls) > slots {
			t.Fatalf("%d layers for %d slots", len(ls), slots)
		}
		set := map[string][]store.Path{}
		for _, l := range ls {
			set[fmt.Sprint(l.items)] = l.items
		}
		return set
	}
	// newLayers counts the layers of after that before lacks, and those
	// of them that hold unchanged items (hash part 0...) too.
	newLayers := func(before, after map[string][]store.Path) (layers, mixed int) {
		for k, ps := range after {
			if _, ok := before[k]; ok {
				continue
			}
			layers++
			for _, p := range ps {
				if strings.HasPrefix(string(p), string(d)+"/0") {
					mixed++
					break
				}
			}
		}
		return layers, mixed
	}
	v1 := layers(chain(d, n, -1, false))
	for _, bump := range []int{100, 250, 400} {
		v2 := layers(chain(d, n, bump, false))
		// One run holds items on both sides of the change, at most.
		if _, mixed := newLayers(v1, v2); mixed > 1 {
			t.Errorf("item %d rebuilt: %d new layers hold unchanged items too; want at most 1", bump, mixed)
		}
	}
	withExtra := layers(chain(d, n, -1, true))
	for name, c := range map[string][2]map[string][]store.Path{"added": {v1, withExtra}, "removed": {withExtra, v1}} {
		if count, _ := newLayers(c[0], c[1]); count != 2 && name == "added" || count != 1 && name == "removed" {
			t.Errorf("an item %s: %d new layers; want the root's and, when added, the item's own", name, count)
		}
	}
}

// release is a scale-like closure: app refers to every library, each
// library to the two below it and to libc.
func release(d store.Dir, app string, libs int, extra ...string) ([]plan.Item, []store.Path) {
	graph := map[string][]string{"libc": nil}
	var all []string
	for i := 0; i < libs; i++ {
		name := fmt.Sprintf("lib%03d-1.%d", i, i%3)
		refs := []string{"libc"}
		for j := i - 2; j < i; j++ {
			if j >= 0 {
				refs = append(refs, fmt.Sprintf("lib%03d-1.%d", j, j%3))
			}
		}
		graph[name] = refs
		all = append(all, name)
	}
	for _, x := range extra {
		graph[x] = []string{"libc"}
		all = append(all, x)
	}
	graph[app] = append(all, "libc")
	return fakeClosure(d, graph), []store.Path{fakePath(d, app)}
}

// TestSplitStableAcrossReleases: from one release to the next, only the
// layers holding changed, added or removed items change.
func TestSplitStableAcrossReleases(t *testing.T) {
	const d = store.Dir("/nix/store")
	layerSet := func(items []plan.Item, roots []store.Path, slots int) map[string]bool {
		ls, err := splitItems(items, roots, slots)
		if err != nil {
			t.Fatal(err)
		}
		set := map[string]bool{}
		for _, l := range ls {
			set[fmt.Sprint(l.items)] = true
		}
		return set
	}
	v1, r1 := release(d, "app-1.0", 300)
	tests := []struct {
		name    string
		items   []plan.Item
		roots   []store.Path
		changed []string // the items whose layers may change
	}{
		{"top item changed", func() []plan.Item { c, _ := release(d, "app-1.1", 300); return c }(), []store.Path{fakePath(d, "app-1.1")}, []string{"app-1.1"}},
		{"an item added", func() []plan.Item { c, _ := release(d, "app-1.0", 300, "newlib-2.0"); return c }(), r1, []string{"app-1.0", "newlib-2.0"}},
		{"a library upgraded", func() []plan.Item {
			c := slices.Clone(v1)
			for i := range c {
				if c[i].Path.Name() == "lib250-1.1" {
					c[i].Path = d.Join("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-lib250-1.2")
				}
			}
			return c
		}(), r1, []string{"lib250-1.2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := layerSet(v1, r1, 99)
			ls, err := splitItems(tt.items, tt.roots, 99)
			if err != nil {
				t.Fatal(err)
			}
			newLayers := 0
			for _, l := range ls {
				if before[fmt.Sprint(l.items)] {
					continue
				}
				newLayers++
				holds := false
				for _, p := range l.items {
					holds = holds || slices.Contains(tt.changed, p.Name())
				}
				if !holds {
					t.Errorf("new layer %s (%d items) holds none of the changed items %v", l.reason, len(l.items), tt.changed)
				}
			}
			if newLayers == 0 || newLayers > len(tt.changed) {
				t.Errorf("%d new layers, want 1 to %d", newLayers, len(tt.changed))
			}
		})
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
