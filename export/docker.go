package export

import (
	"archive/tar"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/export/image"
	"github.com/storepack/storepack/export/tree"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/layercache"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store/nar"
)

// A docker archive (Docker Image Specification v1.2, what `docker save`
// wrote before Docker 25 and what `docker load`, `podman load` and skopeo's
// docker-archive: transport read) holds, in this order:
//
//   - for each distinct layer of the export's images, in image order (the
//     first image's layers from the bottom up, then the other images'
//     layers not written yet): the folder "<id>/" and "<id>/layer.tar",
//     the uncompressed layer, whose bytes start at a multiple of 4096 in
//     the archive (a PAX header with a "comment" record pads the folder's
//     header when needed);
//   - each image's config, "<hex of its sha256>.json", sorted by name;
//   - the same images as an OCI image layout, as Docker 25's `docker save`
//     also writes one: "blobs/", "blobs/sha256/", then sorted by name
//     "blobs/sha256/<hex>" for every layer and config (hard links to the
//     "<id>/layer.tar" and "<hex>.json" above, so that no byte is stored
//     twice) and every image's OCI manifest (uncompressed layers), then
//     "oci-layout" and "index.json" (each image's manifest with its
//     platform and its tag as org.opencontainers.image.ref.name), so that
//     the archive is also an oci-archive;
//   - manifest.json, one entry per image in the export's system order
//     ({"Config", "RepoTags", "Layers"});
//   - repositories, {"<name>": {"<tag>": "<top layer id>"}}.
//
// The legacy per-layer "VERSION" and "json" files are not written: they
// describe layers by a parent chain that shared layers would contradict,
// and no loader that reads manifest.json needs them.
//
// The archive is written in one pass, without temporary files: a layer's
// length is computed from file metadata first (image.Layer.Size, in a
// goroutine that runs ahead of the writing), its tar header written, then
// the layer streamed into it, its diff id computed on the way. Configs
// need the diff ids, so they and manifest.json come last. Every store file
// is read once per layer holding it: once per export unless several images
// hold the same item in differently grouped layers.
//
// With a layer cache, a re-export resumes the archive after its unchanged
// first layers (image.Resume): lower layers change least often (the store
// items most depended on), and the cache keeps the archive's sha256 state
// after each layer, so the layers up to the first changed one are cloned
// or copied from their cached blobs without being read or hashed. Aligning
// layers to 4096 bytes lets btrfs and XFS clone them (FICLONERANGE): then
// they cost no copy either.
// Outer entries have the images' mtime, uid and gid 0, files 0644 and
// folders 0755.

// dockerDef declares the format: a Docker archive of the images (docker load).
var dockerDef = format.Def{Name: "docker", Kind: format.Image, Ext: ".tar", Compressions: image.TarCompressions,
	Attrs:  slices.Concat(format.ImageAttrs, format.RunAttrs, format.TreeAttrs, format.DatabaseAttrs),
	Blocks: slices.Concat(format.ContentBlocks, format.LayerBlocks), BinLink: true}

// dockerWriter writes docker exports: one archive of every system's image.
type dockerWriter struct{}

// Def declares the format.
func (dockerWriter) Def() *format.Def { return &dockerDef }

func (dockerWriter) totals(e *plan.Export) (bytes, items int64) { return image.Totals(e) }

func (dockerWriter) tempDirs() []string { return nil }

func (dockerWriter) write(j job) (written, error) {
	var imgs *image.Set
	f, err := writeAtomic(j.outDir, j.e.Output, func(w io.Writer) error {
		var err error
		imgs, err = writeDocker(w, j.e, j.cache, j.count)
		return err
	})
	if err != nil {
		return written{}, err
	}
	f.Export = j.e.Name
	return written{files: []File{f}, images: imgs}, nil
}

// dockerStart is the key of a docker archive before its first layer.
var dockerStart = image.ArchiveStart("docker archive", nil)

