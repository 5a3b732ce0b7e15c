// Package image is the plumbing that storepack's image outputs share
// (docker archives, OCI layouts and archives, registry pushes; their
// writers are export's): an image is layers of a tree plus a config.
//
//   - layers.go: an export's distinct layers, their tars (package tree)
//     and blobs (compressed, hashed on the way), written in parallel;
//   - image.go (this file): the encoding of an image once its layers'
//     blobs are known: the config, the OCI manifest, the image index, the
//     docker archive's manifest entry, media types, whether an oci
//     output is a layout or an archive (IsOCIArchive);
//   - cache.go: layers kept in the layer cache between exports;
//   - resume.go: tar archives whose first layers a re-export copies from
//     the cache without reading or hashing them again.
//
// The encoding is fixed: JSON without HTML escaping, map keys sorted, no
// trailing newline, so that the same plan gives the same bytes.
package image

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/reference"
	"github.com/storepack/storepack/plan"
)

// Blob is a written layer: the diff id (sha256 of the uncompressed tar)
// and length of its tar, and the digest and length of its blob (the tar
// compressed as the image says; the same again when uncompressed), with
// the annotations its manifest descriptor carries (the tables of contents
// of zstd:chunked and eStargz blobs; none for the others).
type Blob struct {
	DiffID      digest.Digest     `json:"diff_id"`
	Size        int64             `json:"size"`
	Digest      digest.Digest     `json:"digest"`
	BlobSize    int64             `json:"blob_size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// BaseBlob is a layer blob of a base image, as the base holds it: for
// those, Size is the blob's length (a base's layers are not read).
type BaseBlob struct {
	Blob
	MediaType string
}

// Image is one system's image once its layers are written: its plan, the
// blob of each layer, and the config and OCI manifest they give.
type Image struct {
	// Plan is the image's plan.
	Plan *plan.Image
	// Blobs are its layers' blobs, one per layer of the plan, bottom first.
	Blobs []Blob
	// BaseBlobs are its base's layer blobs (Plan.Base), below Blobs, with
	// their media types.
	BaseBlobs []BaseBlob
	// Config is the config's bytes; ConfigDigest their digest.
	Config       []byte
	ConfigDigest digest.Digest
	// Manifest is the OCI manifest's bytes; ManifestDigest their digest.
	Manifest       []byte
	ManifestDigest digest.Digest
	// Docker is set on the images of a docker archive (DockerImages): the
	// archive holds their base's layers as uncompressed tars (BaseBlobs),
	// and each has an entry in its manifest.json (DockerEntry), which
	// MarshalJSON shows.
	Docker bool
}

// newImage encodes the config and manifest of the image plan p whose layers'
// blobs are blobs (one per layer, bottom first); docker marks it as an
// image of a docker archive.
func newImage(p *plan.Image, blobs []Blob, base map[digest.Digest]BaseBlob, docker bool) (*Image, error) {
	if len(blobs) != len(p.Layers) {
		return nil, fmt.Errorf("image %s: %d blobs for %d layers", p.Tag, len(blobs), len(p.Layers))
	}
	img := &Image{Plan: p, Blobs: slices.Clone(blobs), Docker: docker}
	if p.Base != nil {
		for _, l := range p.Base.Layers {
			b := BaseBlob{Blob: Blob{DiffID: l.DiffID, Size: l.Size, Digest: l.Digest, BlobSize: l.Size}, MediaType: l.MediaType}
			if o, ok := base[l.Digest]; ok {
				b = o
			}
			img.BaseBlobs = append(img.BaseBlobs, b)
		}
	}
	var err error
	if img.Config, err = Marshal(img.config()); err != nil {
		return nil, fmt.Errorf("image %s: config: %w", p.Tag, err)
	}
	img.ConfigDigest = digest.FromBytes(img.Config)
	m, err := img.manifest()
	if err != nil {
		return nil, err
	}
	if img.Manifest, err = Marshal(m); err != nil {
		return nil, fmt.Errorf("image %s: manifest: %w", p.Tag, err)
	}
	img.ManifestDigest = digest.FromBytes(img.Manifest)
	return img, nil
}

// config is the image's config, as docker and OCI tools read it.
func (img *Image) config() ocispec.Image {
	p := img.Plan
	created := p.Created
	c := ocispec.Image{
		Created: &created,
		Platform: ocispec.Platform{
			Architecture: p.Platform.Architecture,
			OS:           p.Platform.OS,
			Variant:      p.Platform.Variant,
		},
		Config: ocispec.ImageConfig{
			User:         p.Config.User,
			ExposedPorts: set(p.Config.ExposedPorts),
			Env:          envList(p.Config.Env),
			Entrypoint:   p.Config.Entrypoint,
			Cmd:          p.Config.Cmd,
			Volumes:      set(p.Config.Volumes),
			WorkingDir:   p.Config.WorkingDir,
			Labels:       p.Config.Labels,
		},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: make([]digest.Digest, 0, len(img.BaseBlobs)+len(img.Blobs))},
	}
	if p.Base != nil {
		for _, b := range img.BaseBlobs {
			c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, b.DiffID)
		}
		c.History = append(c.History, p.Base.History...)
	}
	for i, l := range p.Layers {
		c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, img.Blobs[i].DiffID)
		c.History = append(c.History, ocispec.History{Created: &created, CreatedBy: l.CreatedBy, Comment: l.Comment})
	}
	return c
}

// manifest is the image's OCI manifest: the config and the layer blobs,
// bottom first.
func (img *Image) manifest() (*ocispec.Manifest, error) {
	mt, err := MediaType(img.Plan.Compression)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.Plan.Tag, err)
	}
	m := &ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageConfig,
			Digest:    img.ConfigDigest,
			Size:      int64(len(img.Config)),
		},
		Layers:      make([]ocispec.Descriptor, 0, len(img.BaseBlobs)+len(img.Blobs)),
		Annotations: img.Plan.Annotations,
	}
	for _, b := range img.BaseBlobs {
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: b.MediaType, Digest: b.Digest, Size: b.BlobSize})
	}
	for _, b := range img.Blobs {
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: mt, Digest: b.Digest, Size: b.BlobSize, Annotations: b.Annotations})
	}
	return m, nil
}

// Descriptor describes the image's manifest as an index lists it: media
// type, digest, size, platform, and the image's tag as
// org.opencontainers.image.ref.name.
func (img *Image) Descriptor() ocispec.Descriptor {
	return ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest,
		Digest:    img.ManifestDigest,
		Size:      int64(len(img.Manifest)),
		Platform: &ocispec.Platform{
			Architecture: img.Plan.Platform.Architecture,
			OS:           img.Plan.Platform.OS,
			Variant:      img.Plan.Platform.Variant,
		},
		Annotations: map[string]string{ocispec.AnnotationRefName: img.Plan.Tag},
	}
}

// DockerEntry is one image of a docker archive's manifest.json.
type DockerEntry struct {
	// Config is the config file's name in the archive: "<hex>.json".
	Config string `json:"Config"`
	// RepoTags holds the image's tag.
	RepoTags []string `json:"RepoTags"`
	// Layers are the layer tars' names, bottom first: "<layer id>/layer.tar".
	Layers []string `json:"Layers"`
}

// DockerEntry is the image's entry in a docker archive's manifest.json.
func (img *Image) DockerEntry() DockerEntry {
	e := DockerEntry{Config: img.ConfigDigest.Encoded() + ".json", RepoTags: []string{img.Plan.Tag}}
	for _, b := range img.BaseBlobs {
		e.Layers = append(e.Layers, DockerLayerTar(b.DiffID.Encoded()))
	}
	for _, l := range img.Plan.Layers {
		e.Layers = append(e.Layers, DockerLayerTar(l.ID))
	}
	return e
}

// DockerLayerTar is the name of a layer's tar in a docker archive:
// "<layer id>/layer.tar".
func DockerLayerTar(id string) string { return id + "/layer.tar" }

// NameTag splits the image's tag into its name and tag parts.
func (img *Image) NameTag() (name, tag string, err error) { return reference.Parse(img.Plan.Tag) }

// IsOCIArchive reports whether the output of an oci export is an
// oci-archive, a tar of the layout: when its name ends with ".tar". Any
// other output is a layout folder.
func IsOCIArchive(output string) bool { return strings.HasSuffix(output, ".tar") }

// LayoutVersion is an OCI layout's oci-layout file.
const LayoutVersion = `{"imageLayoutVersion":"1.0.0"}`

// AnnotationImageName is the annotation containerd names an imported
// image by (`ctr images import`), before org.opencontainers.image.ref.name:
// the reference in full (reference.Normalize), as `docker save` writes it
// on its archive's index.json.
const AnnotationImageName = "io.containerd.image.name"

// Listed is d, the descriptor of a tagged image or index
// (org.opencontainers.image.ref.name), as a layout's index.json lists it:
// also annotated with its full name as containerd reads it
// (AnnotationImageName).
func Listed(d ocispec.Descriptor) (ocispec.Descriptor, error) {
	full, err := reference.Normalize(d.Annotations[ocispec.AnnotationRefName])
	if err != nil {
		return d, fmt.Errorf("index.json: %w", err)
	}
	d.Annotations = maps.Clone(d.Annotations)
	d.Annotations[AnnotationImageName] = full
	return d, nil
}

// LayoutIndex is an OCI layout's index.json listing manifests (a newline
// after the JSON).
func LayoutIndex(manifests []ocispec.Descriptor) ([]byte, error) {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests}
	idx.SchemaVersion = 2
	b, err := Marshal(idx)
	if err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	return append(b, '\n'), nil
}

// BlobPath is where a blob goes in a layout: blobs/sha256/<hex>.
func BlobPath(d digest.Digest) string {
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded()
}

// Compressions are the layer compressions of OCI images (layouts,
// archives, pushes), the default first: plain tars, gzip, zstd, and the
// encodings for lazy pulls (zstd:chunked, eStargz; lazy.go).
var Compressions = []format.Compression{format.None, format.Gzip, format.Zstd, format.ZstdChunked, format.Estargz}

// TarCompressions are the layer compressions of docker archives, the
// default first: those of Compressions that docker load reads.
var TarCompressions = []format.Compression{format.None, format.Gzip, format.Zstd}

// MediaType is the OCI media type of layers compressed as compression
// says ("" or "none", "gzip", "zstd", and "zstd:chunked" and "estargz",
// which are zstd and gzip to any reader).
func MediaType(compression format.Compression) (string, error) {
	switch compression {
	case "", format.None:
		return ocispec.MediaTypeImageLayer, nil
	case format.Gzip, format.Estargz:
		return ocispec.MediaTypeImageLayerGzip, nil
	case format.Zstd, format.ZstdChunked:
		return ocispec.MediaTypeImageLayerZstd, nil
	}
	return "", fmt.Errorf("unknown layer compression %q: want none, gzip, zstd, zstd:chunked or estargz", compression)
}

// Marshal encodes v as the JSON of images and archives: compact, map keys
// sorted, no HTML escaping, no trailing newline.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// set turns a list ("8080/tcp", "/data") into the config's set.
func set(list []string) map[string]struct{} {
	if len(list) == 0 {
		return nil
	}
	s := make(map[string]struct{}, len(list))
	for _, v := range list {
		s[v] = struct{}{}
	}
	return s
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

// MarshalJSON writes the image as `storepack plan` shows it: its plan
// (platform, tag, mtime and the base it is built on, when any), each layer
// with its blob's digests, the config, the docker archive's manifest.json
// entry (docker_manifest, for an image of a docker archive), and the OCI
// manifest (oci_manifest: the config's and every layer blob's descriptor,
// the base's layers first) with its digest and size. The config and the
// manifest are the very bytes the writers write, re-indented.
func (img *Image) MarshalJSON() ([]byte, error) {
	type layer struct {
		*plan.Layer
		Blob
	}
	p := img.Plan
	v := struct {
		Platform       plan.Platform      `json:"platform"`
		Tag            string             `json:"tag"`
		MTime          int64              `json:"mtime"`
		Base           *plan.Base         `json:"base,omitempty"`
		Layers         []layer            `json:"layers"`
		Config         json.RawMessage    `json:"config"`
		ConfigDigest   digest.Digest      `json:"config_digest"`
		DockerManifest *DockerEntry       `json:"docker_manifest,omitempty"`
		Compression    format.Compression `json:"compression,omitempty"`
		OCIManifest    json.RawMessage    `json:"oci_manifest"`
		ManifestDigest digest.Digest      `json:"manifest_digest"`
		ManifestSize   int64              `json:"manifest_size"`
	}{
		Platform:       p.Platform,
		Tag:            p.Tag,
		MTime:          p.MTime(),
		Base:           p.Base,
		Config:         img.Config,
		ConfigDigest:   img.ConfigDigest,
		Compression:    p.Compression,
		OCIManifest:    img.Manifest,
		ManifestDigest: img.ManifestDigest,
		ManifestSize:   int64(len(img.Manifest)),
	}
	if img.Docker {
		e := img.DockerEntry()
		v.DockerManifest = &e
	}
	for i := range p.Layers {
		v.Layers = append(v.Layers, layer{&p.Layers[i], img.Blobs[i]})
	}
	// No HTML escaping here: the encoder calling this escapes when it is
	// set to.
	return Marshal(v)
}
