package gen

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/platform"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
)

// Image is the plan of one image (one system of a docker or oci export):
// platform, tag, layers with their contents, the config and the docker
// manifest.json entry. The layers' diff ids and sizes, the config's
// rootfs.diff_ids, ConfigDigest and Manifest.Config are only known once the
// layers have been streamed (export fills them through SetDiffIDs); until
// then they are empty.
type Image struct {
	// Platform is the system's architecture, os and variant.
	Platform Platform `json:"platform"`
	// Tag is the image's full reference, name:tag.
	Tag string `json:"tag"`
	// MTime is the modification time of every tar entry, in Unix seconds:
	// the config's created time, rounded down to the second.
	MTime int64 `json:"mtime"`
	// Layers are the image's layers, bottom first.
	Layers []Layer `json:"layers"`
	// Config is the image config (the docker and OCI config JSON).
	Config ocispec.Image `json:"config"`
	// ConfigDigest is the sha256 of ConfigJSON, once the diff ids are set.
	ConfigDigest digest.Digest `json:"config_digest,omitempty"`
	// Manifest is the image's entry in a docker archive's manifest.json.
	Manifest ManifestEntry `json:"manifest"`
	// Compression is the compression of the layer blobs of an oci export
	// ("none", "gzip" or "zstd"); empty for docker exports, whose layers
	// are uncompressed.
	Compression format.Compression `json:"compression,omitempty"`
	// ManifestDigest and ManifestSize describe the image's OCI manifest
	// (ManifestJSON), once the layer blobs are known (SetBlobs).
	ManifestDigest digest.Digest `json:"manifest_digest,omitempty"`
	ManifestSize   int64         `json:"manifest_size,omitempty"`
}

// Layer is one layer of an image: store items (each written under its
// store path) and entries (folders and symlinks the image needs).
type Layer struct {
	// ID names the layer deterministically before its bytes are known: the
	// hex sha256 of its description (entries, items with their NAR
	// hashes), so layers with the same contents get the same ID. Docker archives use it as the
	// layer's folder name.
	ID string `json:"id"`
	// Items are the store items the layer holds, sorted.
	Items []store.Path `json:"items,omitempty"`
	// Entries are the folders and symlinks it holds besides the items,
	// sorted by path: the store folder's parents in every layer, and in the
	// extra layer also /tmp and the symlinks with their parents.
	Entries []Entry `json:"entries"`
	// CreatedBy and Comment describe the layer in the config's history.
	CreatedBy string `json:"created_by"`
	Comment   string `json:"comment,omitempty"`
	// DiffID is the sha256 of the uncompressed layer tar and Size its
	// length, once computed.
	DiffID digest.Digest `json:"diff_id,omitempty"`
	Size   int64         `json:"size,omitempty"`
	// Digest and BlobSize describe the layer's blob in an OCI manifest:
	// the tar compressed as the image's Compression says (the diff id and
	// size again when uncompressed), once computed (SetBlobs).
	Digest   digest.Digest `json:"digest,omitempty"`
	BlobSize int64         `json:"blob_size,omitempty"`
}

// Entry types.
const (
	EntryDirectory = "directory"
	EntrySymlink   = "symlink"
)

// Entry is a folder or symlink of a layer that is not part of a store item.
type Entry struct {
	// Path is absolute, as in the image: /gnu/store, /bin.
	Path string `json:"path"`
	// Type is EntryDirectory or EntrySymlink.
	Type string `json:"type"`
	// Mode is the permission bits (with the sticky bit for /tmp).
	Mode Mode `json:"mode"`
	// Target is a symlink's target, verbatim.
	Target string `json:"target,omitempty"`
}

// Mode is a file mode's permission bits; JSON writes it as an octal string
// such as "0755".
type Mode uint32

// MarshalText writes m in octal with at least four digits.
func (m Mode) MarshalText() ([]byte, error) { return fmt.Appendf(nil, "%04o", uint32(m)), nil }

// UnmarshalText reads an octal mode.
func (m *Mode) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 8, 32)
	if err != nil {
		return fmt.Errorf("mode %q: %w", b, err)
	}
	*m = Mode(v)
	return nil
}

// ManifestEntry is one image of a docker archive's manifest.json.
type ManifestEntry struct {
	// Config is the config file's name in the archive: "<hex>.json".
	Config string `json:"Config"`
	// RepoTags holds the image's tag.
	RepoTags []string `json:"RepoTags"`
	// Layers are the layer tars' names, bottom first: "<layer id>/layer.tar".
	Layers []string `json:"Layers"`
}

