// Package base resolves the images that image exports build on (a spec's
// base): a registry reference pinned by digest, an OCI layout
// ("oci:DIR[:TAG]") or a Docker archive ("docker-archive:FILE"), read with
// go-containerregistry. Resolve gives, for one platform, what a plan
// records of the base: its manifest digest, its layers (digest, size,
// media type, diff id), its history and the config settings an image
// inherits; Open reads its layer blobs, unchanged, for the writers.
//
// A registry reference must name a digest: a tag moves, and the same spec
// must give the same image. Resolve says which digest the tag has now, to
// pin it.
package base

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/internal/bounded"
	"github.com/storepack/storepack/internal/platform"
	"github.com/storepack/storepack/internal/printable"
	"github.com/storepack/storepack/internal/timeouts"
	"github.com/storepack/storepack/plan"
)

// Options say how a base is reached.
type Options struct {
	// Context bounds the requests to a registry; nil means none.
	Context context.Context
	// Insecure allows plain http to the registry.
	Insecure bool
	// Keychain finds credentials; nil means authn.DefaultKeychain.
	Keychain authn.Keychain
}

func (o Options) remote() []remote.Option {
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	// Each wait on the registry is bounded (package timeouts), and the
	// whole by Context.
	opts := []remote.Option{remote.WithAuthFromKeychain(kc), remote.WithTransport(timeouts.Shared())}
	if o.Context != nil {
		opts = append(opts, remote.WithContext(o.Context))
	}
	return opts
}

// CheckRef checks a base's syntax: "oci:DIR[:TAG]", "docker-archive:FILE"
// or a registry reference.
func CheckRef(ref string, o Options) error {
	switch {
	case strings.HasPrefix(ref, "oci:"):
		if dir, _ := splitLayout(ref); dir == "" {
			return errors.New(`"oci:" needs a folder: oci:DIR[:TAG]`)
		}
		return nil
	case strings.HasPrefix(ref, "docker-archive:"):
		if strings.TrimPrefix(ref, "docker-archive:") == "" {
			return errors.New(`"docker-archive:" needs a file: docker-archive:FILE`)
		}
		return nil
	}
	_, err := name.ParseReference(ref, nameOptions(o)...)
	return err
}

func nameOptions(o Options) []name.Option {
	if o.Insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

// splitLayout splits "oci:DIR[:TAG]" at the first colon after the folder.
func splitLayout(ref string) (dir, tag string) {
	rest := strings.TrimPrefix(ref, "oci:")
	dir, tag, _ = strings.Cut(rest, ":")
	return dir, tag
}

// Resolve reads the base ref for platform p. Every JSON document read
// (an index, a manifest, a config) is bounded in size (package bounded)
// and checked against the digest and size that name it; a layout's or
// archive's files must be regular files.
func Resolve(ref string, p platform.Platform, o Options) (*plan.Base, error) {
	r, err := open(ref, p, o)
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", printable.String(ref), err)
	}
	out, err := describe(ref, r)
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", printable.String(ref), err)
	}
	return out, nil
}

// resolved is a base image as read: its digest (the manifest's, or for
// a Docker archive its config's), manifest and config, and for a Docker
// archive the image whose layers describe reads.
type resolved struct {
	digest   v1.Hash
	manifest *v1.Manifest
	config   *v1.ConfigFile
	archive  v1.Image
	// archiveSize is the archive file's size, which bounds what each of
	// its layers may expand to (LayerLimit).
	archiveSize int64
}

