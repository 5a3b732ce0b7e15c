package gen

import (
	"cmp"
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
//   - group N: the other items are spread over the other half by a hash of
//     their package name (the store name without its hash part and its
//     version, store.SplitName), so an item always lands in the same group,
//     whatever else the closure holds: a changed, added or removed item
//     changes its own group and no other, and a rebuilt or upgraded item
//     stays in its group.
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
// that whole layer (81 % of a 1 GB image). Groups by name bound what a
// change costs to its own group, whatever the ranking.
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

// rankItems orders the closure's items for layering: most popular first,
// then store items before the items of the spec's sources, then by name
// (the store path without its hash part), then by path.
func rankItems(closure []plan.Item) []store.Path {
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
		if c := cmp.Compare(a.Name(), b.Name()); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
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
	ranked := rankItems(items)
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
		groups := make([][]store.Path, left-popular)
		for _, p := range others[popular:] {
			g := groupOf(p, len(groups))
			groups[g] = append(groups[g], p)
		}
		for g, ps := range groups {
			if len(ps) > 0 {
				out = append(out, itemLayer{store.SortPaths(ps), ReasonGroup(g + 1)})
			}
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

// groupOf is the group, 0 to n-1, of item p among n: the first 8 bytes of
// the sha256 of its package name (store.SplitName), modulo n. It depends
// on p's name alone, so an item keeps its group across releases.
func groupOf(p store.Path, n int) int {
	pname, _ := store.SplitName(p.Name())
	sum := sha256.Sum256([]byte(pname))
	return int(binary.BigEndian.Uint64(sum[:8]) % uint64(n))
}