// Layer limits: an image has MaxLayers layers at most by default, and
// MaxLayersLimit at most whatever the spec says (what engines accept).
const (
	DefaultMaxLayers = 100
	MaxLayersLimit   = 127
)

// DefaultCreated is the creation time of images when neither the spec's
// created nor SOURCE_DATE_EPOCH sets one: 1970-01-01T00:00:01Z.
var DefaultCreated = time.Unix(1, 0).UTC()

// Platform is the architecture, os and variant of a system's images, as
// Platform is an image platform: architecture, OS and variant.
type Platform = platform.Platform

// planImage plans the image of one system of a docker or oci export,
// reading SOURCE_DATE_EPOCH from the environment.
func planImage(e *spec.Export, sys *System) (*Image, error) {
	return PlanImage(e, sys, os.Getenv)
}

// PlanImage plans the image of sys, one system of export e, whose Name,
// Roots, Closure and ClosureDigest are set. getenv supplies
// SOURCE_DATE_EPOCH (os.Getenv, or a fixed function in tests). It reads the
// first root's files only to see whether it has a bin folder for the
// default /bin symlink.
func PlanImage(e *spec.Export, sys *System, getenv func(string) string) (*Image, error) {
	if len(sys.Closure) == 0 {
		return nil, errors.New("image of an empty closure")
	}
	plat, err := platform.Lookup(sys.Name)
	if err != nil {
		return nil, err
	}
	ss := specSystem(e, sys.Name)
	created, err := imageCreated(e.Image.Created, getenv)
	if err != nil {
		return nil, err
	}
	tag, err := imageTag(e, sys, plat)
	if err != nil {
		return nil, err
	}
	maxLayers := e.Image.MaxLayers
	if maxLayers == 0 {
		maxLayers = DefaultMaxLayers
	}
	if maxLayers < 1 || maxLayers > MaxLayersLimit {
		return nil, fmt.Errorf("max_layers = %d: must be 1 to %d", maxLayers, MaxLayersLimit)
	}
	fsPaths := make(map[store.Path]string, len(sys.Closure))
	for i := range sys.Closure {
		fsPaths[sys.Closure[i].Path] = sys.Closure[i].FSPath
	}
	storeDir := sys.Closure[0].Path.Dir()
	parents := storeParents(storeDir)
	links, err := imageSymlinks(e, ss, sys, fsPaths, storeDir)
	if err != nil {
		return nil, err
	}
	extra, err := extraEntries(parents, links, storeDir)
	if err != nil {
		return nil, err
	}

	img := &Image{Platform: plat, Tag: tag, MTime: created.Unix()}
	if !e.Format.Def().Uncompressed {
		img.Compression = e.Image.Compression
		if img.Compression == "" {
			img.Compression = format.None
		}
		if _, err := LayerMediaType(img.Compression); err != nil {
			return nil, err
		}
	}
	if maxLayers == 1 {
		items := make([]store.Path, 0, len(sys.Closure))
		for i := range sys.Closure {
			items = append(items, sys.Closure[i].Path)
		}
		img.Layers = []Layer{{
			Items:     store.SortPaths(items),
			Entries:   extra,
			CreatedBy: fmt.Sprintf("storepack: %d store items, folders and symlinks", len(items)),
		}}
	} else {
		groups, err := GroupItems(RankItems(sys.Closure), maxLayers-1)
		if err != nil {
			return nil, err
		}
		for i, g := range groups {
			l := Layer{Items: g, Entries: parents}
			if len(g) == 1 {
				l.CreatedBy = "storepack: store item " + string(g[0])
			} else {
				l.CreatedBy = fmt.Sprintf("storepack: %d store items", len(g))
				l.Comment = fmt.Sprintf("the items ranked %d and below by popularity, merged", i+1)
			}
			img.Layers = append(img.Layers, l)
		}
		img.Layers = append(img.Layers, Layer{Entries: extra, CreatedBy: "storepack: folders and symlinks"})
	}
	narHashes := make(map[store.Path]string, len(sys.Closure))
	for i := range sys.Closure {
		narHashes[sys.Closure[i].Path] = sys.Closure[i].NarHash
	}
	for i := range img.Layers {
		img.Layers[i].ID = layerID(&img.Layers[i], narHashes)
		img.Manifest.Layers = append(img.Manifest.Layers, img.Layers[i].ID+"/layer.tar")
	}
	img.Manifest.RepoTags = []string{tag}

	entrypoint, cmd := e.Image.Entrypoint, e.Image.Cmd
	if ss != nil && ss.Entrypoint != nil {
		entrypoint = ss.Entrypoint
	}
	if ss != nil && ss.Cmd != nil {
		cmd = ss.Cmd
	}
	img.Config = ocispec.Image{
		Created: &created,
		Platform: ocispec.Platform{
			Architecture: plat.Architecture,
			OS:           plat.OS,
			Variant:      plat.Variant,
		},
		Config: ocispec.ImageConfig{
			User:         e.Image.User,
			ExposedPorts: portSet(e.Image.ExposedPorts),
			Env:          envList(e.Image.Env),
			Entrypoint:   slices.Clone(entrypoint),
			Cmd:          slices.Clone(cmd),
			Volumes:      volumeSet(e.Image.Volumes),
			WorkingDir:   e.Image.WorkingDir,
			Labels:       e.Image.Labels,
		},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}},
	}
	for i := range img.Layers {
		img.Config.History = append(img.Config.History, ocispec.History{
			Created:   &created,
			CreatedBy: img.Layers[i].CreatedBy,
			Comment:   img.Layers[i].Comment,
		})
	}
	return img, nil
}

