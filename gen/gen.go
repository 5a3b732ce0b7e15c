// Package gen evaluates a spec against a store into a deterministic
// plan.Plan: the closure of each export and system, and for images their
// layers, the folders and symlinks beside the store items, tags and
// settings; for trees, each system's tree. It plans what every output of a
// kind has and asks the format's own planning (TreePlanner, ImagePlanner)
// for the rest, through the registry of package format.
//
// It reads the store, and within the context Generate is given, fetches
// what the plan needs from outside: substituted items (into the
// substitutes cache) and base images' manifests and configs. It writes no
// output.
package gen

import (
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/nar"
	"github.com/storepack/storepack/store/substitute"
)

// Generate evaluates sp against the store it names into a Plan. It reads
// store items (to hash those the database does not describe) and, within
// ctx, reaches outside the machine for two things: the items missing from
// the store, which it downloads from the spec's substituters and unpacks
// into the substitutes cache (substitute.DefaultDir, docs/cache.md), so
// that writers read them as they read the store; and the base images of
// image exports, whose manifests and configs it reads from their
// registries, layouts or archives (their layers are read by the writers).
// It writes nothing else: no output, nothing in the store.
func Generate(ctx context.Context, sp *spec.Spec) (*plan.Plan, error) {
	return GenerateIn(ctx, sp, Dirs{})
}

// Dirs are the folders Generate writes into for the writers to read.
type Dirs struct {
	// Substitutes is where substituted items are unpacked ("":
	// substitute.DefaultDir); Profiles where profiles are written ("":
	// ProfileDir). The front ends give temporary ones when the cache is
	// turned off or cannot be written.
	Substitutes, Profiles string
}

// GenerateIn is Generate writing into dirs.
func GenerateIn(ctx context.Context, sp *spec.Spec, dirs Dirs) (*plan.Plan, error) {
	st, err := store.Open(store.Options{Dir: sp.Store.Dir, DB: sp.Store.DB, Root: sp.Store.Root})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	g := &generator{ctx: ctx, spec: sp, store: st, items: map[store.Path]*plan.Item{}, sources: map[store.Path]*spec.Source{}, profileDir: dirs.Profiles}
	if len(sp.Store.Substituters) > 0 {
		dir := dirs.Substitutes
		if dir == "" {
			if dir, err = substitute.DefaultDir(); err != nil {
				return nil, err
			}
		}
		if g.sub, err = substitute.New(sp.Store.Substituters, sp.Store.TrustedPublicKeys, sp.Store.Dir, dir); err != nil {
			return nil, err
		}
	}
	for i := range sp.Sources {
		g.sources[sp.Sources[i].StorePath] = &sp.Sources[i]
	}
	p := &plan.Plan{StoreDir: sp.Store.Dir}
	for _, f := range sp.Files {
		p.SpecFiles = append(p.SpecFiles, plan.SpecFile{Path: f, SHA256: sp.FileSHA256[f]})
	}
	if len(sp.Variables) > 0 {
		p.Variables = sp.Variables
	}
	for i := range sp.Exports {
		e, err := g.export(&sp.Exports[i])
		if err != nil {
			return nil, err
		}
		p.Exports = append(p.Exports, *e)
	}
	// Download and unpack the substituted items, in parallel.
	if len(g.substituted) > 0 {
		if err := g.sub.FetchAll(ctx, g.substituted); err != nil {
			return nil, err
		}
	}
	return p, nil
}

type generator struct {
	ctx     context.Context
	spec    *spec.Spec
	store   *store.Store
	items   map[store.Path]*plan.Item
	sources map[store.Path]*spec.Source
	// sub reads items missing from the store from binary caches (nil
	// without substituters); substituted are those it will fetch.
	sub         *substitute.Substituter
	substituted []store.Path
	subInfo     map[store.Path]*store.PathInfo
	// profileDir is where profiles are written ("": ProfileDir).
	profileDir string
}

// missing reports whether p should come from a substituter: there are
// substituters and the store does not have it.
func (g *generator) missing(p store.Path) bool {
	if g.sub == nil {
		return false
	}
	_, err := os.Lstat(g.store.FSPath(p))
	return err != nil
}

// substitutedInfo is p's narinfo from the substituters, read once.
func (g *generator) substitutedInfo(p store.Path) (*store.PathInfo, error) {
	if info, ok := g.subInfo[p]; ok {
		return info, nil
	}
	info, err := g.sub.Info(g.ctx, p)
	if err != nil {
		return nil, err
	}
	if g.subInfo == nil {
		g.subInfo = map[store.Path]*store.PathInfo{}
	}
	g.subInfo[p] = info
	return info, nil
}

