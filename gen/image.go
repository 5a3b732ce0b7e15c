package gen

import (
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
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
)

// Image is the plan of one image (one system of a docker or oci export):
// its platform, tag and creation time, its layers with what each holds,
// and the settings of its config. Package image encodes it.
type Image struct {
	// Platform is the system's architecture, os and variant.
	Platform Platform `json:"platform"`
	// Tag is the image's full reference, name:tag.
	Tag string `json:"tag"`
	// Created is the image's creation time, UTC: the config's created
	// time, and, rounded down to the second (MTime), the modification time
	// of every tar entry.
	Created time.Time `json:"created"`
	// Layers are the image's layers, bottom first.
	Layers []Layer `json:"layers"`
	// Compression is the compression of the layer blobs ("none", "gzip"
	// or "zstd"); empty for formats whose layers are always uncompressed
	// (docker).
	Compression format.Compression `json:"compression,omitempty"`
	// Config holds the settings of the image's config.
	Config ImageConfig `json:"config"`
	// Base is the image this one is built on, for its platform: its layers
	// come first, its config gives the defaults (Config has them merged).
	Base *base.Image `json:"base,omitempty"`
	// Annotations go on the image's manifest (and the index's): the
	// standard OCI ones storepack knows (created; version, from a tag
	// other than latest) and the spec's, which override them.
	Annotations map[string]string `json:"annotations,omitempty"`
}

// MTime is the modification time of every tar entry of the image, in Unix
// seconds: Created rounded down to the second.
func (img *Image) MTime() int64 { return img.Created.Unix() }

// ImageConfig holds how an image runs, as the spec sets it.
type ImageConfig struct {
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Cmd        []string          `json:"cmd,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	WorkingDir string            `json:"working_dir,omitempty"`
	User       string            `json:"user,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	// ExposedPorts are "PORT/PROTOCOL".
	ExposedPorts []string `json:"exposed_ports,omitempty"`
	Volumes      []string `json:"volumes,omitempty"`
}

// Layer is one layer of an image: a tree of store items (each under its
// store path) and entries (folders and symlinks the image needs).
type Layer struct {
	// ID names the layer deterministically before its bytes are known: the
	// hex sha256 of its description (entries, items with their NAR
	// hashes), so layers with the same contents get the same ID. Docker
	// archives use it as the layer's folder name.
	ID string `json:"id"`
	Tree
	// CreatedBy and Comment describe the layer in the config's history.
	CreatedBy string `json:"created_by"`
	Comment   string `json:"comment,omitempty"`
}

// Platform is an image platform: architecture, OS and variant.
type Platform = platform.Platform