// SetDiffIDs records the layers' diff ids and sizes (in layer order), then
// completes the config's rootfs, ConfigDigest and the manifest entry.
func (img *Image) SetDiffIDs(ids []digest.Digest, sizes []int64) error {
	if len(ids) != len(img.Layers) || len(sizes) != len(img.Layers) {
		return fmt.Errorf("image %s: %d diff ids and %d sizes for %d layers", img.Tag, len(ids), len(sizes), len(img.Layers))
	}
	for i := range img.Layers {
		img.Layers[i].DiffID, img.Layers[i].Size = ids[i], sizes[i]
	}
	img.Config.RootFS.DiffIDs = slices.Clone(ids)
	b, err := img.ConfigJSON()
	if err != nil {
		return err
	}
	img.ConfigDigest = digest.FromBytes(b)
	img.Manifest.Config = img.ConfigDigest.Encoded() + ".json"
	return nil
}

// ConfigJSON is the config file's bytes: compact JSON, map keys sorted,
// no HTML escaping, no trailing newline.
func (img *Image) ConfigJSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(img.Config); err != nil {
		return nil, fmt.Errorf("image %s: config: %w", img.Tag, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
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

// imageCreated is the spec's created time, else SOURCE_DATE_EPOCH, else
// DefaultCreated; always UTC and not before 1970.
func imageCreated(created string, getenv func(string) string) (time.Time, error) {
	var t time.Time
	switch epoch := getenv("SOURCE_DATE_EPOCH"); {
	case created != "":
		var err error
		if t, err = time.Parse(time.RFC3339Nano, created); err != nil {
			return time.Time{}, fmt.Errorf("created = %q: not an RFC 3339 time: %w", created, err)
		}
	case epoch != "":
		s, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: not a number of seconds", epoch)
		}
		t = time.Unix(s, 0)
	default:
		t = DefaultCreated
	}
	if t.Unix() < 0 {
		return time.Time{}, fmt.Errorf("created time %s is before 1970", t.UTC().Format(time.RFC3339))
	}
	return t.UTC(), nil
}

// Reference grammar, as the distribution project defines it.
var (
	pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	domainPart    = regexp.MustCompile(`^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?$`)
	tagPattern    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
)

// SplitTag splits an image reference "name[:tag]" into its name and tag
// ("latest" when absent) and checks both against the reference grammar.
func SplitTag(ref string) (name, tag string, err error) {
	name, tag = ref, "latest"
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		name, tag = ref[:i], ref[i+1:]
	}
	if strings.Contains(ref, "@") {
		return "", "", fmt.Errorf("image reference %q: digests are not tags", ref)
	}
	if !tagPattern.MatchString(tag) {
		return "", "", fmt.Errorf("image reference %q: tag %q is not 1-128 of [A-Za-z0-9_.-] starting with a letter, digit or _", ref, tag)
	}
	if name == "" || len(name) > 255 {
		return "", "", fmt.Errorf("image reference %q: the name must have 1 to 255 characters", ref)
	}
	parts := strings.Split(name, "/")
	for i, p := range parts {
		if i == 0 && len(parts) > 1 && (strings.ContainsAny(p, ".:") || p == "localhost") {
			if !domainPart.MatchString(p) {
				return "", "", fmt.Errorf("image reference %q: %q is not a registry host[:port]", ref, p)
			}
			continue
		}
		if !pathComponent.MatchString(p) {
			return "", "", fmt.Errorf("image reference %q: %q is not lower-case letters and digits separated by '.', '_', '__' or '-'", ref, p)
		}
	}
	return name, tag, nil
}

