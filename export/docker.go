package export

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/gen"
	"github.com/storepack/storepack/layercache"
	"github.com/storepack/storepack/nar"
	"github.com/storepack/storepack/store"
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
// length is computed from file metadata first (LayerSize, in a goroutine
// that runs ahead of the writing), its tar header written, then the layer
// streamed into it (streamLayer), its diff id computed on the way. Configs
// need the diff ids, so they and manifest.json come last. Every store file
// is read once per layer holding it: once per export unless several images
// hold the same item in differently grouped layers.
//
// With a layer cache, a re-export resumes the archive after its unchanged
// first layers (resumeDocker): lower layers change least often (the store
// items most depended on), and the cache keeps the archive's sha256 state
// after each layer, so the layers up to the first changed one are cloned
// or copied from their cached blobs without being read or hashed. Aligning
// layers to 4096 bytes lets btrfs and XFS clone them (FICLONERANGE): then
// they cost no copy either.
// Outer entries have the images' mtime, uid and gid 0, files 0644 and
// folders 0755.

// dockerWriter writes docker exports: one archive of every system's image.
type dockerWriter struct{}

func (dockerWriter) totals(e *gen.Export) (bytes, items int64) { return imageTotals(e) }

func (dockerWriter) tempDirs() []string { return nil }

func (dockerWriter) write(e *gen.Export, outDir string, o Options, count nar.Counter) ([]File, error) {
	f, err := writeAtomic(outDir, e.Output, func(w io.Writer) error { return writeDocker(w, e, o.Cache, count) })
	if err != nil {
		return nil, err
	}
	f.Export = e.Name
	return []File{f}, nil
}

// imageTotals is the work of writing e's images: the items of each
// distinct layer (an item in two differently grouped layers is read
// twice).
func imageTotals(e *gen.Export) (bytes, items int64) {
	for _, ul := range uniqueLayers(e) {
		for _, p := range ul.layer.Items {
			bytes += ul.narSizes[p]
			items++
		}
	}
	return bytes, items
}

// WriteDocker writes e, a docker export whose systems have image plans, to
// w as a docker archive holding one image per system. It fills in the
// plan's diff ids, sizes and config digests (Image.SetDiffIDs).
func WriteDocker(w io.Writer, e *gen.Export) error {
	return writeDocker(w, e, nil, nil)
}

