package gen

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/base"
	"github.com/storepack/storepack/internal/platform"
	"github.com/storepack/storepack/internal/reference"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
)

// PlanImage plans the image of sys, one system of export e (an image
// format), whose Name, Roots, Closure and ClosureDigest are set: Generate
// calls it for every image. It reads the first root's files only to see
// whether it has a bin folder for the default /bin symlink.
func PlanImage(ctx context.Context, e *spec.Export, sys *plan.System) (*plan.Image, error) {
	if len(sys.Closure) == 0 {
		return nil, errors.New("image of an empty closure")
	}
	plat, err := platform.Lookup(sys.Name)
	if err != nil {
		return nil, err
	}
	ss := specSystem(e, sys.Name)
	created, err := e.CreatedTime()
	if err != nil {
		return nil, err
	}
	tag, err := imageTag(e, sys, plat)
	if err != nil {
		return nil, err
	}
	maxLayers := e.Image.MaxLayers
	if maxLayers == 0 {
		maxLayers = spec.DefaultMaxLayers
	}
	if maxLayers < 1 || maxLayers > spec.MaxLayersLimit {
		return nil, fmt.Errorf("max_layers = %d: must be 1 to %d", maxLayers, spec.MaxLayersLimit)
	}
	items := plan.Items(sys.Closure)
	storeDir := sys.Closure[0].Path.Dir()
	parents := storeParents(storeDir)
	links, err := symlinks(e, ss, sys, items, storeDir)
	if err != nil {
		return nil, err
	}
	fixed := append(slices.Clone(parents), plan.Entry{Path: "/tmp", Type: plan.EntryDirectory, Mode: 0o1777})
	if e.Database {
		fixed = append(fixed, databaseEntry(storeDir))
	}
	contents, err := contentEntries(e, storeDir)
	if err != nil {
		return nil, err
	}
	fixed = append(fixed, contents...)
	extra, err := treeEntries(fixed, links, storeDir)
	if err != nil {
		return nil, err
	}

	img := &plan.Image{Platform: plat, Tag: tag, Created: created, Annotations: annotations(e, created)}
	if e.Image.Base != "" {
		b, err := base.Resolve(e.Image.Base, plat, base.Options{Insecure: e.Insecure, Context: ctx})
		if err != nil {
			return nil, err
		}
		img.Base = b
		// The base's layers count against max_layers.
		maxLayers -= len(b.Layers)
		if maxLayers < 1 {
			return nil, fmt.Errorf("base %s has %d layers, max_layers %d leaves none for the closure", e.Image.Base, len(b.Layers), maxLayers+len(b.Layers))
		}
	}
	img.Compression = e.Image.Compression
	if img.Compression == "" {
		img.Compression = format.None
	}
	if !e.Format.Takes(img.Compression) {
		return nil, fmt.Errorf("unknown layer compression %q: want one of %q", img.Compression, e.Format.Def().Compressions)
	}
	if maxLayers == 1 {
		paths := make([]store.Path, 0, len(sys.Closure))
		for i := range sys.Closure {
			paths = append(paths, sys.Closure[i].Path)
		}
		img.Layers = []plan.Layer{{
			Tree:      plan.Tree{Items: store.SortPaths(paths), Entries: extra},
			Reason:    ReasonAll,
			CreatedBy: fmt.Sprintf("storepack: %d store items, folders and symlinks", len(paths)),
		}}
	} else {
		named, rest := namedLayers(e, sys.Closure, items)
		for _, nl := range named {
			img.Layers = append(img.Layers, plan.Layer{
				Tree:      plan.Tree{Items: nl.items, Entries: parents},
				Reason:    ReasonBlock(nl.name),
				CreatedBy: fmt.Sprintf("storepack: layer %s: %s", nl.name, storeItems(len(nl.items))),
				Comment:   "the items of the layer block " + nl.name + " and of their closures",
			})
		}
		slots := maxLayers - 1 - len(named)
		if len(rest) > 0 && slots < 1 {
			return nil, fmt.Errorf("max_layers = %d: the %d layer blocks and the layer of folders and symlinks leave no layer for the other %d store items", maxLayers, len(named), len(rest))
		}
		split, err := splitItems(rest, sys.Roots, max(slots, 1))
		if err != nil {
			return nil, err
		}
		for _, il := range split {
			l := plan.Layer{Tree: plan.Tree{Items: il.items, Entries: parents}, Reason: il.reason}
			switch {
			case len(il.items) == 1:
				l.CreatedBy = "storepack: store item " + string(il.items[0])
			case il.reason == ReasonRoot:
				l.CreatedBy = fmt.Sprintf("storepack: root: %s", storeItems(len(il.items)))
				l.Comment = "the export's top items"
			case il.reason == ReasonAll:
				l.CreatedBy = fmt.Sprintf("storepack: %s", storeItems(len(il.items)))
			default:
				l.CreatedBy = fmt.Sprintf("storepack: %s: %s", il.reason, storeItems(len(il.items)))
				l.Comment = "a run of items in dependency order"
			}
			img.Layers = append(img.Layers, l)
		}
		img.Layers = append(img.Layers, plan.Layer{Tree: plan.Tree{Entries: extra}, Reason: ReasonExtra, CreatedBy: "storepack: folders and symlinks"})
	}
	for i := range img.Layers {
		img.Layers[i].ID = layerID(&img.Layers[i], items)
	}

	entrypoint, cmd := e.Entrypoint, e.Cmd
	if ss != nil && ss.Entrypoint != nil {
		entrypoint = ss.Entrypoint
	}
	if ss != nil && ss.Cmd != nil {
		cmd = ss.Cmd
	}
	img.Config = plan.ImageConfig{
		Entrypoint:   slices.Clone(entrypoint),
		Cmd:          slices.Clone(cmd),
		Env:          e.Env,
		WorkingDir:   e.Image.WorkingDir,
		User:         e.Image.User,
		Labels:       e.Image.Labels,
		ExposedPorts: slices.Clone(e.Image.ExposedPorts),
		Volumes:      slices.Clone(e.Image.Volumes),
	}
	if img.Base != nil {
		inherit(&img.Config, img.Base.Config)
	}
	if ip, ok := e.Format.Entry().(ImagePlanner); ok {
		s, err := settings(e, ss, sys, items)
		if err != nil {
			return nil, err
		}
		if err := ip.PlanImage(img, s); err != nil {
			return nil, err
		}
	}
	return img, nil
}

