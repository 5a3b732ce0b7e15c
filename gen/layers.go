package gen

import (
	"cmp"
	"container/heap"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"

	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store"
)

// Layering: how a closure's items are spread over an image's layers, so
// that a release of a new version changes only the layers of what changed.
//
// An image has at most max_layers layers (1..127, default 100), the extra
// layer of folders and symlinks included. With max_layers = 1 everything is
// in one layer. Otherwise max_layers-1 layers hold store items (fewer when
// layer blocks took some): when the closure has that many items or fewer,
// every item has a layer of its own. When it has more (splitItems):
//
//   - root: the export's top items (its paths that no other item of the
//     closure refers to: the application, which changes with every
//     release) share a layer of their own, on top of the item layers, so
//     a release that changes only them changes only that layer;
//   - popular: half the layers left go to the most popular items, one each
//     (ranked as below);
//   - group N: the other items fill the other half as runs of their
//     dependency order (dependencies first, ties by name): a change deep
//     in the graph rebuilds the item and its dependents, which follow it
//     in that order, so they fill whole groups of their own and share at
//     most one with unchanged items (a release of the 2 GB benchmark
//     closure rebuilding half its items ships 1.07 times their bytes,
//     against 1.6 with popularity alone). A run ends after an item whose
//     boundary hash hits (its package name's: store.SplitName, no hash
//     part and no version), about every d items for d a power of two
//     sized to the slots; an item only the top items use (a private
//     library of the application) is a run of its own. So a changed,
//     added or removed item changes its own run and no other, a rebuilt
//     or upgraded one stays in its run, and only when the runs outnumber
//     the slots are the two neighbouring runs with the fewest items
//     merged, until they fit.
//
// popularity is the nixpkgs idea (buildLayeredImage's "popularity
// contest"): an item that many items of the closure depend on (glibc, bash,
// the C++ runtime) is an item that other images built from the same store
// are likely to hold too, so it should be a layer of its own that registries
// and engines share between images. We count, for each item, the closure
// items that depend on it directly or through other items, itself included.
// nixpkgs counts the paths from the roots to the item in the reference graph
// instead; both rank the bottom of a graph first, but path counts grow
// exponentially with the graph's depth while ours are bounded by the closure
// size and easy to check by hand. Popularity depends on the reference graph
// only: an item's rank does not move when an unrelated item grows. Among
// items of the same popularity, the items of the spec's source blocks
// (local files, the working tree) rank after the store's: they change with
// every edit. Remaining ties are broken by the item's name (the store path
// without its hash part), then by the full path, so that a rebuilt item
// with a new hash keeps its place.
//
// Why not popularity alone, as before and as buildLayeredImage does: the
// items past the last popular one all shared the last item layer, the top
// items with them, so a release changing only the application re-sent
// that whole layer (81 % of a 1 GB image). Runs bound what a change costs
// to the runs of what it rebuilds, whatever the ranking. (Groups by a
// hash of the package name, tried before, kept an item in its group but
// mixed a rebuild's dependents with unchanged items in every group they
// reached.)
//
// Item layers are ordered popular first (most popular at the bottom of
// the image, where engines share the longest chains), then the groups by
// number, then the root layer; the extra layer is the top one.

// popularity counts, for each item of closure, the closure items that depend
// on it, directly or through others, itself included. References outside
// the closure and self-references are ignored.
func popularity(closure []plan.Item) map[store.Path]int {
	n := len(closure)
	index := make(map[store.Path]int, n)
	for i := range closure {
		index[closure[i].Path] = i
	}
	// below[i] is the set of items i depends on, itself included, as a
	// bit set; memory is n²/8 bytes (3 MB for 5000 items).
	words := (n + 63) / 64
	below := make([][]uint64, n)
	state := make([]uint8, n) // 0 new, 1 in progress, 2 done
	var visit func(i int)
	visit = func(i int) {
		state[i] = 1
		set := make([]uint64, words)
		set[i/64] |= 1 << (i % 64)
		for _, r := range closure[i].References {
			j, ok := index[r]
			if !ok || j == i || state[j] == 1 { // a cycle cannot happen in a store; ignore it
				continue
			}
			if state[j] == 0 {
				visit(j)
			}
			for w := range set {
				set[w] |= below[j][w]
			}
		}
		below[i] = set
		state[i] = 2
	}
	for i := range closure {
		if state[i] == 0 {
			visit(i)
		}
	}
	counts := make([]int, n)
	for i := range below {
		for w, word := range below[i] {
			for word != 0 {
				b := bits.TrailingZeros64(word)
				counts[w*64+b]++
				word &= word - 1
			}
		}
	}
	pop := make(map[store.Path]int, n)
	for i := range closure {
		pop[closure[i].Path] = counts[i]
	}
	return pop
}