// writeDocker is WriteDocker with a layer cache (nil for none): a layer
// the cache holds is copied from its blob, with its diff id and size from
// its record, without reading the store; the others are streamed from the
// store and also written to the cache. When w is the file of writeAtomic
// (an *atomicFile), the cache also keeps the archive's hash state after
// each layer, and the archive starts with the run of first layers that
// the cache holds with their state, neither read nor hashed
// (resumeDocker). The items read, or skipped for a cached layer, are
// counted on count (nil for none).
func writeDocker(w io.Writer, e *gen.Export, c *layercache.Cache, count nar.Counter) error {
	if len(e.Systems) == 0 {
		return fmt.Errorf("export %q has no system", e.Name)
	}
	mtime, err := imagesMTime(e)
	if err != nil {
		return err
	}
	af, _ := w.(*atomicFile)
	done := map[string]blobResult{}
	layers := uniqueLayers(e)
	setCounter(layers, count)
	hits := make([]cached, len(layers))
	keys := make([]layercache.Key, len(layers))
	var misses []uniqueLayer
	for i, ul := range layers {
		var ok bool
		if hits[i], keys[i], ok = lookup(c, ul, format.None, true); !ok {
			misses = append(misses, ul)
		}
	}
	// off is the archive's length so far, prefix the key of its bytes
	// (prefixKey), whose hash states the cache keeps when af is a file.
	var off int64
	prefix := dockerStart
	first := 0
	if c != nil && af != nil {
		var err error
		if first, prefix, err = resumeDocker(af, c, layers, hits, mtime, done); err != nil {
			return err
		}
		off = af.n
	}
	sizes, stopSizes := sizesAhead(misses)
	defer stopSizes()
	next := 0
	for i := first; i < len(layers); i++ {
		ul := layers[i]
		var (
			head []byte
			r    blobResult
			err  error
		)
		if hits[i].blob != "" {
			size := hits[i].rec.Size
			if head, err = layerHead(ul.layer.ID, size, mtime, off); err != nil {
				return err
			}
			if err := writeChunk(w, head, hits[i].blob, size); err != nil {
				return fmt.Errorf("layer %s: %w", ul.layer.ID, err)
			}
			ul.skipped()
			r = hits[i].result()
		} else {
			sr := <-sizes[next]
			next++
			if sr.err != nil {
				return sr.err
			}
			if head, err = layerHead(ul.layer.ID, sr.size, mtime, off); err != nil {
				return err
			}
			if r, err = streamChunk(w, head, ul, sr.size, c, keys[i]); err != nil {
				return err
			}
		}
		off += int64(len(head)) + r.size + tarPad(r.size)
		prefix = prefixKey(prefix, head, r.diffID, r.size)
		keepState(af, c, prefix)
		done[ul.layer.ID] = r
	}
	tw := tar.NewWriter(w)
	if err := setBlobs(e, done); err != nil {
		return err
	}

	configs := map[string][]byte{}
	var manifest []gen.ManifestEntry
	repos := map[string]map[string]string{}
	for i := range e.Systems {
		img := e.Systems[i].Image
		b, err := img.ConfigJSON()
		if err != nil {
			return err
		}
		configs[img.Manifest.Config] = b
		manifest = append(manifest, img.Manifest)
		name, tag, err := gen.SplitTag(img.Tag)
		if err != nil {
			return err
		}
		if repos[name] == nil {
			repos[name] = map[string]string{}
		}
		repos[name][tag] = img.Layers[len(img.Layers)-1].ID
	}
	names := make([]string, 0, len(configs))
	for n := range configs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := writeFile(tw, n, configs[n], mtime); err != nil {
			return err
		}
	}
	if err := writeDockerOCI(tw, e, layers, mtime); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		v    any
	}{{"manifest.json", manifest}, {"repositories", repos}} {
		b, err := compactJSON(f.v)
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		if err := writeFile(tw, f.name, b, mtime); err != nil {
			return err
		}
	}
	return tw.Close()
}

// dockerStart is the key of a docker archive before its first layer.
var dockerStart = archiveStart("docker archive", nil)

// layerHead returns the tar headers of a layer of size bytes in a docker
// archive at offset off: the folder "<id>/" and the file "<id>/layer.tar",
// aligned (alignedHead).
func layerHead(id string, size, mtime, off int64) ([]byte, error) {
	return alignedHead(layerHeaders(id, size, mtime), off)
}

func layerHeaders(id string, size, mtime int64) []*tar.Header {
	return []*tar.Header{outerHeader(id+"/", 0, mtime), outerHeader(id+"/layer.tar", size, mtime)}
}

// resumeDocker starts the docker archive af with its first layers when the
// cache holds their blobs and the archive's hash state after them
// (resumeArchive), and records their results in done. It returns the
// number of layers written and the key of the archive so far.
func resumeDocker(af *atomicFile, c *layercache.Cache, layers []uniqueLayer, hits []cached, mtime int64, done map[string]blobResult) (int, layercache.Key, error) {
	var chunks []fileChunk
	for i := 0; i < len(layers) && hits[i].blob != ""; i++ {
		size := hits[i].rec.Size
		chunks = append(chunks, fileChunk{layerHeaders(layers[i].layer.ID, size, mtime), hits[i].blob, size, hits[i].rec.DiffID})
	}
	n, key, err := resumeArchive(af, c, dockerStart, chunks)
	if err != nil {
		return 0, dockerStart, err
	}
	for i, ul := range layers[:n] {
		ul.skipped()
		done[ul.layer.ID] = hits[i].result()
	}
	return n, key, nil
}

