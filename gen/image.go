package gen

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/platform"
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
	created, err := e.Image.CreatedTime()
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
	links, err := imageSymlinks(e, ss, sys, items, storeDir)
	if err != nil {
		return nil, err
	}
	extra, err := extraEntries(parents, links, storeDir)
	if err != nil {
		return nil, err
	}

	img := &Image{Platform: plat, Tag: tag, Created: created}
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
		groups, err := groupItems(rankItems(sys.Closure), maxLayers-1)
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

	entrypoint, cmd := e.Image.Entrypoint, e.Image.Cmd
	if ss != nil && ss.Entrypoint != nil {
		entrypoint = ss.Entrypoint
	}
	if ss != nil && ss.Cmd != nil {
		cmd = ss.Cmd
	}
	img.Config = ImageConfig{
		Entrypoint:   slices.Clone(entrypoint),
		Cmd:          slices.Clone(cmd),
		Env:          e.Image.Env,
		WorkingDir:   e.Image.WorkingDir,
		User:         e.Image.User,
		Labels:       e.Image.Labels,
		ExposedPorts: slices.Clone(e.Image.ExposedPorts),
		Volumes:      slices.Clone(e.Image.Volumes),
	}
	return img, nil
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

// storeParents are the folders above the store's items: /gnu and
// /gnu/store for /gnu/store, at 0755.
func storeParents(d store.Dir) []Entry {
	var out []Entry
	for p := string(d); p != "/"; p = path.Dir(p) {
		out = append(out, Entry{Path: p, Type: EntryDirectory, Mode: 0o755})
	}
	slices.Reverse(out)
	return out
}

// imageSymlinks is the spec's symlinks, or the default: /bin to the first
// path's bin when it is a folder (or a symlink) in that store item.
func imageSymlinks(e *spec.Export, ss *spec.System, sys *System, items map[store.Path]*Item, storeDir store.Dir) (map[string]string, error) {
	if e.Image.Symlinks != nil {
		for link, target := range e.Image.Symlinks {
			if !strings.HasPrefix(target, string(storeDir)+"/") {
				continue
			}
			item, _, err := storeDir.ParseInside(target)
			if err != nil {
				return nil, fmt.Errorf("symlink %s -> %s: %w", link, target, err)
			}
			if _, ok := items[item]; !ok {
				return nil, fmt.Errorf("symlink %s -> %s: %s is not in the closure", link, target, item)
			}
		}
		return e.Image.Symlinks, nil
	}
	var first store.Path
	if ss != nil && len(ss.Paths) > 0 {
		first = ss.Paths[0]
	} else if len(sys.Roots) > 0 {
		first = sys.Roots[0]
	}
	it, ok := items[first]
	if !ok {
		return nil, nil
	}
	fi, err := os.Lstat(it.FSPath + "/bin")
	if err != nil {
		// No bin folder, or a first root that is a file, not a folder.
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, nil
		}
		return nil, fmt.Errorf("%s: %w", first, err)
	}
	if !fi.IsDir() && fi.Mode()&os.ModeSymlink == 0 {
		return nil, nil
	}
	return map[string]string{"/bin": string(first) + "/bin"}, nil
}

// extraEntries lists the extra layer: the store's parents, /tmp, the
// symlinks and the folders above them, sorted by path.
func extraEntries(parents []Entry, links map[string]string, storeDir store.Dir) ([]Entry, error) {
	byPath := map[string]Entry{}
	for _, p := range parents {
		byPath[p.Path] = p
	}
	byPath["/tmp"] = Entry{Path: "/tmp", Type: EntryDirectory, Mode: 0o1777}
	linkPaths := make([]string, 0, len(links))
	for l := range links {
		linkPaths = append(linkPaths, l)
	}
	slices.Sort(linkPaths)
	for _, l := range linkPaths {
		switch {
		case l == "" || l[0] != '/' || path.Clean(l) != l || l == "/":
			return nil, fmt.Errorf("symlink %q: not a clean absolute path below /", l)
		case l == "/tmp" || strings.HasPrefix(l, "/tmp/"):
			return nil, fmt.Errorf("symlink %s: /tmp is the image's temporary folder", l)
		case l == string(storeDir) || strings.HasPrefix(l, string(storeDir)+"/"):
			return nil, fmt.Errorf("symlink %s: inside the store folder %s", l, storeDir)
		case links[l] == "":
			return nil, fmt.Errorf("symlink %s: empty target", l)
		}
		if e, ok := byPath[l]; ok {
			return nil, fmt.Errorf("symlink %s: the image needs %s as a folder", l, e.Path)
		}
		for dir := path.Dir(l); dir != "/"; dir = path.Dir(dir) {
			if _, ok := links[dir]; ok {
				return nil, fmt.Errorf("symlink %s is inside symlink %s", l, dir)
			}
			byPath[dir] = Entry{Path: dir, Type: EntryDirectory, Mode: 0o755}
		}
		byPath[l] = Entry{Path: l, Type: EntrySymlink, Mode: 0o777, Target: links[l]}
	}
	out := make([]Entry, 0, len(byPath))
	for _, e := range byPath {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// layerID hashes what determines a layer's bytes besides the mtime: the tar
// format's version, the entries, and the items with their NAR hashes. The
// mtime is left out so that SOURCE_DATE_EPOCH changes the layers' bytes and
// digests but not their names.
func layerID(l *Layer, items map[store.Path]*Item) string {
	h := sha256.New()
	fmt.Fprintf(h, "storepack layer 1\n")
	for _, e := range l.Entries {
		fmt.Fprintf(h, "entry %s %04o %q %q\n", e.Type, uint32(e.Mode), e.Path, e.Target)
	}
	for _, p := range l.Items {
		fmt.Fprintf(h, "item %q %s\n", string(p), items[p].NarHash)
	}
	return hex.EncodeToString(h.Sum(nil))
}