func (g *generator) export(spe *spec.Export) (*plan.Export, error) {
	out := &plan.Export{Name: spe.Name, Format: spe.Format, Output: spe.Output, Push: spe.Push, MountFrom: spe.MountFrom, Insecure: spe.Insecure,
		Compression: spe.Compression, SignKey: spe.SignKey, SBOM: spe.SBOM, Provenance: spe.Provenance}
	for i := range spe.Systems {
		e, ss := spe, &spe.Systems[i]
		sys := &plan.System{Name: ss.Name, Roots: store.SortPaths(ss.Paths)}
		paths, err := g.closure(sys.Roots)
		if err != nil {
			return nil, fmt.Errorf("export %q, system %s: %w", e.Name, ss.Name, err)
		}
		h := sha256.New()
		for _, p := range paths {
			it, err := g.item(p)
			if err != nil {
				return nil, fmt.Errorf("export %q: %w", e.Name, err)
			}
			sys.Closure = append(sys.Closure, *it)
			fmt.Fprintf(h, "%s %s\n", it.Path, it.NarHash)
		}
		if e.Profile != nil {
			if e, ss, err = g.addProfile(e, ss, sys); err != nil {
				return nil, fmt.Errorf("export %q, system %s: %w", spe.Name, spe.Systems[i].Name, err)
			}
			it := sys.Closure[len(sys.Closure)-1]
			fmt.Fprintf(h, "%s %s\n", it.Path, it.NarHash)
		}
		sys.ClosureDigest = digest.NewDigest(digest.SHA256, h)
		if e.Format.Kind() == format.Image {
			img, err := PlanImage(g.ctx, e, sys)
			if err != nil {
				return nil, fmt.Errorf("export %q, system %s: %w", e.Name, ss.Name, err)
			}
			sys.Image = img
		}
		if e.Format.Kind() == format.Tree {
			t, err := PlanTree(e, sys)
			if err != nil {
				return nil, fmt.Errorf("export %q, system %s: %w", e.Name, ss.Name, err)
			}
			sys.Tree = t
		}
		if e.Format.Def().PerSystem {
			sys.Output = systemOutput(e.Format.Ext(e.Compression), e.Output, ss.Name, len(e.Systems))
			if n, ok := e.Format.Entry().(OutputNamer); ok && e.OutputDefault {
				sys.Output = n.OutputName(sys)
			}
		}
		out.Systems = append(out.Systems, *sys)
	}
	return out, nil
}

// references lists what p refers to: a source's scanned references, or the
// store's.
func (g *generator) references(p store.Path) ([]store.Path, error) {
	if src, ok := g.sources[p]; ok {
		return src.References, nil
	}
	if g.missing(p) {
		info, err := g.substitutedInfo(p)
		if err != nil {
			return nil, err
		}
		return info.References, nil
	}
	return g.store.References(p)
}

// closure orders everything roots need as Nix does, dependencies first.
func (g *generator) closure(roots []store.Path) ([]store.Path, error) {
	if err := g.lookUp(roots); err != nil {
		return nil, err
	}
	return store.ClosureOrder(roots, g.references)
}

// lookUp reads the narinfos of the closure of roots that the store lacks
// before the closure is ordered (which asks for each, one at a time):
// level by level, each level's lookups in
// parallel (substitute.InfoAll), not one at a time.
func (g *generator) lookUp(roots []store.Path) error {
	if g.sub == nil {
		return nil
	}
	seen := map[store.Path]bool{}
	level := roots
	for len(level) > 0 {
		var ask []store.Path
		asked := map[store.Path]bool{}
		for _, p := range level {
			if _, ok := g.subInfo[p]; !ok && !asked[p] && g.sources[p] == nil && g.missing(p) {
				ask = append(ask, p)
				asked[p] = true
			}
		}
		infos, err := g.sub.InfoAll(g.ctx, ask)
		if err != nil {
			return err
		}
		if g.subInfo == nil {
			g.subInfo = map[store.Path]*store.PathInfo{}
		}
		maps.Copy(g.subInfo, infos)
		var next []store.Path
		for _, p := range level {
			if seen[p] {
				continue
			}
			seen[p] = true
			// A store item's closure is in the store: only substituted
			// items and sources lead to more lookups.
			if g.sources[p] == nil && !g.missing(p) {
				continue
			}
			refs, err := g.references(p)
			if err != nil {
				return err
			}
			for _, r := range refs {
				if !seen[r] {
					next = append(next, r)
				}
			}
		}
		level = next
	}
	return nil
}

// item describes p, hashing it when the database does not.
func (g *generator) item(p store.Path) (*plan.Item, error) {
	if it, ok := g.items[p]; ok {
		return it, nil
	}
	it := &plan.Item{Path: p, FSPath: g.store.FSPath(p)}
	if src, ok := g.sources[p]; ok {
		it.Source = src.Name
		it.FSPath = src.Path
		it.NarHash = store.Hash(src.NarHash)
		it.NarSize = src.NarSize
		it.References = src.References
	} else if g.missing(p) {
		info, err := g.substitutedInfo(p)
		if err != nil {
			return nil, err
		}
		it.References = info.References
		it.Deriver = info.Deriver
		it.NarSize = info.NarSize
		it.NarHash = store.Hash(info.NarHash)
		it.FSPath = g.sub.Path(info)
		g.substituted = append(g.substituted, p)
	} else {
		info, err := g.store.Info(p)
		if err != nil {
			return nil, err
		}
		it.References = info.References
		it.Deriver = info.Deriver
		it.NarSize = info.NarSize
		if info.NarHash != nil {
			it.NarHash = store.Hash(info.NarHash)
		} else {
			sum, size, err := nar.Hash(it.FSPath)
			if err != nil {
				return nil, err
			}
			it.NarHash = sum
			it.NarSize = size
		}
	}
	if it.References == nil {
		it.References = []store.Path{}
	}
	it.References = slices.Clip(it.References)
	g.items[p] = it
	return it, nil
}

// systemOutput names the file of one system's archive: the export's output
// when it has one system, else the output with "-<system>" before its
// extension: the format's, ext (hello.tar.gz, hello-x86_64-linux.tar.gz),
// when the output ends with it, else the last one (hello.nar,
// hello-x86_64-linux.nar).
func systemOutput(ext, output, system string, systems int) string {
	if systems == 1 {
		return output
	}
	if ext == "" || !strings.HasSuffix(output, ext) {
		ext = path.Ext(output)
	}
	return strings.TrimSuffix(output, ext) + "-" + system + ext
}