// writeDocker writes e, an export whose systems have image plans, to w as
// a docker archive holding one image per system, and returns the images.
// The archive's index.json lists each image's manifest: a docker archive
// holds no image index, whatever the number of systems.
// With a layer cache (c not nil), a layer the cache holds is copied from
// its blob, with its diff id and size from its record, without reading the
// store; the others are streamed from the store and also written to the
// cache. When w is an image.Resumable (writeAtomic's file), the cache also
// keeps the archive's hash state after each layer, and the archive starts
// with the run of first layers that the cache holds with their state,
// neither read nor hashed. The items read, or skipped for a cached layer,
// are counted on count (which may be nil).
func writeDocker(w io.Writer, e *plan.Export, c *layercache.Cache, count nar.Counter) (*image.Set, error) {
	mtime, _, err := image.Check(e)
	if err != nil {
		return nil, err
	}
	af, _ := w.(image.Resumable)
	done := map[string]image.Blob{}
	layers := image.Layers(e)
	hits := make([]image.Cached, len(layers))
	keys := make([]layercache.Key, len(layers))
	var misses []image.Layer
	for i, l := range layers {
		var ok bool
		if hits[i], keys[i], ok = image.Lookup(c, l, format.None, true); !ok {
			misses = append(misses, l)
		}
	}
	// off is the archive's length so far, prefix the key of its bytes
	// (image.PrefixKey), whose hash states the cache keeps when af is a
	// file.
	var off int64
	prefix := dockerStart
	first := 0
	if c != nil && af != nil {
		if first, prefix, err = resumeDocker(af, c, layers, hits, mtime, done, count); err != nil {
			return nil, err
		}
		off = af.Len()
	}
	sizes, stopSizes := image.SizesAhead(misses)
	defer stopSizes()
	next := 0
	for i := first; i < len(layers); i++ {
		l := layers[i]
		var (
			head []byte
			b    image.Blob
			err  error
		)
		if hits[i].Path != "" {
			size := hits[i].Blob.Size
			if head, err = image.AlignedHead(dockerLayerHeaders(l.Plan.ID, size, mtime), off); err != nil {
				return nil, err
			}
			if err := image.WriteChunk(w, head, hits[i].Path, size); err != nil {
				return nil, fmt.Errorf("layer %s: %w", l.Plan.ID, err)
			}
			l.Skipped(count)
			b = hits[i].Blob
		} else {
			sr := <-sizes[next]
			next++
			if sr.Err != nil {
				return nil, sr.Err
			}
			if head, err = image.AlignedHead(dockerLayerHeaders(l.Plan.ID, sr.Size, mtime), off); err != nil {
				return nil, err
			}
			if b, err = streamLayer(w, head, l, sr.Size, c, keys[i], count); err != nil {
				return nil, err
			}
		}
		off += int64(len(head)) + b.Size + tree.Padding(b.Size)
		prefix = image.PrefixKey(prefix, head, b.DiffID, b.Size)
		image.KeepState(af, c, prefix)
		done[l.Plan.ID] = b
	}
	// The base's layers, after the closure's (they hold no store item, and
	// resuming stays with the layers above): uncompressed tars.
	baseBlobs := map[digest.Digest]image.BaseBlob{}
	err = eachBaseLayer(e, func(b *plan.Base, l plan.BaseLayer) error {
		p, size, remove, err := dockerBaseTar(b.Ref, l, e.Insecure, c)
		if err != nil {
			return err
		}
		head, err := image.AlignedHead(dockerLayerHeaders(l.DiffID.Encoded(), size, mtime), off)
		if err == nil {
			err = image.WriteChunk(w, head, p, size)
		}
		remove()
		if err != nil {
			return fmt.Errorf("base %s: layer %s: %w", b.Ref, l.Digest, err)
		}
		off += int64(len(head)) + size + tree.Padding(size)
		baseBlobs[l.Digest] = dockerBaseBlob(l, size)
		return nil
	})
	if err != nil {
		return nil, err
	}
	imgs, err := image.DockerImages(e, done, baseBlobs)
	if err != nil {
		return nil, err
	}

	tw := tar.NewWriter(w)
	configs := map[string][]byte{}
	var manifest []image.DockerEntry
	repos := map[string]map[string]string{}
	for _, img := range imgs.Images {
		entry := img.DockerEntry()
		configs[entry.Config] = img.Config
		manifest = append(manifest, entry)
		name, tag, err := img.NameTag()
		if err != nil {
			return nil, err
		}
		if repos[name] == nil {
			repos[name] = map[string]string{}
		}
		repos[name][tag] = img.Plan.Layers[len(img.Plan.Layers)-1].ID
	}
	names := make([]string, 0, len(configs))
	for n := range configs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := image.WriteFile(tw, n, configs[n], mtime); err != nil {
			return nil, err
		}
	}
	if err := writeDockerOCI(tw, imgs, layers, done, mtime); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		v    any
	}{{"manifest.json", manifest}, {"repositories", repos}} {
		b, err := image.Marshal(f.v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		if err := image.WriteFile(tw, f.name, append(b, '\n'), mtime); err != nil {
			return nil, err
		}
	}
	return imgs, tw.Close()
}

