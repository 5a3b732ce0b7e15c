package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	sp "github.com/storepack/storepack"
	"github.com/storepack/storepack/gen"
	"github.com/storepack/storepack/internal/nixtest"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store"
)

// release is one scenario of the release rows: the release before and
// the one after, and the scenario's goal on the bytes of the new
// release's new layers.
type release struct {
	name    string
	v1, v2  nixtest.Release
	goal    string
	allowed func(changed int64) int64 // the most new-layer bytes the goal allows, or -1: only the root's layer
}

// releases prints what a new release of the scale closure's image costs
// (issue 24's scenarios): for each, the bytes of the layers the new
// release's plan has that the old one's lacks (what a push sends and a
// pull fetches; storepack diff), beside the bytes of the items whose
// paths changed and the whole image, and the same for the layering
// dockerTools uses, popularity alone (the max_layers - 1 most popular
// items a layer each, the rest in one), computed from the same ranking.
func releases(bin, tmp string, items, files, size int) {
	const maxLayers = 100
	mib := int64(1 << 20)
	scenarios := []release{
		{name: "top item changed (application bump)", v1: nixtest.Release{Bump: -1}, v2: nixtest.Release{Bump: items - 1},
			goal: "<= 1.1 x changed + 1 MiB", allowed: func(c int64) int64 { return c*11/10 + mib }},
		{name: "one mid-graph item changed (and its dependents)", v1: nixtest.Release{Bump: -1}, v2: nixtest.Release{Bump: items / 2},
			goal: "<= 1.2 x changed", allowed: func(c int64) int64 { return c * 12 / 10 }},
		{name: "an item added (the root changes with it)", v1: nixtest.Release{Bump: -1}, v2: nixtest.Release{Bump: -1, Extra: true},
			goal: "<= 1.2 x changed + 1 MiB", allowed: func(c int64) int64 { return c*12/10 + mib }},
		{name: "an item removed (the root changes with it)", v1: nixtest.Release{Bump: -1, Extra: true}, v2: nixtest.Release{Bump: -1},
			goal: "no new layer but the root's", allowed: func(int64) int64 { return -1 }},
	}
	dir := filepath.Join(tmp, "releases")
	check(os.MkdirAll(dir, 0o755))
	plans := map[nixtest.Release]string{} // release → its plan's file
	planOf := func(r nixtest.Release) string {
		if p, ok := plans[r]; ok {
			return p
		}
		s, err := nixtest.BuildScaleRelease(items, files, size, "storepack-scale", r)
		check(err)
		spec := filepath.Join(dir, fmt.Sprintf("spec-%d-%v", r.Bump, r.Extra))
		check(os.MkdirAll(spec, 0o755))
		check(os.WriteFile(filepath.Join(spec, "storepack.hcl"), fmt.Appendf(nil,
			"store {\n  dir = \"/nix/store\"\n}\n\nexport \"scale\" {\n  format     = \"docker\"\n  paths      = [%q]\n  systems    = [\"x86_64-linux\"]\n  max_layers = %d\n}\n",
			s.Root, maxLayers), 0o644))
		cmd := exec.Command(bin, "plan", "-C", spec)
		cmd.Stderr = os.Stderr
		b, err := cmd.Output()
		check(err)
		check(os.WriteFile(spec+".json", b, 0o644))
		plans[r] = spec + ".json"
		return spec + ".json"
	}

	fmt.Printf("\nreleases of the scale closure's image (docker, max_layers = %d): bytes of the new release's new layers\n\n", maxLayers)
	tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario (v1 -> v2)\tchanged items\tnew layers\tv1 image\tgoal\tmet\tpopularity alone: new layers")
	for _, sc := range scenarios {
		p1, p2 := planOf(sc.v1), planOf(sc.v2)
		l1, err := sp.ReadLayers(p1)
		check(err)
		l2, err := sp.ReadLayers(p2)
		check(err)
		var added int64
		rootOnly := true
		for _, il := range sp.DiffLayers(l1, l2) {
			for _, l := range il.Layers {
				added += l.Size
				rootOnly = rootOnly && l.Reason == "root"
			}
		}
		v1Bytes := layerBytes(l1)
		changed := changedBytes(p1, p2)
		met := "no"
		if limit := sc.allowed(changed); (limit < 0 && rootOnly) || (limit >= 0 && added <= limit) {
			met = "yes"
		}
		pop := popularityCost(p1, p2, maxLayers)
		fmt.Fprintf(tw, "%s\t%s\t%s (%.2f x)\t%s\t%s\t%s\t%s (%.2f x)\n", sc.name, mb(changed), mb(added), float64(added)/float64(changed),
			mb(v1Bytes), sc.goal, met, mb(pop), float64(pop)/float64(changed))
	}
	check(tw.Flush())
	pullRows(bin, tmp, items, files, size, func(v1, v2 nixtest.Release) int64 { return changedBytes(planOf(v1), planOf(v2)) })
}

// mb formats bytes in MiB.
func mb(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// layerBytes sums the distinct layers' bytes of a release.
func layerBytes(ls []sp.ImageLayers) int64 {
	seen := map[string]bool{}
	var n int64
	for _, il := range ls {
		for _, l := range il.Layers {
			if !seen[l.Digest.String()] {
				seen[l.Digest.String()] = true
				n += l.Size
			}
		}
	}
	return n
}

// closureOf reads the closure of a plan's one export and system.
func closureOf(file string) []plan.Item {
	b, err := os.ReadFile(file)
	check(err)
	var p plan.Plan
	check(json.Unmarshal(b, &p))
	if len(p.Exports) != 1 || len(p.Exports[0].Systems) != 1 {
		check(fmt.Errorf("%s: want one export of one system", file))
	}
	return p.Exports[0].Systems[0].Closure
}

// changedBytes is the NAR bytes of the items of plan2 whose paths plan1
// lacks: the items a release really changes.
func changedBytes(plan1, plan2 string) int64 {
	old := map[store.Path]bool{}
	for _, it := range closureOf(plan1) {
		old[it.Path] = true
	}
	var n int64
	for _, it := range closureOf(plan2) {
		if !old[it.Path] {
			n += int64(it.NarSize)
		}
	}
	return n
}

// popularityCost is the NAR bytes of new layers when each release is
// split by popularity alone into maxLayers layers, as dockerTools'
// buildLayeredImage does: the first maxLayers-1 items of the ranking
// (gen.Rank) a layer each, the rest one layer. A layer is new when the
// other release has no layer of the same items.
func popularityCost(plan1, plan2 string, maxLayers int) int64 {
	split := func(file string) map[string]int64 {
		closure := closureOf(file)
		sizes := map[store.Path]int64{}
		for _, it := range closure {
			sizes[it.Path] = int64(it.NarSize)
		}
		ranked := gen.Rank(closure)
		layers := map[string]int64{}
		var rest []string
		var restSize int64
		for i, p := range ranked {
			if i < maxLayers-1 {
				layers[string(p)] = sizes[p]
				continue
			}
			rest = append(rest, string(p))
			restSize += sizes[p]
		}
		if len(rest) > 0 {
			slices.Sort(rest)
			layers[strings.Join(rest, " ")] = restSize
		}
		return layers
	}
	old, next := split(plan1), split(plan2)
	var n int64
	for key, size := range next {
		if _, ok := old[key]; !ok {
			n += size
		}
	}
	return n
}
