package store

import "slices"

// SortPaths returns a sorted copy of ps without duplicates: Nix's order for
// reference lists.
func SortPaths(ps []Path) []Path {
	out := slices.Clone(ps)
	slices.Sort(out)
	return slices.Compact(out)
}