// PlanImage plans the image of sys, one system of export e (an image
// format), whose Name, Roots, Closure and ClosureDigest are set: Generate
// calls it for every image. It reads the first root's files only to see
// whether it has a bin folder for the default /bin symlink.
func PlanImage(e *spec.Export, sys *System) (*Image, error) {
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
	items := Items(sys.Closure)
	storeDir := sys.Closure[0].Path.Dir()
	parents := storeParents(storeDir)
	links, err := symlinks(e, ss, sys, items, storeDir)
	if err != nil {
		return nil, err
	}
	fixed := append(slices.Clone(parents), Entry{Path: "/tmp", Type: EntryDirectory, Mode: 0o1777})
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

	img := &Image{Platform: plat, Tag: tag, Created: created, Annotations: annotations(e, created)}
	if e.Image.Base != "" {
		b, err := base.Resolve(e.Image.Base, plat, base.Options{Insecure: e.Insecure})
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
	if !e.Format.Def().Uncompressed {
		img.Compression = e.Image.Compression
		if img.Compression == "" {
			img.Compression = format.None
		}
		if !e.Format.Takes(img.Compression) {
			return nil, fmt.Errorf("unknown layer compression %q: want one of %q", img.Compression, e.Format.Def().Compressions)
		}
	}
	if maxLayers == 1 {
		paths := make([]store.Path, 0, len(sys.Closure))
		for i := range sys.Closure {
			paths = append(paths, sys.Closure[i].Path)
		}
		img.Layers = []Layer{{
			Tree:      Tree{Items: store.SortPaths(paths), Entries: extra},
			CreatedBy: fmt.Sprintf("storepack: %d store items, folders and symlinks", len(paths)),
		}}
	} else {
		named, rest := namedLayers(e, sys.Closure, items)
		for _, nl := range named {
			img.Layers = append(img.Layers, Layer{
				Tree:      Tree{Items: nl.items, Entries: parents},
				CreatedBy: fmt.Sprintf("storepack: layer %s: %s", nl.name, storeItems(len(nl.items))),
				Comment:   "the items of the layer block " + nl.name + " and of their closures",
			})
		}
		slots := maxLayers - 1 - len(named)
		if len(rest) > 0 && slots < 1 {
			return nil, fmt.Errorf("max_layers = %d: the %d layer blocks and the layer of folders and symlinks leave no layer for the other %d store items", maxLayers, len(named), len(rest))
		}
		groups, err := groupItems(rankItems(rest), max(slots, 1))
		if err != nil {
			return nil, err
		}
		for i, g := range groups {
			l := Layer{Tree: Tree{Items: g, Entries: parents}}
			if len(g) == 1 {
				l.CreatedBy = "storepack: store item " + string(g[0])
			} else {
				l.CreatedBy = fmt.Sprintf("storepack: %d store items", len(g))
				l.Comment = fmt.Sprintf("the items ranked %d and below by popularity, merged", i+1)
			}
			img.Layers = append(img.Layers, l)
		}
		img.Layers = append(img.Layers, Layer{Tree: Tree{Entries: extra}, CreatedBy: "storepack: folders and symlinks"})
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
	img.Config = ImageConfig{
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
	return img, nil
}

// inherit gives c its base's settings where the spec sets none: the
// environment merged by name (the spec's values win), entry point, cmd,
// user and working folder.
func inherit(c *ImageConfig, b base.Config) {
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
func namedLayers(e *spec.Export, closure []Item, items map[store.Path]*Item) ([]namedLayer, []Item) {
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
	var rest []Item
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
	if _, t, err := spec.ParseReference(e.Image.Tag); err == nil && e.Image.Tag != "" && t != "" && t != "latest" {
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
func imageTag(e *spec.Export, sys *System, plat Platform) (string, error) {
	ref := e.Image.Tag
	if ref == "" {
		hexDigest := strings.TrimPrefix(string(sys.ClosureDigest), "sha256:")
		if len(hexDigest) < 10 {
			return "", fmt.Errorf("closure digest %q is too short for a default tag", sys.ClosureDigest)
		}
		ref = e.Name + ":" + hexDigest[:10]
	}
	name, tag, err := spec.ParseReference(ref)
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
		if _, _, err := spec.ParseReference(name + ":" + tag); err != nil {
			return "", fmt.Errorf("tag %q is too long once the architecture is appended", tag)
		}
	}
	return name + ":" + tag, nil
}

// IndexTag is the tag of the image index of a multi-system export: the
// systems' tags without their "-<architecture><variant>" suffix when they
// agree (the spec's tag), else, for default tags made from differing
// closures, "<export name>:" and the first 10 hex digits of the sha256 of
// the systems' closure digests, one a line in system order. An export of
// one system has its image's tag.
func (e *Export) IndexTag() (string, error) {
	if len(e.Systems) == 0 || e.Systems[0].Image == nil {
		return "", fmt.Errorf("export %q has no image", e.Name)
	}
	if len(e.Systems) == 1 {
		return e.Systems[0].Image.Tag, nil
	}
	base := ""
	h := sha256.New()
	for i := range e.Systems {
		img := e.Systems[i].Image
		if img == nil {
			return "", fmt.Errorf("export %q, system %s: no image plan", e.Name, e.Systems[i].Name)
		}
		b, ok := strings.CutSuffix(img.Tag, "-"+img.Platform.TagSuffix())
		if !ok {
			return "", fmt.Errorf("export %q, system %s: tag %s lacks its platform suffix", e.Name, e.Systems[i].Name, img.Tag)
		}
		if i == 0 {
			base = b
		} else if b != base {
			base = ""
		}
		fmt.Fprintf(h, "%s\n", e.Systems[i].ClosureDigest)
	}
	if base != "" {
		return base, nil
	}
	return e.Name + ":" + hex.EncodeToString(h.Sum(nil))[:10], nil
}

// layerID hashes what determines a layer's bytes besides the mtime (and
// the compression): the tar format's version and LayerInputs. The mtime is
// left out so that SOURCE_DATE_EPOCH changes the layers' bytes and digests
// but not their names.
func layerID(l *Layer, items map[store.Path]*Item) string {
	h := sha256.New()
	fmt.Fprintf(h, "storepack layer 1\n")
	for _, line := range LayerInputs(l, items) {
		fmt.Fprintf(h, "%s\n", line)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// LayerInputs describes, a line each, what the tar of layer l depends on
// besides its mtime: its entries (with a file's contents), its items with
// their NAR hashes, and, for a layer with the store database, every item
// of the closure (items, by path) with what the database records. Layer IDs
// and layer cache keys hash them.
func LayerInputs(l *Layer, items map[store.Path]*Item) []string {
	var out []string
	db := false
	for _, e := range l.Entries {
		out = append(out, fmt.Sprintf("entry %s %04o %q %q", e.Type, uint32(e.Mode), e.Path, e.Target))
		if e.UID != 0 || e.GID != 0 {
			out = append(out, fmt.Sprintf("owner %d:%d", e.UID, e.GID))
		}
		if e.Type == EntryFile {
			out = append(out, fmt.Sprintf("content %q", e.Content))
		}
		db = db || e.Type == EntryDatabase
	}
	for _, p := range l.Items {
		out = append(out, fmt.Sprintf("item %q %s", string(p), items[p].NarHash))
	}
	if db {
		paths := make([]store.Path, 0, len(items))
		for p := range items {
			paths = append(paths, p)
		}
		for _, p := range store.SortPaths(paths) {
			it := items[p]
			out = append(out, fmt.Sprintf("registered %q %s %d %q %q", string(it.Path), it.NarHash, it.NarSize, it.Deriver, it.References))
		}
	}
	return out
}