// open reads the base ref for p.
func open(ref string, p platform.Platform, o Options) (*resolved, error) {
	switch {
	case strings.HasPrefix(ref, "oci:"):
		dir, tag := splitLayout(ref)
		return openLayout(dir, tag, p)
	case strings.HasPrefix(ref, "docker-archive:"):
		return openArchive(strings.TrimPrefix(ref, "docker-archive:"))
	}
	r, err := name.ParseReference(ref, nameOptions(o)...)
	if err != nil {
		return nil, err
	}
	if _, ok := r.(name.Digest); !ok {
		d, err := remote.Head(r, o.remote()...)
		if err != nil {
			return nil, fmt.Errorf("not pinned by digest, and its digest cannot be read: %w", err)
		}
		return nil, fmt.Errorf("not pinned by digest: a tag moves, and the same spec must give the same image; it is %s@%s now: write that", r.Context().Name(), d.Digest)
	}
	// remote checks every manifest and blob against its digest.
	desc, err := remote.Get(r, o.remote()...)
	if err != nil {
		return nil, err
	}
	img, err := func() (v1.Image, error) {
		if !desc.MediaType.IsIndex() {
			return desc.Image()
		}
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, err
		}
		m, err := idx.IndexManifest()
		if err != nil {
			return nil, err
		}
		d, err := pick(m.Manifests, "", p)
		if err != nil {
			return nil, err
		}
		if d.MediaType.IsIndex() {
			return nil, fmt.Errorf("an index in an index (%s), which a registry base cannot be", d.Digest)
		}
		return idx.Image(d.Digest)
	}()
	if err != nil {
		return nil, err
	}
	return fromImage(img)
}

// fromImage reads the manifest and config of a registry's image, the
// config bounded.
func fromImage(img v1.Image) (*resolved, error) {
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	if m.Config.Size > bounded.Config {
		return nil, fmt.Errorf("config %s: %d bytes, more than %d: %w", m.Config.Digest, m.Config.Size, bounded.Config, bounded.ErrTooLarge)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	cf, err := checkedConfig(raw, m.Config)
	if err != nil {
		return nil, err
	}
	return &resolved{digest: d, manifest: m, config: cf}, nil
}

// checkedConfig parses raw, the config blob that desc names, after
// checking its digest and size.
func checkedConfig(raw []byte, desc v1.Descriptor) (*v1.ConfigFile, error) {
	if err := checkBlob(raw, desc); err != nil {
		return nil, fmt.Errorf("config %s: %w", desc.Digest, err)
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", desc.Digest, err)
	}
	return cf, nil
}

// checkBlob checks that b has the size and sha256 digest of desc.
func checkBlob(b []byte, desc v1.Descriptor) error {
	if desc.Digest.Algorithm != "sha256" {
		return fmt.Errorf("a digest of %q, which storepack does not check", printable.String(desc.Digest.Algorithm))
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != desc.Digest.Hex || int64(len(b)) != desc.Size {
		return fmt.Errorf("the blob is %d bytes of sha256:%s, not the %d bytes of %s its descriptor names", len(b), got, desc.Size, desc.Digest)
	}
	return nil
}

// openLayout reads the image for p tagged tag (or the only entry) in the
// OCI layout dir: index.json, then each blob by the descriptor that
// names it, bounded and checked against its digest and size.
func openLayout(dir, tag string, p platform.Platform) (*resolved, error) {
	b, err := bounded.ReadFile(filepath.Join(dir, "index.json"), bounded.Index)
	if err != nil {
		return nil, err
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "index.json"), err)
	}
	d, err := pick(idx.Manifests, tag, p)
	if err != nil {
		return nil, err
	}
	if d.MediaType.IsIndex() {
		b, err := layoutBlob(dir, d, bounded.Index)
		if err != nil {
			return nil, err
		}
		sub, err := v1.ParseIndexManifest(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", d.Digest, err)
		}
		if d, err = pick(sub.Manifests, "", p); err != nil {
			return nil, err
		}
		if d.MediaType.IsIndex() {
			return nil, fmt.Errorf("index %s: an index in an index in index.json, which storepack does not follow", d.Digest)
		}
	}
	b, err = layoutBlob(dir, d, bounded.Index)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
	}
	raw, err := layoutBlob(dir, m.Config, bounded.Config)
	if err != nil {
		return nil, err
	}
	cf, err := checkedConfig(raw, m.Config)
	if err != nil {
		return nil, err
	}
	return &resolved{digest: d.Digest, manifest: m, config: cf}, nil
}

