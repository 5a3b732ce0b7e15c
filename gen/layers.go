package gen

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"

	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store"
)

// Layering: how a closure's items are spread over an image's layers.
//
// An image has at most max_layers layers (1..127, default 100), the extra
// layer of folders and symlinks included. With max_layers = 1 everything is
// in one layer. Otherwise max_layers-1 layers hold store items: when the
// closure has that many items or fewer, every item has a layer of its own;
// when it has more, the items are ranked by popularity and the first
// max_layers-2 get layers of their own, while the rest share the last item
// layer.
//
// popularity is the nixpkgs idea (buildLayeredImage's "popularity
// contest"): an item that many items of the closure depend on (glibc, bash,
// the C++ runtime) is an item that other images built from the same store
// are likely to hold too, so it should be a layer of its own that registries
// and engines share between images; the items at the top of the graph (the
// application and what only it uses) change with every release and are the
// ones worth merging. We count, for each item, the closure items that depend
// on it directly or through other items, itself included. nixpkgs counts the
// paths from the roots to the item in the reference graph instead; both rank
// the bottom of a graph first, but path counts grow exponentially with the
// graph's depth while ours are bounded by the closure size and easy to check
// by hand.
//
// We chose popularity over the size-based auto-layering of newer nixpkgs
// (which gives the biggest items layers of their own) because popularity
// predicts sharing, which is what layers are for, and it depends on the
// reference graph only: an item's rank does not move when an unrelated item
// grows. Among items of the same popularity, the items of the spec's
// source blocks (local files, the working tree) rank after the store's:
// they change with every edit, so they belong in the top layers, and a
// re-export of a docker archive resumes after the unchanged layers below
// them (export/docker.go). Remaining ties are broken by the item's name
// (the store path without its hash part), then by the full path, so that a
// rebuilt item with a new hash keeps its place. Item layers are ordered by rank, most popular first (at
// the bottom of the image, where engines share the longest chains), then the
// merged layer; the extra layer is the top one.

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

// groupItems spreads ranked items over at most slots layers: one item per
// layer when they fit, else the first slots-1 items alone and the rest
// together in the last group, sorted by path. slots must be at least 1.
func groupItems(ranked []store.Path, slots int) ([][]store.Path, error) {
	if slots < 1 {
		return nil, fmt.Errorf("%d layers for store items: need at least 1", slots)
	}
	if len(ranked) == 0 {
		return nil, nil
	}
	var groups [][]store.Path
	if len(ranked) <= slots {
		for _, p := range ranked {
			groups = append(groups, []store.Path{p})
		}
		return groups, nil
	}
	for _, p := range ranked[:slots-1] {
		groups = append(groups, []store.Path{p})
	}
	rest := store.SortPaths(ranked[slots-1:])
	return append(groups, rest), nil
}
