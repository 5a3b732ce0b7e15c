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
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/internal/platform"
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
	opts := []remote.Option{remote.WithAuthFromKeychain(kc)}
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

// Resolve reads the base ref for platform p.
func Resolve(ref string, p platform.Platform, o Options) (*plan.Base, error) {
	img, err := open(ref, p, o)
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", ref, err)
	}
	out, err := describe(ref, img, strings.HasPrefix(ref, "docker-archive:"))
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", ref, err)
	}
	return out, nil
}

// open finds the v1.Image of ref for p.
func open(ref string, p platform.Platform, o Options) (v1.Image, error) {
	switch {
	case strings.HasPrefix(ref, "oci:"):
		dir, tag := splitLayout(ref)
		lp, err := layout.FromPath(dir)
		if err != nil {
			return nil, err
		}
		idx, err := lp.ImageIndex()
		if err != nil {
			return nil, err
		}
		return fromIndex(idx, tag, p)
	case strings.HasPrefix(ref, "docker-archive:"):
		return tarball.ImageFromPath(strings.TrimPrefix(ref, "docker-archive:"), nil)
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
	desc, err := remote.Get(r, o.remote()...)
	if err != nil {
		return nil, err
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, err
		}
		return fromIndex(idx, "", p)
	}
	return desc.Image()
}

// fromIndex finds in idx the entry tagged tag (the only entry when tag is
// empty), and in an image index below it the image for p.
func fromIndex(idx v1.ImageIndex, tag string, p platform.Platform) (v1.Image, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var picked []v1.Descriptor
	for _, d := range m.Manifests {
		if tag == "" || d.Annotations[ocispec.AnnotationRefName] == tag {
			picked = append(picked, d)
		}
	}
	if tag == "" && len(picked) > 1 {
		// A multi-platform index: pick the platform.
		return byPlatform(idx, m.Manifests, p)
	}
	if len(picked) != 1 {
		return nil, fmt.Errorf("%d entries tagged %q", len(picked), tag)
	}
	d := picked[0]
	if d.MediaType.IsIndex() {
		sub, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, err
		}
		sm, err := sub.IndexManifest()
		if err != nil {
			return nil, err
		}
		return byPlatform(sub, sm.Manifests, p)
	}
	return idx.Image(d.Digest)
}

// byPlatform picks the image for p among an index's manifests.
func byPlatform(idx v1.ImageIndex, ms []v1.Descriptor, p platform.Platform) (v1.Image, error) {
	var have []string
	for _, d := range ms {
		if d.Platform == nil {
			continue
		}
		have = append(have, d.Platform.OS+"/"+d.Platform.Architecture+d.Platform.Variant)
		if d.Platform.OS == p.OS && d.Platform.Architecture == p.Architecture && (p.Variant == "" || d.Platform.Variant == p.Variant) {
			return idx.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("no image for %s/%s%s (it has %s)", p.OS, p.Architecture, p.Variant, strings.Join(have, ", "))
}

// describe records img. A Docker archive's layers are its tars as they
// are (uncompressed: their digest is their diff id), and its digest is its
// config's, the image ID docker gives it: go-containerregistry would
// otherwise compress them and make up a manifest.
func describe(ref string, img v1.Image, archive bool) (*plan.Base, error) {
	d, err := img.Digest()
	if archive {
		d, err = img.ConfigName()
	}
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("%d layers but %d diff ids", len(m.Layers), len(cf.RootFS.DiffIDs))
	}
	out := &plan.Base{Ref: ref, Digest: digest.Digest(d.String())}
	if archive {
		layers, err := img.Layers()
		if err != nil {
			return nil, err
		}
		for i, l := range layers {
			rc, err := l.Uncompressed()
			if err != nil {
				return nil, err
			}
			n, err := io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil {
				return nil, err
			}
			id := digest.Digest(cf.RootFS.DiffIDs[i].String())
			out.Layers = append(out.Layers, plan.BaseLayer{Digest: id, Size: n, MediaType: ocispec.MediaTypeImageLayer, DiffID: id})
		}
		m.Layers = nil
	}
	for i, l := range m.Layers {
		mt, err := ociLayerType(l.MediaType)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		out.Layers = append(out.Layers, plan.BaseLayer{Digest: digest.Digest(l.Digest.String()), Size: l.Size, MediaType: mt, DiffID: digest.Digest(cf.RootFS.DiffIDs[i].String())})
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
		lp, err := layout.FromPath(dir)
		if err != nil {
			return nil, err
		}
		return lp.Blob(h)
	case strings.HasPrefix(ref, "docker-archive:"):
		img, err := tarball.ImageFromPath(strings.TrimPrefix(ref, "docker-archive:"), nil)
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