// layoutBlob reads the blob desc names in the layout dir: a regular file
// of at most limit bytes, of desc's size and digest.
func layoutBlob(dir string, desc v1.Descriptor, limit int64) ([]byte, error) {
	if desc.Digest.Algorithm != "sha256" {
		return nil, fmt.Errorf("%s: a digest of %q, which storepack does not check", desc.Digest, printable.String(desc.Digest.Algorithm))
	}
	if desc.Size > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than %d: %w", desc.Digest, desc.Size, limit, bounded.ErrTooLarge)
	}
	b, err := bounded.ReadFile(layoutBlobPath(dir, desc.Digest), limit)
	if err != nil {
		return nil, err
	}
	if err := checkBlob(b, desc); err != nil {
		return nil, fmt.Errorf("%s: %w", layoutBlobPath(dir, desc.Digest), err)
	}
	return b, nil
}

// layoutBlobPath is where a layout keeps the blob of digest h (its hex
// part checked by v1.Hash's parsing: no path separators).
func layoutBlobPath(dir string, h v1.Hash) string {
	return filepath.Join(dir, "blobs", h.Algorithm, h.Hex)
}

// pick finds among an index's manifests the one tagged tag, or when tag
// is empty the only one or, among several, the image for p.
func pick(ms []v1.Descriptor, tag string, p platform.Platform) (v1.Descriptor, error) {
	var picked []v1.Descriptor
	for _, d := range ms {
		if tag == "" || d.Annotations[ocispec.AnnotationRefName] == tag {
			picked = append(picked, d)
		}
	}
	if tag == "" && len(picked) > 1 {
		// A multi-platform index: pick the platform.
		return byPlatform(ms, p)
	}
	if len(picked) != 1 {
		return v1.Descriptor{}, fmt.Errorf("%d entries tagged %q", len(picked), printable.String(tag))
	}
	return picked[0], nil
}

// byPlatform picks the image for p among an index's manifests.
func byPlatform(ms []v1.Descriptor, p platform.Platform) (v1.Descriptor, error) {
	var have []string
	for _, d := range ms {
		if d.Platform == nil {
			continue
		}
		have = append(have, printable.String(d.Platform.OS+"/"+d.Platform.Architecture+d.Platform.Variant))
		if d.Platform.OS == p.OS && d.Platform.Architecture == p.Architecture && (p.Variant == "" || d.Platform.Variant == p.Variant) {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("no image for %s/%s%s (it has %s)", p.OS, p.Architecture, p.Variant, strings.Join(have, ", "))
}

// openArchive reads a Docker archive (docker save's tar): a regular file
// whose manifest.json and config are bounded in size, read by
// go-containerregistry.
func openArchive(file string) (*resolved, error) {
	size, err := checkArchive(file)
	if err != nil {
		return nil, err
	}
	img, err := tarball.ImageFromPath(file, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	// Its digest is its config's, the image ID docker gives it.
	d, err := img.ConfigName()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", file, err)
	}
	return &resolved{digest: d, config: cf, archive: img, archiveSize: size}, nil
}

// checkArchive checks, before go-containerregistry reads them whole, that
// the Docker archive file is a regular file whose manifest.json and the
// configs it names are within their limits; it returns the file's size.
func checkArchive(file string) (int64, error) {
	f, err := bounded.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	sizes := map[string]int64{}
	var manifest []byte
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("%s: %w", file, err)
		}
		name := path.Clean(h.Name)
		sizes[name] = h.Size
		if name == "manifest.json" {
			if manifest, err = bounded.ReadAll(tr, bounded.Index); err != nil {
				return 0, fmt.Errorf("%s: manifest.json: %w", file, err)
			}
		}
	}
	if manifest == nil {
		return 0, fmt.Errorf("%s: no manifest.json: not a Docker archive", file)
	}
	var entries []struct{ Config string }
	if err := json.Unmarshal(manifest, &entries); err != nil {
		return 0, fmt.Errorf("%s: manifest.json: %w", file, err)
	}
	for _, e := range entries {
		if n := sizes[path.Clean(e.Config)]; n > bounded.Config {
			return 0, fmt.Errorf("%s: config %s: %d bytes, more than %d: %w", file, printable.String(e.Config), n, bounded.Config, bounded.ErrTooLarge)
		}
	}
	return fi.Size(), nil
}