// Rank orders the closure's items for layering: most popular first,
// then store items before the items of the spec's sources, then by name
// (the store path without its hash part), then by path. The benchmarks
// use it to price popularity alone, the layering this file replaced.
func Rank(closure []plan.Item) []store.Path {
	pop := popularity(closure)
	ranked := make([]store.Path, 0, len(closure))
	source := map[store.Path]bool{}
	for i := range closure {
		ranked = append(ranked, closure[i].Path)
		source[closure[i].Path] = closure[i].Source != ""
	}
	slices.SortFunc(ranked, func(a, b store.Path) int {
		if c := cmp.Compare(pop[b], pop[a]); c != 0 {
			return c
		}
		if source[a] != source[b] {
			if source[a] {
				return 1
			}
			return -1
		}
		return byName(a, b)
	})
	return slices.Compact(ranked)
}

// Reasons a layer holds what it holds, as plan.Layer.Reason gives them.
const (
	ReasonRoot    = "root"    // the export's top items
	ReasonPopular = "popular" // one item, by popularity rank
	ReasonAll     = "all"     // every item (max_layers = 1, or one layer for items)
	ReasonExtra   = "extra"   // the folders and symlinks
)

// ReasonGroup is the reason of the layer of group n (1-based).
func ReasonGroup(n int) string { return fmt.Sprintf("group %d", n) }

// ReasonBlock is the reason of the layer of the layer block name.
func ReasonBlock(name string) string { return "layer " + name }

// itemLayer is one layer of store items, before its ID: its items (sorted
// by path when several) and why they are together.
type itemLayer struct {
	items  []store.Path
	reason string
}

// splitItems spreads items (the closure's items no layer block placed)
// over at most slots layers, as the comment at the top of this file says.
// roots are the export's paths; those no item of items refers to are its
// top items. slots must be at least 1.
func splitItems(items []plan.Item, roots []store.Path, slots int) ([]itemLayer, error) {
	if slots < 1 {
		return nil, fmt.Errorf("%d layers for store items: need at least 1", slots)
	}
	if len(items) == 0 {
		return nil, nil
	}
	top := topItems(items, roots)
	ranked := Rank(items)
	if len(ranked) <= slots {
		out := make([]itemLayer, 0, len(ranked))
		for _, p := range ranked {
			r := ReasonPopular
			if top[p] {
				r = ReasonRoot
			}
			out = append(out, itemLayer{[]store.Path{p}, r})
		}
		return out, nil
	}
	if slots == 1 {
		return []itemLayer{{store.SortPaths(ranked), ReasonAll}}, nil
	}
	var rootLayer, others []store.Path
	for _, p := range ranked {
		if top[p] {
			rootLayer = append(rootLayer, p)
		} else {
			others = append(others, p)
		}
	}
	left := slots
	if len(rootLayer) > 0 {
		left--
	}
	var out []itemLayer
	if len(others) <= left {
		for _, p := range others {
			out = append(out, itemLayer{[]store.Path{p}, ReasonPopular})
		}
	} else {
		popular := left / 2
		for _, p := range others[:popular] {
			out = append(out, itemLayer{[]store.Path{p}, ReasonPopular})
		}
		for g, ps := range groupRuns(items, others[popular:], privateItems(items, top), left-popular) {
			out = append(out, itemLayer{store.SortPaths(ps), ReasonGroup(g + 1)})
		}
	}
	if len(rootLayer) > 0 {
		out = append(out, itemLayer{store.SortPaths(rootLayer), ReasonRoot})
	}
	return out, nil
}

// topItems are the roots that no other item of items refers to.
func topItems(items []plan.Item, roots []store.Path) map[store.Path]bool {
	top := map[store.Path]bool{}
	for i := range items {
		if slices.Contains(roots, items[i].Path) {
			top[items[i].Path] = true
		}
	}
	for i := range items {
		for _, r := range items[i].References {
			if r != items[i].Path {
				delete(top, r)
			}
		}
	}
	return top
}

// privateItems are the items that only top items refer to: what the
// application alone uses, which comes and goes with it.
func privateItems(items []plan.Item, top map[store.Path]bool) map[store.Path]bool {
	referrers := map[store.Path][]store.Path{}
	for i := range items {
		for _, r := range items[i].References {
			if r != items[i].Path {
				referrers[r] = append(referrers[r], items[i].Path)
			}
		}
	}
	private := map[store.Path]bool{}
	for p, by := range referrers {
		if top[p] {
			continue
		}
		only := true
		for _, q := range by {
			only = only && top[q]
		}
		private[p] = only
	}
	return private
}