// imageTag is the image's name:tag: the spec's tag (":latest" when it has
// none) or "<export name>:<first 10 hex digits of the closure digest>";
// with several systems, "-<architecture><variant>" is appended to the tag
// part so that each system's image has its own (hello:1.0-arm64).
func imageTag(e *spec.Export, sys *System, plat Platform) (string, error) {
	ref := e.Image.Tag
	if ref == "" {
		hexDigest := strings.TrimPrefix(sys.ClosureDigest, "sha256:")
		if len(hexDigest) < 10 {
			return "", fmt.Errorf("closure digest %q is too short for a default tag", sys.ClosureDigest)
		}
		ref = e.Name + ":" + hexDigest[:10]
	}
	name, tag, err := SplitTag(ref)
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
		if !tagPattern.MatchString(tag) {
			return "", fmt.Errorf("tag %q is too long once the architecture is appended", tag)
		}
	}
	return name + ":" + tag, nil
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
func imageSymlinks(e *spec.Export, ss *spec.System, sys *System, fsPaths map[store.Path]string, storeDir store.Dir) (map[string]string, error) {
	if e.Image.Symlinks != nil {
		for link, target := range e.Image.Symlinks {
			if !strings.HasPrefix(target, string(storeDir)+"/") {
				continue
			}
			item, _, err := storeDir.ParseInside(target)
			if err != nil {
				return nil, fmt.Errorf("symlink %s -> %s: %w", link, target, err)
			}
			if _, ok := fsPaths[item]; !ok {
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
	fsPath, ok := fsPaths[first]
	if !ok {
		return nil, nil
	}
	fi, err := os.Lstat(fsPath + "/bin")
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
func layerID(l *Layer, narHashes map[store.Path]string) string {
	h := sha256.New()
	fmt.Fprintf(h, "storepack layer 1\n")
	for _, e := range l.Entries {
		fmt.Fprintf(h, "entry %s %04o %q %q\n", e.Type, uint32(e.Mode), e.Path, e.Target)
	}
	for _, p := range l.Items {
		fmt.Fprintf(h, "item %q %s\n", string(p), narHashes[p])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// portSet turns "8080/tcp" (or "8080", meaning tcp) into the config's set.
func portSet(ports []string) map[string]struct{} {
	if len(ports) == 0 {
		return nil
	}
	set := make(map[string]struct{}, len(ports))
	for _, p := range ports {
		if !strings.Contains(p, "/") {
			p += "/tcp"
		}
		set[p] = struct{}{}
	}
	return set
}

// volumeSet turns volume paths into the config's set.
func volumeSet(vols []string) map[string]struct{} {
	if len(vols) == 0 {
		return nil
	}
	set := make(map[string]struct{}, len(vols))
	for _, v := range vols {
		set[v] = struct{}{}
	}
	return set
}

// envList writes env as "K=V" sorted by key.
func envList(env map[string]string) []string {
	if len(env) == 0 {
		return nil
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+env[k])
	}
	return out
}

// LayerMediaType is the OCI media type of layers compressed as compression
// says ("" or "none", "gzip", "zstd").
func LayerMediaType(compression format.Compression) (string, error) {
	switch compression {
	case "", format.None:
		return ocispec.MediaTypeImageLayer, nil
	case format.Gzip:
		return ocispec.MediaTypeImageLayerGzip, nil
	case format.Zstd:
		return ocispec.MediaTypeImageLayerZstd, nil
	}
	return "", fmt.Errorf("unknown layer compression %q: want none, gzip or zstd", compression)
}

// SetBlobs records the digests and sizes of the layers' blobs (in layer
// order, as compressed per img.Compression) and computes the manifest's
// digest and size. The diff ids must be set first (SetDiffIDs).
func (img *Image) SetBlobs(digests []digest.Digest, sizes []int64) error {
	if len(digests) != len(img.Layers) || len(sizes) != len(img.Layers) {
		return fmt.Errorf("image %s: %d blob digests and %d sizes for %d layers", img.Tag, len(digests), len(sizes), len(img.Layers))
	}
	for i := range img.Layers {
		img.Layers[i].Digest, img.Layers[i].BlobSize = digests[i], sizes[i]
	}
	b, err := img.ManifestJSON()
	if err != nil {
		return err
	}
	img.ManifestDigest, img.ManifestSize = digest.FromBytes(b), int64(len(b))
	return nil
}

// OCIManifest is the image's OCI image manifest: the config and the layer
// blobs, bottom first. The config digest and blobs must be known.
func (img *Image) OCIManifest() (*ocispec.Manifest, error) {
	if img.ConfigDigest == "" {
		return nil, fmt.Errorf("image %s: the config digest is not known yet", img.Tag)
	}
	mt, err := LayerMediaType(img.Compression)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.Tag, err)
	}
	cfg, err := img.ConfigJSON()
	if err != nil {
		return nil, err
	}
	m := &ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageConfig,
			Digest:    img.ConfigDigest,
			Size:      int64(len(cfg)),
		},
		Layers: make([]ocispec.Descriptor, 0, len(img.Layers)),
	}
	for i := range img.Layers {
		l := &img.Layers[i]
		if l.Digest == "" {
			return nil, fmt.Errorf("image %s: the blob of layer %s is not known yet", img.Tag, l.ID)
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: mt, Digest: l.Digest, Size: l.BlobSize})
	}
	return m, nil
}