// describe records r. A Docker archive's layers are its tars as they are
// (uncompressed: their digest is their diff id, and their size is read,
// bounded): go-containerregistry would otherwise compress them and make
// up a manifest.
func describe(ref string, r *resolved) (*plan.Base, error) {
	cf := r.config
	out := &plan.Base{Ref: ref, Digest: digest.Digest(r.digest.String())}
	if r.archive != nil {
		layers, err := r.archive.Layers()
		if err != nil {
			return nil, err
		}
		if len(cf.RootFS.DiffIDs) != len(layers) {
			return nil, fmt.Errorf("%d layers but %d diff ids", len(layers), len(cf.RootFS.DiffIDs))
		}
		for i, l := range layers {
			rc, err := l.Uncompressed()
			if err != nil {
				return nil, err
			}
			br := &bounded.Reader{R: rc, Limit: LayerLimit(r.archiveSize), What: fmt.Sprintf("layer %d", i+1)}
			n, err := io.Copy(io.Discard, br)
			rc.Close()
			if err != nil {
				return nil, err
			}
			id := digest.Digest(cf.RootFS.DiffIDs[i].String())
			out.Layers = append(out.Layers, plan.BaseLayer{Digest: id, Size: n, MediaType: ocispec.MediaTypeImageLayer, DiffID: id})
		}
	} else {
		m := r.manifest
		if len(cf.RootFS.DiffIDs) != len(m.Layers) {
			return nil, fmt.Errorf("%d layers but %d diff ids", len(m.Layers), len(cf.RootFS.DiffIDs))
		}
		for i, l := range m.Layers {
			mt, err := ociLayerType(l.MediaType)
			if err != nil {
				return nil, fmt.Errorf("layer %s: %w", l.Digest, err)
			}
			out.Layers = append(out.Layers, plan.BaseLayer{Digest: digest.Digest(l.Digest.String()), Size: l.Size, MediaType: mt, DiffID: digest.Digest(cf.RootFS.DiffIDs[i].String())})
		}
	}
	for _, h := range cf.History {
		oh := ocispec.History{CreatedBy: h.CreatedBy, Comment: h.Comment, Author: h.Author, EmptyLayer: h.EmptyLayer}
		if !h.Created.IsZero() {
			t := h.Created.UTC()
			oh.Created = &t
		}
		out.History = append(out.History, oh)
	}
	c := cf.Config
	out.Config = plan.BaseConfig{Env: c.Env, Entrypoint: c.Entrypoint, Cmd: c.Cmd, User: c.User, WorkingDir: c.WorkingDir}
	return out, nil
}

// ociLayerType is the OCI media type of a layer blob of media type mt: the
// same bytes, named as an OCI manifest names them.
func ociLayerType(mt types.MediaType) (string, error) {
	switch mt {
	case types.OCILayer, types.OCIUncompressedLayer, types.OCILayerZStd:
		return string(mt), nil
	case types.DockerLayer:
		return ocispec.MediaTypeImageLayerGzip, nil
	case types.DockerUncompressedLayer:
		return ocispec.MediaTypeImageLayer, nil
	}
	return "", fmt.Errorf("a layer of media type %q, which storepack does not carry", mt)
}

// Open returns a layer blob of the base ref, unchanged.
func Open(ref string, d digest.Digest, o Options) (io.ReadCloser, error) {
	h, err := v1.NewHash(d.String())
	if err != nil {
		return nil, err
	}
	var l v1.Layer
	switch {
	case strings.HasPrefix(ref, "oci:"):
		dir, _ := splitLayout(ref)
		return bounded.Open(layoutBlobPath(dir, h))
	case strings.HasPrefix(ref, "docker-archive:"):
		file := strings.TrimPrefix(ref, "docker-archive:")
		if _, err := checkArchive(file); err != nil {
			return nil, err
		}
		img, err := tarball.ImageFromPath(file, nil)
		if err != nil {
			return nil, err
		}
		if l, err = img.LayerByDiffID(h); err != nil {
			return nil, err
		}
		return l.Uncompressed()
	default:
		r, err := name.ParseReference(ref, nameOptions(o)...)
		if err != nil {
			return nil, err
		}
		if l, err = remote.Layer(r.Context().Digest(d.String()), o.remote()...); err != nil {
			return nil, err
		}
	}
	return l.Compressed()
}