// streamChunk writes head, then ul's layer streamed from the store (size
// bytes, as planned: else the store changed), then tar's padding, to w;
// with a cache, the layer also goes into a new blob kept under key.
func streamChunk(w io.Writer, head []byte, ul uniqueLayer, size int64, c *layercache.Cache, key layercache.Key) (blobResult, error) {
	if _, err := w.Write(head); err != nil {
		return blobResult{}, err
	}
	cw := newCacheBlobWriter(c)
	var dst io.Writer = w
	if cw != nil {
		dst = io.MultiWriter(w, cw)
	}
	id, n, err := writeLayer(dst, ul)
	if err == nil && n != size {
		err = fmt.Errorf("layer %s: %d bytes written, %d planned: store files changed while being read", ul.layer.ID, n, size)
	}
	r := blobResult{id, n, id, n}
	if cw.finish(r, err == nil) != "" {
		remember(c, key, r)
	}
	if err != nil {
		return blobResult{}, err
	}
	_, err = w.Write(make([]byte, tarPad(size)))
	return r, err
}

// DigestLayers computes the diff ids and sizes of e's images, and for oci
// exports the digests of their compressed layer blobs, by streaming their
// layers into the hashes without writing them anywhere, and fills them in
// (Image.SetDiffIDs, Image.SetBlobs) with the config and manifest digests:
// what `storepack plan` shows. It reads every file of the closure.
func DigestLayers(e *gen.Export) error {
	return digestBlobs(e, nil)
}

// DigestLayersWith is DigestLayers with options: with a cache, the layers
// it has records of are not read at all, and the records of the others are
// kept (without their blobs, which nothing writes).
func DigestLayersWith(e *gen.Export, o Options) error {
	return digestBlobs(e, o.Cache)
}

// writeDockerOCI writes the OCI layout part of a docker archive: the
// blobs (layers and configs as hard links to the docker entries, the
// manifests), oci-layout and index.json. setBlobs must have run.
func writeDockerOCI(tw *tar.Writer, e *gen.Export, layers []uniqueLayer, mtime int64) error {
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
	for _, ul := range layers {
		add(blob{name: blobPath(ul.layer.DiffID), link: ul.layer.ID + "/layer.tar"})
	}
	var manifests []ocispec.Descriptor
	for i := range e.Systems {
		img := e.Systems[i].Image
		add(blob{name: blobPath(img.ConfigDigest), link: img.Manifest.Config})
		m, err := img.ManifestJSON()
		if err != nil {
			return err
		}
		add(blob{name: blobPath(img.ManifestDigest), data: m})
		d, err := img.ManifestDescriptor()
		if err != nil {
			return err
		}
		manifests = append(manifests, d)
	}
	slices.SortFunc(blobs, func(a, b blob) int { return strings.Compare(a.name, b.name) })
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(outerHeader(d, 0, mtime)); err != nil {
			return err
		}
	}
	for _, b := range blobs {
		if b.link == "" {
			if err := writeFile(tw, b.name, b.data, mtime); err != nil {
				return err
			}
			continue
		}
		hdr := outerHeader(b.name, 0, mtime)
		hdr.Typeflag, hdr.Linkname = tar.TypeLink, b.link
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", b.name, err)
		}
	}
	index, err := indexJSON(manifests)
	if err != nil {
		return err
	}
	if err := writeFile(tw, "oci-layout", []byte(LayoutVersion), mtime); err != nil {
		return err
	}
	return writeFile(tw, "index.json", index, mtime)
}

// sizeResult is a layer's planned length, or why it has none.
type sizeResult struct {
	size int64
	err  error
}

// sizesAhead computes the layers' lengths (LayerSize, file metadata only)
// in a goroutine, in order, so that the walk for one layer overlaps the
// streaming of the ones before it. stop makes it end after the layer it is
// on.
func sizesAhead(layers []uniqueLayer) (results []chan sizeResult, stop func()) {
	results = make([]chan sizeResult, len(layers))
	for i := range results {
		results[i] = make(chan sizeResult, 1)
	}
	var stopped atomic.Bool
	go func() {
		for i, ul := range layers {
			if stopped.Load() {
				return
			}
			n, err := LayerSize(ul.layer, ul.mtime, ul.fsPaths)
			results[i] <- sizeResult{n, err}
		}
	}()
	return results, func() { stopped.Store(true) }
}

// layerResult is a written layer's diff id and length.
type layerResult struct {
	diffID digest.Digest
	size   int64
}