// eachBaseLayer calls do for each distinct layer of the bases of e's
// images, in system and layer order, and stops at its first error.
func eachBaseLayer(e *plan.Export, do func(b *plan.Base, l plan.BaseLayer) error) error {
	seen := map[digest.Digest]bool{}
	for i := range e.Systems {
		b := e.Systems[i].Image.Base
		if b == nil {
			continue
		}
		for _, l := range b.Layers {
			if seen[l.Digest] {
				continue
			}
			seen[l.Digest] = true
			if err := do(b, l); err != nil {
				return err
			}
		}
	}
	return nil
}

// dockerBaseBlob is what stands for the base layer l in a docker archive:
// its uncompressed tar of size bytes, named by its diff id.
func dockerBaseBlob(l plan.BaseLayer, size int64) image.BaseBlob {
	return image.BaseBlob{Blob: image.Blob{DiffID: l.DiffID, Size: size, Digest: l.DiffID, BlobSize: size}, MediaType: ocispec.MediaTypeImageLayer}
}

// describeDocker returns the images writeDocker writes for e, from its
// layers' blobs (image.DigestBlobs), without writing the archive. The base
// layers' tars are those writeDocker holds (dockerBaseBlob): an
// uncompressed base layer is its own tar, of the blob's size; a compressed
// one is decompressed (dockerBaseTar, through the layer cache c, which
// keeps the tar for the export) to learn its tar's length.
func describeDocker(e *plan.Export, blobs map[string]image.Blob, c *layercache.Cache) (*image.Set, error) {
	base := map[digest.Digest]image.BaseBlob{}
	err := eachBaseLayer(e, func(b *plan.Base, l plan.BaseLayer) error {
		size := l.Size
		if layerCompression(l.MediaType) != format.None {
			_, n, remove, err := dockerBaseTar(b.Ref, l, e.Insecure, c)
			if err != nil {
				return err
			}
			remove()
			size = n
		}
		base[l.Digest] = dockerBaseBlob(l, size)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return image.DockerImages(e, blobs, base)
}

// dockerLayerHeaders are the tar headers of a layer of size bytes in a
// docker archive: the folder "<id>/" and the file "<id>/layer.tar".
func dockerLayerHeaders(id string, size, mtime int64) []*tar.Header {
	return []*tar.Header{image.Header(id+"/", 0, mtime), image.Header(image.DockerLayerTar(id), size, mtime)}
}

// resumeDocker starts the docker archive af with its first layers when the
// cache holds their blobs and the archive's hash state after them
// (image.Resume), and records their blobs in done. It returns the number
// of layers written and the key of the archive so far.
func resumeDocker(af image.Resumable, c *layercache.Cache, layers []image.Layer, hits []image.Cached, mtime int64, done map[string]image.Blob, count nar.Counter) (int, layercache.Key, error) {
	var chunks []image.Chunk
	for i := 0; i < len(layers) && hits[i].Path != ""; i++ {
		size := hits[i].Blob.Size
		chunks = append(chunks, image.Chunk{Headers: dockerLayerHeaders(layers[i].Plan.ID, size, mtime), Blob: hits[i].Path, Size: size, Digest: hits[i].Blob.DiffID})
	}
	n, key, err := image.Resume(af, c, dockerStart, chunks)
	if err != nil {
		return 0, dockerStart, err
	}
	for i, l := range layers[:n] {
		l.Skipped(count)
		done[l.Plan.ID] = hits[i].Blob
	}
	return n, key, nil
}

// streamLayer writes head, then l's tar streamed from the store (size
// bytes, as planned: else the store changed), then tar's padding, to w;
// with a cache, the layer also goes into a new blob kept under key.
func streamLayer(w io.Writer, head []byte, l image.Layer, size int64, c *layercache.Cache, key layercache.Key, count nar.Counter) (image.Blob, error) {
	if _, err := w.Write(head); err != nil {
		return image.Blob{}, err
	}
	tee := image.NewTee(c)
	var dst io.Writer = w
	if tee != nil {
		dst = io.MultiWriter(w, tee)
	}
	id, n, err := l.WriteTar(dst, count)
	if err == nil && n != size {
		err = fmt.Errorf("layer %s: %d bytes written, %d planned: store files changed while being read", l.Plan.ID, n, size)
	}
	b := image.Blob{DiffID: id, Size: n, Digest: id, BlobSize: n}
	if tee.Finish(b, err == nil) != "" {
		image.Remember(c, key, b)
	}
	if err != nil {
		return image.Blob{}, err
	}
	_, err = w.Write(make([]byte, tree.Padding(size)))
	return b, err
}

// writeDockerOCI writes the OCI layout part of a docker archive: the
// blobs (layers and configs as hard links to the docker entries, the
// manifests), oci-layout and index.json.
func writeDockerOCI(tw *tar.Writer, imgs *image.Set, layers []image.Layer, done map[string]image.Blob, mtime int64) error {
	type blob struct {
		name, link string
		data       []byte
	}
	var blobs []blob
	seen := map[string]bool{}
	add := func(b blob) {
		if !seen[b.name] {
			seen[b.name] = true
			blobs = append(blobs, b)
		}
	}
	for _, l := range layers {
		add(blob{name: image.BlobPath(done[l.Plan.ID].DiffID), link: image.DockerLayerTar(l.Plan.ID)})
	}
	for _, img := range imgs.Images {
		for _, b := range img.BaseBlobs {
			add(blob{name: image.BlobPath(b.DiffID), link: image.DockerLayerTar(b.DiffID.Encoded())})
		}
	}
	for _, img := range imgs.Images {
		add(blob{name: image.BlobPath(img.ConfigDigest), link: img.DockerEntry().Config})
		add(blob{name: image.BlobPath(img.ManifestDigest), data: img.Manifest})
	}
	slices.SortFunc(blobs, func(a, b blob) int { return strings.Compare(a.name, b.name) })
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(image.Header(d, 0, mtime)); err != nil {
			return err
		}
	}
	for _, b := range blobs {
		if b.link == "" {
			if err := image.WriteFile(tw, b.name, b.data, mtime); err != nil {
				return err
			}
			continue
		}
		hdr := image.Header(b.name, 0, mtime)
		hdr.Typeflag, hdr.Linkname = tar.TypeLink, b.link
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", b.name, err)
		}
	}
	var listed []ocispec.Descriptor
	for _, m := range imgs.Manifests() {
		d, err := image.Listed(m)
		if err != nil {
			return err
		}
		listed = append(listed, d)
	}
	index, err := image.LayoutIndex(listed)
	if err != nil {
		return err
	}
	if err := image.WriteFile(tw, "oci-layout", []byte(image.LayoutVersion), mtime); err != nil {
		return err
	}
	return image.WriteFile(tw, "index.json", index, mtime)
}

// PlanImage leaves each image's layers uncompressed: Docker archives hold
// plain layer tars, whatever the compression attribute (which every image
// format takes) says.
func (dockerWriter) PlanImage(img *plan.Image, _ *plan.Settings) error {
	img.Compression = ""
	return nil
}

// describe gives the images as the archive holds them (describeDocker),
// with no index: the archive holds none.
func (dockerWriter) describe(e *plan.Export, blobs map[string]image.Blob, c *layercache.Cache) (*image.Set, []byte, error) {
	imgs, err := describeDocker(e, blobs, c)
	return imgs, nil, err
}
