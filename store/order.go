package store

import "fmt"

// ClosureOrder lists every item reachable from roots through refs,
// dependencies first, in the order Nix's `nix-store -qR` prints and
// `nix-store --export` writes: a depth-first walk over the items in sorted
// order that visits each item's references (sorted, itself skipped) before
// the item.
func ClosureOrder(roots []Path, refs func(Path) ([]Path, error)) ([]Path, error) {
	// Nix sorts the whole closure set, so first collect it.
	all := map[Path][]Path{}
	queue := SortPaths(roots)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if _, seen := all[p]; seen {
			continue
		}
		rs, err := refs(p)
		if err != nil {
			return nil, err
		}
		rs = SortPaths(rs)
		all[p] = rs
		for _, r := range rs {
			if _, seen := all[r]; !seen {
				queue = append(queue, r)
			}
		}
	}
	keys := make([]Path, 0, len(all))
	for p := range all {
		keys = append(keys, p)
	}
	keys = SortPaths(keys)

	const (
		unvisited = iota
		active
		done
	)
	state := make(map[Path]int, len(all))
	out := make([]Path, 0, len(all))
	var visit func(p, parent Path) error
	visit = func(p, parent Path) error {
		switch state[p] {
		case active:
			return fmt.Errorf("cycle in references: %s and %s refer to each other", parent, p)
		case done:
			return nil
		}
		state[p] = active
		for _, r := range all[p] {
			if r != p {
				if err := visit(r, p); err != nil {
					return err
				}
			}
		}
		state[p] = done
		out = append(out, p)
		return nil
	}
	for _, p := range keys {
		if err := visit(p, ""); err != nil {
			return nil, err
		}
	}
	return out, nil
}