// inherit gives c its base's settings where the spec sets none: the
// environment merged by name (the spec's values win), entry point, cmd,
// user and working folder.
func inherit(c *plan.ImageConfig, b plan.BaseConfig) {
	if len(b.Env) > 0 {
		env := map[string]string{}
		for _, kv := range b.Env {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		maps.Copy(env, c.Env)
		c.Env = env
	}
	if c.Entrypoint == nil {
		c.Entrypoint = slices.Clone(b.Entrypoint)
	}
	if c.Cmd == nil {
		c.Cmd = slices.Clone(b.Cmd)
	}
	if c.User == "" {
		c.User = b.User
	}
	if c.WorkingDir == "" {
		c.WorkingDir = b.WorkingDir
	}
}

// storeItems is "1 store item" or "N store items".
func storeItems(n int) string {
	if n == 1 {
		return "1 store item"
	}
	return fmt.Sprintf("%d store items", n)
}

// namedLayer is the layer of one layer block.
type namedLayer struct {
	name  string
	items []store.Path
}

// namedLayers places the closure's items in e's layer blocks, in block
// order: each block's layer holds its paths and the items of their
// closures that no earlier block placed (paths not in this system's
// closure are left out, and a block left with no item gets no layer). It
// returns the layers and the items left for the popularity layering.
func namedLayers(e *spec.Export, closure []plan.Item, items map[store.Path]*plan.Item) ([]namedLayer, []plan.Item) {
	placed := map[store.Path]bool{}
	var out []namedLayer
	for _, b := range e.Image.Layers {
		var mine []store.Path
		var visit func(p store.Path)
		visit = func(p store.Path) {
			it, ok := items[p]
			if !ok || placed[p] {
				return
			}
			placed[p] = true
			mine = append(mine, p)
			for _, r := range it.References {
				visit(r)
			}
		}
		for _, p := range b.Paths {
			visit(p)
		}
		if len(mine) > 0 {
			out = append(out, namedLayer{b.Name, store.SortPaths(mine)})
		}
	}
	var rest []plan.Item
	for _, it := range closure {
		if !placed[it.Path] {
			rest = append(rest, it)
		}
	}
	return out, rest
}

// annotations are the manifest annotations of e's images: the version is
// the tag the spec gives (not a system's tag), unless it is latest.
func annotations(e *spec.Export, created time.Time) map[string]string {
	a := map[string]string{ocispec.AnnotationCreated: created.Format(time.RFC3339)}
	if _, t, err := reference.Parse(e.Image.Tag); err == nil && e.Image.Tag != "" && t != "" && t != "latest" {
		a[ocispec.AnnotationVersion] = t
	}
	maps.Copy(a, e.Image.Annotations)
	return a
}

// specSystem finds the spec's block for system name, or nil.
func specSystem(e *spec.Export, name string) *spec.System {
	for i := range e.Systems {
		if e.Systems[i].Name == name {
			return &e.Systems[i]
		}
	}
	return nil
}

// imageTag is the image's name:tag: the spec's tag (":latest" when it has
// none) or "<export name>:<first 10 hex digits of the closure digest>";
// with several systems, "-<architecture><variant>" is appended to the tag
// part so that each system's image has its own (hello:1.0-arm64).
func imageTag(e *spec.Export, sys *plan.System, plat plan.Platform) (string, error) {
	ref := e.Image.Tag
	if ref == "" {
		hexDigest := strings.TrimPrefix(string(sys.ClosureDigest), "sha256:")
		if len(hexDigest) < 10 {
			return "", fmt.Errorf("closure digest %q is too short for a default tag", sys.ClosureDigest)
		}
		ref = e.Name + ":" + hexDigest[:10]
	}
	name, tag, err := reference.Parse(ref)
	if err != nil {
		if e.Image.Tag == "" {
			err = fmt.Errorf("default tag from the export's name: %w; set tag", err)
		}
		return "", err
	}
	if len(e.Systems) > 1 {
		for i := range e.Systems {
			if other := e.Systems[i].Name; other != sys.Name {
				if p, err := platform.Lookup(other); err == nil && p.TagSuffix() == plat.TagSuffix() {
					return "", fmt.Errorf("systems %s and %s both give images for %s: their tags would collide", sys.Name, other, plat.TagSuffix())
				}
			}
		}
		tag += "-" + plat.TagSuffix()
		if _, _, err := reference.Parse(name + ":" + tag); err != nil {
			return "", fmt.Errorf("tag %q is too long once the architecture is appended", tag)
		}
	}
	return name + ":" + tag, nil
}

// layerID hashes what determines a layer's bytes besides the mtime (and
// the compression): the tar format's version and LayerInputs. The mtime is
// left out so that SOURCE_DATE_EPOCH changes the layers' bytes and digests
// but not their names.
func layerID(l *plan.Layer, items map[store.Path]*plan.Item) string {
	h := sha256.New()
	fmt.Fprintf(h, "storepack layer 1\n")
	for _, line := range plan.LayerInputs(l, items) {
		fmt.Fprintf(h, "%s\n", line)
	}
	return hex.EncodeToString(h.Sum(nil))
}
