package storepack

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/storepack/storepack/export"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store"
)

// summaryBar is the width of the widest layer's size bar in WriteSummary.
const summaryBar = 24

// summaryLargest is how many of the closure's largest items WriteSummary
// lists for each system.
const summaryLargest = 10

// WriteSummary prints d for people (storepack plan --summary): for each
// export its format and outputs, and for each system the closure's size;
// for images each layer with its size as a bar, its reason and its items
// (by name); the closure's largest items; and the total.
func WriteSummary(w io.Writer, d *export.Description) error {
	for i, e := range d.Exports {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "export %s (%s): %s\n", e.Name, e.Format, e.Output)
		for _, s := range e.Systems {
			var narBytes int64
			for _, it := range s.Closure {
				narBytes += it.NarSize
			}
			fmt.Fprintf(w, "  %s: %d store items, %s", s.Name, len(s.Closure), humanBytes(narBytes))
			if s.Output != "" {
				fmt.Fprintf(w, " -> %s", s.Output)
			}
			fmt.Fprintln(w)
			if s.Image != nil {
				writeLayers(w, s)
			}
			writeLargest(w, s.Closure)
		}
	}
	return nil
}

// writeLayers lists the layers of s's image, bottom first.
func writeLayers(w io.Writer, s export.SystemDescription) {
	img := s.Image
	fmt.Fprintf(w, "    image %s, %d layers:\n", img.Plan.Tag, len(img.BaseBlobs)+len(img.Blobs))
	var largest, total int64
	for _, b := range img.BaseBlobs {
		largest = max(largest, b.BlobSize)
	}
	for _, b := range img.Blobs {
		largest = max(largest, b.BlobSize)
	}
	for _, b := range img.BaseBlobs {
		total += b.BlobSize
		fmt.Fprintf(w, "    %s %9s  base  %s\n", bar(b.BlobSize, largest), humanBytes(b.BlobSize), b.Digest)
	}
	for i, b := range img.Blobs {
		l := &img.Plan.Layers[i]
		total += b.BlobSize
		fmt.Fprintf(w, "    %s %9s  %-9s %s\n", bar(b.BlobSize, largest), humanBytes(b.BlobSize), l.Reason, layerItems(l))
	}
	fmt.Fprintf(w, "    total %s in layer blobs\n", humanBytes(total))
}

// layerItems names a layer's items, or says what else it holds.
func layerItems(l *plan.Layer) string {
	if len(l.Items) == 0 {
		return fmt.Sprintf("(%d folders, symlinks and files)", len(l.Entries))
	}
	names := make([]string, len(l.Items))
	for i, p := range l.Items {
		names[i] = p.Name()
	}
	return strings.Join(names, " ")
}

// writeLargest lists the largest items of closure by NAR size.
func writeLargest(w io.Writer, closure []plan.Item) {
	items := slices.Clone(closure)
	slices.SortStableFunc(items, func(a, b plan.Item) int {
		return cmp.Or(cmp.Compare(b.NarSize, a.NarSize), cmp.Compare(a.Path, b.Path))
	})
	items = items[:min(len(items), summaryLargest)]
	fmt.Fprintf(w, "    largest items:\n")
	for _, it := range items {
		fmt.Fprintf(w, "    %9s  %s\n", humanBytes(it.NarSize), it.Path)
	}
}

// bar is n of most as a bar of at most summaryBar characters, padded.
func bar(n, most int64) string {
	k := 0
	if most > 0 {
		k = int((n*summaryBar + most - 1) / most)
	}
	return "[" + strings.Repeat("#", k) + strings.Repeat(" ", summaryBar-k) + "]"
}

// humanBytes is n in B, KiB, MiB or GiB, one decimal.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, suffix := float64(n)/unit, "KiB"
	for _, s := range []string{"MiB", "GiB", "TiB"} {
		if v < unit {
			break
		}
		v, suffix = v/unit, s
	}
	return fmt.Sprintf("%.1f %s", v, suffix)
}

// Why is the chain of references by which export's closure for system
// (its first system when "") holds path: a root first, path last, each
// item referring to the next; the shortest such chain, the first in root
// and reference order among those. path is a store path or an item's
// name (the store path without its hash part) when one item has it.
func Why(o Options, exportName, system, path string) ([]store.Path, error) {
	o.Exports = []string{exportName}
	p, done, err := generate(o)
	if err != nil {
		return nil, err
	}
	defer done()
	for i := range p.Exports {
		e := &p.Exports[i]
		for j := range e.Systems {
			s := &e.Systems[j]
			if system == "" || s.Name == system {
				return whyChain(s, path)
			}
		}
		return nil, fmt.Errorf("export %q has no system %s", exportName, system)
	}
	return nil, fmt.Errorf("no export named %q in the spec", exportName)
}

// whyChain is Why for one system's closure.
func whyChain(s *plan.System, name string) ([]store.Path, error) {
	items := plan.Items(s.Closure)
	target := store.Path(name)
	if _, ok := items[target]; !ok {
		var found []store.Path
		for _, it := range s.Closure {
			if it.Path.Name() == name || it.Path.Base() == name {
				found = append(found, it.Path)
			}
		}
		switch len(found) {
		case 0:
			return nil, fmt.Errorf("%s: not in the closure of %s", name, s.Name)
		case 1:
			target = found[0]
		default:
			return nil, fmt.Errorf("%s: %d items of the closure have that name: give the store path", name, len(found))
		}
	}
	// Breadth first from the roots: the first path found is the shortest.
	from := map[store.Path]store.Path{}
	seen := map[store.Path]bool{}
	var queue []store.Path
	for _, r := range s.Roots {
		if _, ok := items[r]; ok && !seen[r] {
			seen[r] = true
			queue = append(queue, r)
		}
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == target {
			chain := []store.Path{p}
			for q, ok := from[p]; ok; q, ok = from[q] {
				chain = append(chain, q)
			}
			slices.Reverse(chain)
			return chain, nil
		}
		for _, r := range items[p].References {
			if _, ok := items[r]; ok && !seen[r] {
				seen[r] = true
				from[r] = p
				queue = append(queue, r)
			}
		}
	}
	return nil, fmt.Errorf("%s: in the closure of %s but no root refers to it", target, s.Name)
}

// WriteWhy prints a chain from Why as nix why-depends does: the root,
// then each item referring to the next, indented below it.
func WriteWhy(w io.Writer, chain []store.Path) {
	for i, p := range chain {
		if i == 0 {
			fmt.Fprintln(w, p)
			continue
		}
		fmt.Fprintf(w, "%s└───%s\n", strings.Repeat("    ", i-1), p)
	}
}