// groupRuns cuts grouped (items of items) into at most slots groups: runs
// of their dependency order (dependencies first, ties broken by name then
// path), so that the items a change rebuilds (the dependents of a changed
// item, which follow it in that order) fill whole groups. A run ends after
// an item whose boundary hash (boundary) hits, and a private item is a run
// of its own. Which items end runs depends on their names alone, so a
// changed, added or removed item changes its own run, and a renamed one
// at most the run after it too. With more runs than slots, the two
// neighbouring runs with the fewest items together are merged, until
// they fit.
func groupRuns(items []plan.Item, grouped []store.Path, private map[store.Path]bool, slots int) [][]store.Path {
	order := dependencyOrder(items, grouped)
	// Runs of about d items: d a power of two, so that the closure's size
	// moves it rarely, and runs about three quarters of the slots.
	d := 1
	for len(order)*4 > d*slots*3 {
		d *= 2
	}
	seen := map[string]int{}
	var runs [][]store.Path
	var run []store.Path
	end := func() {
		if len(run) > 0 {
			runs = append(runs, run)
			run = nil
		}
	}
	for _, p := range order {
		if private[p] {
			end()
			runs = append(runs, []store.Path{p})
			continue
		}
		run = append(run, p)
		if boundary(p, seen)%uint64(d) == 0 {
			end()
		}
	}
	end()
	for len(runs) > slots {
		best := 0
		for i := 1; i+1 < len(runs); i++ {
			if len(runs[i])+len(runs[i+1]) < len(runs[best])+len(runs[best+1]) {
				best = i
			}
		}
		runs[best] = append(runs[best], runs[best+1]...)
		runs = slices.Delete(runs, best+1, best+2)
	}
	return runs
}

// boundary is the hash that decides whether p ends a run: the first 8
// bytes of the sha256 of its package name (store.SplitName: no hash part,
// no version, so a rebuilt or upgraded item keeps it) and of how many
// items of that package name came before it in the order (seen counts
// them), which tells apart items of one package name.
func boundary(p store.Path, seen map[string]int) uint64 {
	pname, _ := store.SplitName(p.Name())
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d", pname, seen[pname]))
	seen[pname]++
	return binary.BigEndian.Uint64(sum[:8])
}

// byName orders store paths by name (the path without its hash part),
// then by path.
func byName(a, b store.Path) int {
	if c := cmp.Compare(a.Name(), b.Name()); c != 0 {
		return c
	}
	return cmp.Compare(a, b)
}

// readyItems is a heap of store paths, least by byName first.
type readyItems []store.Path

func (h readyItems) Len() int           { return len(h) }
func (h readyItems) Less(i, j int) bool { return byName(h[i], h[j]) < 0 }
func (h readyItems) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *readyItems) Push(x any)        { *h = append(*h, x.(store.Path)) }
func (h *readyItems) Pop() any {
	old := *h
	p := old[len(old)-1]
	*h = old[:len(old)-1]
	return p
}

// dependencyOrder orders ps (items of items) dependencies first: of the
// items whose dependencies among ps are placed, the one with the least
// name (the store path without its hash part), then path, comes next.
func dependencyOrder(items []plan.Item, ps []store.Path) []store.Path {
	in := make(map[store.Path]bool, len(ps))
	for _, p := range ps {
		in[p] = true
	}
	waiting := map[store.Path]int{}             // an item's dependencies not yet placed
	dependents := map[store.Path][]store.Path{} // who waits for an item
	for i := range items {
		p := items[i].Path
		if !in[p] {
			continue
		}
		waiting[p] += 0
		for _, r := range slices.Compact(store.SortPaths(slices.Clone(items[i].References))) {
			if r != p && in[r] {
				waiting[p]++
				dependents[r] = append(dependents[r], p)
			}
		}
	}
	ready := &readyItems{}
	for p, n := range waiting {
		if n == 0 {
			heap.Push(ready, p)
		}
	}
	order := make([]store.Path, 0, len(ps))
	for ready.Len() > 0 {
		p := heap.Pop(ready).(store.Path)
		order = append(order, p)
		for _, q := range dependents[p] {
			if waiting[q]--; waiting[q] == 0 {
				heap.Push(ready, q)
			}
		}
	}
	// A reference cycle (none in a store) would leave items out: they
	// go last, by name.
	if len(order) < len(waiting) {
		var left []store.Path
		for p, n := range waiting {
			if n > 0 {
				left = append(left, p)
			}
		}
		slices.SortFunc(left, byName)
		order = append(order, left...)
	}
	return order
}