// ManifestJSON is the bytes of the image's OCI manifest (compact JSON, no
// HTML escaping, no trailing newline).
func (img *Image) ManifestJSON() ([]byte, error) {
	m, err := img.OCIManifest()
	if err != nil {
		return nil, err
	}
	b, err := compact(m)
	if err != nil {
		return nil, fmt.Errorf("image %s: manifest: %w", img.Tag, err)
	}
	return b, nil
}

// ManifestDescriptor describes the image's manifest as an index lists it:
// media type, digest, size, platform, and the image's tag as
// org.opencontainers.image.ref.name. SetBlobs must have run.
func (img *Image) ManifestDescriptor() (ocispec.Descriptor, error) {
	if img.ManifestDigest == "" {
		return ocispec.Descriptor{}, fmt.Errorf("image %s: the manifest digest is not known yet", img.Tag)
	}
	return ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest,
		Digest:    img.ManifestDigest,
		Size:      img.ManifestSize,
		Platform: &ocispec.Platform{
			Architecture: img.Platform.Architecture,
			OS:           img.Platform.OS,
			Variant:      img.Platform.Variant,
		},
		Annotations: map[string]string{ocispec.AnnotationRefName: img.Tag},
	}, nil
}

// IndexTag is the tag of the image index of a multi-system export: the
// systems' tags without their "-<architecture><variant>" suffix when they
// agree (the spec's tag), else, for default tags made from differing
// closures, "<export name>:" and the first 10 hex digits of the sha256 of
// the systems' closure digests, one a line in system order.
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

// Index is the OCI image index of a multi-system export: one manifest
// descriptor per system, in system order, with its platform; annotated
// with the index's tag (IndexTag). Every image's blobs must be known.
func (e *Export) Index() (*ocispec.Index, error) {
	idx := &ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: make([]ocispec.Descriptor, 0, len(e.Systems)),
	}
	for i := range e.Systems {
		img := e.Systems[i].Image
		if img == nil {
			return nil, fmt.Errorf("export %q, system %s: no image plan", e.Name, e.Systems[i].Name)
		}
		d, err := img.ManifestDescriptor()
		if err != nil {
			return nil, fmt.Errorf("export %q: %w", e.Name, err)
		}
		idx.Manifests = append(idx.Manifests, d)
	}
	tag, err := e.IndexTag()
	if err != nil {
		return nil, err
	}
	idx.Annotations = map[string]string{ocispec.AnnotationRefName: tag}
	return idx, nil
}

// IndexJSON is the bytes of Index (compact JSON, no trailing newline).
func (e *Export) IndexJSON() ([]byte, error) {
	idx, err := e.Index()
	if err != nil {
		return nil, err
	}
	b, err := compact(idx)
	if err != nil {
		return nil, fmt.Errorf("export %q: index: %w", e.Name, err)
	}
	return b, nil
}

// compact encodes v as JSON without HTML escaping or a trailing newline.
func compact(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
