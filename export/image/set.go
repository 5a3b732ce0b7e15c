package image

import (
	"fmt"
	"maps"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/plan"
)

// A Set is an export's images as every image output consumes them: one
// Image per system, in system order (its layers' blobs with their
// digests, its config and manifest), and for several systems their image
// index. It is built once per output, from the layers' blobs (Images,
// DockerImages), and then read by whatever writes it: a docker archive,
// an OCI layout or oci-archive, a push to a registry, the description
// `storepack plan` prints, and the supply chain's subjects and
// attachments, as go-containerregistry's v1.Image and v1.ImageIndex serve
// its tarball, layout and remote packages alike.
type Set struct {
	// Images are the systems' images, in system order.
	Images []*Image
	// Index is the image index of several systems' images: one manifest
	// descriptor per image, in system order, with its platform, annotated
	// with the first image's annotations and the export's index tag
	// (plan.Export.IndexTag). It is nil for one system, whose manifest is
	// the root itself.
	Index []byte
	// IndexTag is the index's tag; empty for one system.
	IndexTag string
}

// newSet is the set of e's images imgs, with their index for several.
func newSet(e *plan.Export, imgs []*Image) (*Set, error) {
	s := &Set{Images: imgs}
	if len(imgs) < 2 {
		return s, nil
	}
	tag, err := e.IndexTag()
	if err != nil {
		return nil, err
	}
	idx := &ocispec.Index{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		MediaType:   ocispec.MediaTypeImageIndex,
		Manifests:   make([]ocispec.Descriptor, 0, len(imgs)),
		Annotations: maps.Clone(imgs[0].Plan.Annotations),
	}
	for _, img := range imgs {
		idx.Manifests = append(idx.Manifests, img.Descriptor())
	}
	if idx.Annotations == nil {
		idx.Annotations = map[string]string{}
	}
	idx.Annotations[ocispec.AnnotationRefName] = tag
	if s.Index, err = Marshal(idx); err != nil {
		return nil, fmt.Errorf("export %q: index: %w", e.Name, err)
	}
	s.IndexTag = tag
	return s, nil
}

// Root describes what a reference to the set names: the image's manifest
// (Image.Descriptor) for one system, else the image index, annotated with
// its tag as org.opencontainers.image.ref.name.
func (s *Set) Root() ocispec.Descriptor {
	if s.Index == nil {
		return s.Images[0].Descriptor()
	}
	return ocispec.Descriptor{
		MediaType:   ocispec.MediaTypeImageIndex,
		Digest:      digest.FromBytes(s.Index),
		Size:        int64(len(s.Index)),
		Annotations: map[string]string{ocispec.AnnotationRefName: s.IndexTag},
	}
}

// Named is a manifest or index of a set, by its tag.
type Named struct {
	Tag    string
	Digest digest.Digest
}

// Named lists the set's manifests by their tags, in system order, then
// its index: what statements about the set name as their subjects.
func (s *Set) Named() []Named {
	var ns []Named
	for _, img := range s.Images {
		ns = append(ns, Named{img.Plan.Tag, img.ManifestDigest})
	}
	if s.Index != nil {
		ns = append(ns, Named{s.IndexTag, digest.FromBytes(s.Index)})
	}
	return ns
}

// Manifests are the descriptors of the set's images (Image.Descriptor),
// in system order.
func (s *Set) Manifests() []ocispec.Descriptor {
	ds := make([]ocispec.Descriptor, len(s.Images))
	for i, img := range s.Images {
		ds[i] = img.Descriptor()
	}
	return ds
}

// Blobs are the set's layer blobs by layer ID.
func (s *Set) Blobs() map[string]Blob {
	m := map[string]Blob{}
	for _, img := range s.Images {
		for i, l := range img.Plan.Layers {
			m[l.ID] = img.Blobs[i]
		}
	}
	return m
}