// uniqueLayer is a layer to write, with what writing it needs.
type uniqueLayer struct {
	layer     *gen.Layer
	mtime     int64
	fsPaths   map[store.Path]string
	narHashes map[store.Path]string
	narSizes  map[store.Path]int64
	// count, when not nil, counts the layer's items as they are read.
	count nar.Counter
}

// setCounter makes the layers count their items on count.
func setCounter(layers []uniqueLayer, count nar.Counter) {
	for i := range layers {
		layers[i].count = count
	}
}

// skipped counts ul's items done without reading them (a cached layer):
// their whole NAR sizes.
func (ul uniqueLayer) skipped() {
	if ul.count == nil {
		return
	}
	var bytes int64
	for _, p := range ul.layer.Items {
		bytes += ul.narSizes[p]
	}
	ul.count.Done(int64(len(ul.layer.Items)), bytes)
}

// uniqueLayers lists the distinct layers of e's images in image order:
// the first image's layers from the bottom up, then the layers of the
// next images not listed yet. Docker archives hold them in this order, so
// that the layers that change least often come first (see writeDocker).
func uniqueLayers(e *gen.Export) []uniqueLayer {
	seen := map[string]bool{}
	var out []uniqueLayer
	for i := range e.Systems {
		sys := &e.Systems[i]
		if sys.Image == nil {
			continue
		}
		fsPaths := closureFS(sys)
		narHashes := make(map[store.Path]string, len(sys.Closure))
		narSizes := make(map[store.Path]int64, len(sys.Closure))
		for k := range sys.Closure {
			narHashes[sys.Closure[k].Path] = sys.Closure[k].NarHash
			narSizes[sys.Closure[k].Path] = sys.Closure[k].NarSize
		}
		for j := range sys.Image.Layers {
			l := &sys.Image.Layers[j]
			if seen[l.ID] {
				continue
			}
			seen[l.ID] = true
			out = append(out, uniqueLayer{layer: l, mtime: sys.Image.MTime, fsPaths: fsPaths, narHashes: narHashes, narSizes: narSizes})
		}
	}
	return out
}

// setDiffIDs gives every image of e its layers' results.
func setDiffIDs(e *gen.Export, done map[string]layerResult) error {
	for i := range e.Systems {
		img := e.Systems[i].Image
		ids := make([]digest.Digest, len(img.Layers))
		sizes := make([]int64, len(img.Layers))
		for j := range img.Layers {
			r := done[img.Layers[j].ID]
			ids[j], sizes[j] = r.diffID, r.size
		}
		if err := img.SetDiffIDs(ids, sizes); err != nil {
			return err
		}
	}
	return nil
}

// imagesMTime checks that every system has an image and that they share
// one mtime (they do: created is per export), and returns it.
func imagesMTime(e *gen.Export) (int64, error) {
	for i := range e.Systems {
		img := e.Systems[i].Image
		if img == nil {
			return 0, fmt.Errorf("export %q, system %s: no image plan", e.Name, e.Systems[i].Name)
		}
		if len(img.Layers) == 0 {
			return 0, fmt.Errorf("export %q, system %s: the image has no layer", e.Name, e.Systems[i].Name)
		}
		if img.MTime != e.Systems[0].Image.MTime {
			return 0, fmt.Errorf("export %q: systems %s and %s have different creation times", e.Name, e.Systems[0].Name, e.Systems[i].Name)
		}
	}
	return e.Systems[0].Image.MTime, nil
}

// outerHeader is a header of the docker archive itself: a folder when name
// ends with "/", else a file of size bytes.
func outerHeader(name string, size int64, mtime int64) *tar.Header {
	hdr := &tar.Header{Format: tar.FormatPAX, Name: name, ModTime: time.Unix(mtime, 0), Typeflag: tar.TypeReg, Mode: 0o644, Size: size}
	if name[len(name)-1] == '/' {
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeDir, 0o755, 0
	}
	return hdr
}

// writeFile writes one small file to the docker archive.
func writeFile(tw *tar.Writer, name string, b []byte, mtime int64) error {
	if err := tw.WriteHeader(outerHeader(name, int64(len(b)), mtime)); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if _, err := tw.Write(b); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// compactJSON encodes v without HTML escaping, ending with a newline.
func compactJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
