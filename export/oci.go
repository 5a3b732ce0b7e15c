package export

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/gen"
	"github.com/storepack/storepack/internal/atomicfile"
	"github.com/storepack/storepack/layercache"
	"github.com/storepack/storepack/nar"
)

// An OCI image layout (image-spec's image-layout.md) holds:
//
//   - oci-layout: {"imageLayoutVersion":"1.0.0"};
//   - blobs/sha256/<hex>: every layer (compressed as the export says), every
//     config, every image manifest and, for several systems, the image index;
//   - index.json: for one system, the image's manifest (with its platform);
//     for several, one image index whose manifests are the systems' images,
//     each with its platform. Either is annotated with the tag as
//     org.opencontainers.image.ref.name, so that `oci:DIR` (the only image)
//     and `oci:DIR:TAG` both find it.
//
// Layer blobs are written once each, into temporary files in blobs/sha256
// while their compressed digest and their diff id (the uncompressed tar's
// sha256) are computed in the same pass, then renamed to their digest.
// Distinct layers are compressed in parallel (up to GOMAXPROCS at once);
// every layer's bytes depend only on its plan and compression, so the
// layout is the same whatever the parallelism.

// ociWriter writes oci exports: an image layout folder, or an oci-archive
// when the output ends with ".tar".
type ociWriter struct{}

func (ociWriter) totals(e *gen.Export) (bytes, items int64) { return imageTotals(e) }

func (ociWriter) tempDirs() []string { return nil }

func (ociWriter) write(e *gen.Export, outDir string, o Options, count nar.Counter) ([]File, error) {
	var f File
	var err error
	if strings.HasSuffix(e.Output, ".tar") {
		dir := filepath.Dir(filepath.Join(outDir, filepath.FromSlash(e.Output)))
		f, err = writeAtomic(outDir, e.Output, func(w io.Writer) error { return writeOCIArchive(w, dir, e, o.Cache, count) })
	} else {
		f, err = writeOCIDir(outDir, e.Output, e, o.Cache, count)
	}
	if err != nil {
		return nil, err
	}
	f.Export = e.Name
	return []File{f}, nil
}

// LayoutVersion is the oci-layout file's contents.
const LayoutVersion = `{"imageLayoutVersion":"1.0.0"}`

// Compression settings: fixed so that blobs are byte-identical across runs,
// machines and GOMAXPROCS values. gzip: level 6, no name, no mtime in the
// header. zstd: the default level, one encoding goroutine per stream (the
// parallelism is across layers), CRC on.
const (
	gzipLevel = 6
)

// compressor wraps w in the compression named (none, gzip, zstd).
func compressor(w io.Writer, compression format.Compression) (io.WriteCloser, error) {
	switch compression {
	case "", format.None:
		return nopWriteCloser{w}, nil
	case format.Gzip:
		return gzip.NewWriterLevel(w, gzipLevel)
	case format.Zstd:
		return zstd.NewWriter(w,
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(zstd.MaxWindowSize>>(30-23)), // 8 MiB
			zstd.WithEncoderCRC(true),
			zstd.WithZeroFrames(true),
		)
	}
	return nil, fmt.Errorf("unknown layer compression %q", compression)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// blobResult is a written layer blob: its diff id and tar length, and the
// digest and length of the (compressed) blob.
type blobResult struct {
	diffID   digest.Digest
	size     int64
	digest   digest.Digest
	blobSize int64
}

// writeLayerBlob streams ul's layer tar, compressed, to w, computing the
// diff id and the blob digest in the same pass. Compression runs in a
// goroutine of its own, fed through a fanout, so that it overlaps reading
// and hashing the tar.
func writeLayerBlob(w io.Writer, ul uniqueLayer, compression format.Compression) (blobResult, error) {
	if compression == "" || compression == format.None {
		id, n, err := writeLayer(w, ul)
		return blobResult{id, n, id, n}, err
	}
	dw := newDigestWriter(w)
	cw, err := compressor(dw, compression)
	if err != nil {
		return blobResult{}, err
	}
	fo := newFanout(cw)
	id, n, err := writeLayer(fo, ul)
	ferr := fo.Close()
	cerr := cw.Close()
	for _, e := range []error{err, ferr, cerr} {
		if e != nil {
			return blobResult{}, fmt.Errorf("layer %s: %w", ul.layer.ID, e)
		}
	}
	return blobResult{id, n, dw.digest(), dw.n}, nil
}

// exportCompression is the compression of e's layer blobs: the images'
// (oci exports), or none (docker exports).
func exportCompression(e *gen.Export) (format.Compression, error) {
	c := e.Systems[0].Image.Compression
	for i := range e.Systems {
		if e.Systems[i].Image.Compression != c {
			return "", fmt.Errorf("export %q: systems %s and %s have different compressions", e.Name, e.Systems[0].Name, e.Systems[i].Name)
		}
	}
	if c == "" {
		c = format.None
	}
	return c, nil
}

// eachLayer runs do for every layer of layers, up to GOMAXPROCS at once,
// and collects the results by layer ID. The first error stops the layers
// not yet started and is returned.
func eachLayer(layers []uniqueLayer, do func(ul uniqueLayer) (blobResult, error)) (map[string]blobResult, error) {
	workers := min(runtime.GOMAXPROCS(0), len(layers))
	var (
		mu      sync.Mutex
		results = make(map[string]blobResult, len(layers))
		first   error
		next    int
		wg      sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if first != nil || next == len(layers) {
					mu.Unlock()
					return
				}
				ul := layers[next]
				next++
				mu.Unlock()
				r, err := do(ul)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				results[ul.layer.ID] = r
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return results, first
}

// setBlobs gives every image of e its layers' diff ids and blobs, which
// also fixes its config and manifest digests.
func setBlobs(e *gen.Export, done map[string]blobResult) error {
	diffs := make(map[string]layerResult, len(done))
	for id, r := range done {
		diffs[id] = layerResult{r.diffID, r.size}
	}
	if err := setDiffIDs(e, diffs); err != nil {
		return err
	}
	for i := range e.Systems {
		img := e.Systems[i].Image
		ds := make([]digest.Digest, len(img.Layers))
		sizes := make([]int64, len(img.Layers))
		for j := range img.Layers {
			r := done[img.Layers[j].ID]
			ds[j], sizes[j] = r.digest, r.blobSize
		}
		if err := img.SetBlobs(ds, sizes); err != nil {
			return err
		}
	}
	return nil
}

// digestBlobs computes the diff ids and blob digests of e's images by
// streaming (and compressing) every layer into the hashes only, and fills
// them in: what planning and pushing need before any blob is written.
func digestBlobs(e *gen.Export, c *layercache.Cache) error {
	if _, err := imagesMTime(e); err != nil {
		return err
	}
	compression, err := exportCompression(e)
	if err != nil {
		return err
	}
	done, err := eachLayer(uniqueLayers(e), func(ul uniqueLayer) (blobResult, error) {
		hit, k, ok := lookup(c, ul, compression, false)
		if ok {
			return hit.result(), nil
		}
		r, err := writeLayerBlob(io.Discard, ul, compression)
		if err == nil {
			remember(c, k, r)
		}
		return r, err
	})
	if err != nil {
		return err
	}
	return setBlobs(e, done)
}

// ociFile is a small file of a layout: a config, a manifest, an index.
type ociFile struct {
	name string // relative to the layout: blobs/sha256/<hex>, index.json
	data []byte
}

// ociMetadata lists the blobs besides layers (configs, manifests, the
// image index), sorted by name, and index.json, once setBlobs has run.
func ociMetadata(e *gen.Export) (blobs []ociFile, index []byte, err error) {
	seen := map[string]bool{}
	add := func(b []byte) digest.Digest {
		d := digest.FromBytes(b)
		name := blobPath(d)
		if !seen[name] {
			seen[name] = true
			blobs = append(blobs, ociFile{name, b})
		}
		return d
	}
	var root ocispec.Descriptor
	for i := range e.Systems {
		img := e.Systems[i].Image
		cfg, err := img.ConfigJSON()
		if err != nil {
			return nil, nil, err
		}
		add(cfg)
		m, err := img.ManifestJSON()
		if err != nil {
			return nil, nil, err
		}
		add(m)
		if root, err = img.ManifestDescriptor(); err != nil {
			return nil, nil, err
		}
	}
	if len(e.Systems) > 1 {
		ib, err := e.IndexJSON()
		if err != nil {
			return nil, nil, err
		}
		tag, err := e.IndexTag()
		if err != nil {
			return nil, nil, err
		}
		root = ocispec.Descriptor{
			MediaType:   ocispec.MediaTypeImageIndex,
			Digest:      add(ib),
			Size:        int64(len(ib)),
			Annotations: map[string]string{ocispec.AnnotationRefName: tag},
		}
	}
	slices.SortFunc(blobs, func(a, b ociFile) int { return strings.Compare(a.name, b.name) })
	index, err = indexJSON([]ocispec.Descriptor{root})
	return blobs, index, err
}

// indexJSON is an index.json listing manifests.
func indexJSON(manifests []ocispec.Descriptor) ([]byte, error) {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests}
	idx.SchemaVersion = 2
	b, err := compactJSON(idx)
	if err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	return b, nil
}

// blobPath is where a blob goes in a layout: blobs/sha256/<hex>.
func blobPath(d digest.Digest) string {
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded()
}

// WriteOCILayout writes e as an OCI image layout into dir, which must not
// exist or be empty. It fills in the plan's diff ids, blob digests and
// config and manifest digests. Every store file is read once (per layer
// holding it).
func WriteOCILayout(dir string, e *gen.Export) error {
	return writeOCILayout(dir, e, nil, nil)
}

// writeOCILayout is WriteOCILayout with a layer cache (nil for none): a
// layer blob the cache holds is put in the layout as a reflink or hard link
// of the cached file (layercache.Link), with its digests from its record,
// without reading the store; the others are written into the cache first
// and linked the same way. The items read, or skipped for a cached layer,
// are counted on count (nil for none).
func writeOCILayout(dir string, e *gen.Export, c *layercache.Cache, count nar.Counter) error {
	if len(e.Systems) == 0 {
		return fmt.Errorf("export %q has no system", e.Name)
	}
	if _, err := imagesMTime(e); err != nil {
		return err
	}
	compression, err := exportCompression(e)
	if err != nil {
		return err
	}
	blobDir := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobDir, 0o755); err != nil {
		return err
	}
	layers := uniqueLayers(e)
	setCounter(layers, count)
	done, err := eachLayer(layers, func(ul uniqueLayer) (blobResult, error) {
		if hit, k, ok := lookup(c, ul, compression, true); ok {
			ul.skipped()
			return hit.result(), linkBlob(hit.blob, blobDir, hit.rec.Digest.Encoded())
		} else if c != nil && k != "" {
			if r, p, err := cacheLayerBlob(c, ul, compression); err != nil {
				return r, err
			} else if p != "" {
				remember(c, k, r)
				return r, linkBlob(p, blobDir, r.digest.Encoded())
			}
		}
		var r blobResult
		err := writeBlobFile(blobDir, func(w io.Writer) (digest.Digest, error) {
			var err error
			r, err = writeLayerBlob(w, ul, compression)
			return r.digest, err
		})
		return r, err
	})
	if err != nil {
		return err
	}
	if err := setBlobs(e, done); err != nil {
		return err
	}
	blobs, index, err := ociMetadata(e)
	if err != nil {
		return err
	}
	blobs = append(blobs, ociFile{"oci-layout", []byte(LayoutVersion)}, ociFile{"index.json", index})
	for _, b := range blobs {
		if err := atomicfile.WriteFile(filepath.Join(dir, filepath.FromSlash(b.name)), b.data, 0o644); err != nil {
			return err
		}
	}
	if err := syncDir(blobDir); err != nil {
		return err
	}
	return syncDir(dir)
}

// writeBlobFile writes a blob through fill into a temporary file in
// blobDir, synced, then renamed to the hex of the digest fill returns.
func writeBlobFile(blobDir string, fill func(io.Writer) (digest.Digest, error)) error {
	tmp, err := atomicfile.CreateIn(blobDir, ".blob-*", "", 0o644)
	if err != nil {
		return err
	}
	defer tmp.Abort()
	fo := newFanout(tmp)
	d, err := fill(fo)
	if ferr := fo.Close(); err == nil && ferr != nil {
		err = fmt.Errorf("%s: %w", tmp.Name(), ferr)
	}
	if err != nil {
		return err
	}
	return tmp.CommitAs(filepath.Join(blobDir, d.Encoded()))
}

// writeOCIDir writes e as a layout folder rel inside outDir: built in a
// temporary folder next to it, then swapped into place. A previous output
// is replaced only when it is an OCI layout (it holds oci-layout) or an
// empty folder; anything else is an error and stays untouched. The File
// returned is the layout's index.json, whose digest covers every blob.
func writeOCIDir(outDir, rel string, e *gen.Export, c *layercache.Cache, count nar.Counter) (File, error) {
	final := filepath.Join(outDir, filepath.FromSlash(rel))
	if err := checkReplaceable(final); err != nil {
		return File{}, err
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o777); err != nil {
		return File{}, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(final), "."+filepath.Base(final)+".tmp-*")
	if err != nil {
		return File{}, err
	}
	defer os.RemoveAll(tmp) // the new layout once moved, or the old one
	if err := os.Chmod(tmp, 0o755); err != nil {
		return File{}, err
	}
	if err := writeOCILayout(tmp, e, c, count); err != nil {
		return File{}, fmt.Errorf("%s: %w", final, err)
	}
	index, err := os.ReadFile(filepath.Join(tmp, "index.json"))
	if err != nil {
		return File{}, err
	}
	if err := swapDir(tmp, final); err != nil {
		return File{}, err
	}
	return File{Path: filepath.ToSlash(rel) + "/index.json", SHA256: digest.FromBytes(index).Encoded(), Size: int64(len(index))}, nil
}

// checkReplaceable fails when p exists and is not an OCI layout or an
// empty folder.
func checkReplaceable(p string) error {
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: exists and is not a folder; not replacing it with an OCI layout", p)
	}
	if _, err := os.Lstat(filepath.Join(p, "oci-layout")); err == nil {
		return nil
	}
	des, err := os.ReadDir(p)
	if err != nil {
		return err
	}
	if len(des) > 0 {
		return fmt.Errorf("%s: a folder that is not an OCI layout (no oci-layout file); not replacing it", p)
	}
	return nil
}

// swapDir moves the folder tmp to final. An existing final is exchanged
// with tmp in one step where the file system allows it (renameat2
// RENAME_EXCHANGE), else moved aside first; either way the old contents
// end up at tmp, which the caller removes.
func swapDir(tmp, final string) error {
	if _, err := os.Lstat(final); errors.Is(err, fs.ErrNotExist) {
		return os.Rename(tmp, final)
	}
	if err := exchange(tmp, final); err == nil {
		return nil
	}
	old := tmp + ".old"
	if err := os.Rename(final, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Rename(old, final)
		return err
	}
	return os.Rename(old, tmp)
}

// syncDir fsyncs a folder so that the names in it are durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	return nil
}

// writeOCIArchive writes e as an oci-archive (the layout as a tar) to w:
// the layout is built in a temporary folder inside tmpParent (each store
// file read once), then copied into the tar: oci-layout, "blobs/",
// "blobs/sha256/", the layer blobs in image order (the first image's from
// the bottom up, then the next images' not written yet), each starting at
// a multiple of 4096 bytes (resume.go), then the other blobs (configs,
// manifests, the image index) sorted by name, and index.json. Entries have
// the images' mtime, uid and gid 0, files 0644, folders 0755. With a layer
// cache, a re-export appends the unchanged first layer blobs without
// hashing them, as docker archives do.
func writeOCIArchive(w io.Writer, tmpParent string, e *gen.Export, c *layercache.Cache, count nar.Counter) error {
	tmp, err := os.MkdirTemp(tmpParent, ".oci-archive-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := writeOCILayout(tmp, e, c, count); err != nil {
		return err
	}
	mtime := e.Systems[0].Image.MTime
	af, _ := w.(*atomicFile)
	var start bytes.Buffer
	tw := tar.NewWriter(&start)
	if err := writeFile(tw, "oci-layout", []byte(LayoutVersion), mtime); err != nil {
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(outerHeader(d, 0, mtime)); err != nil {
			return err
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if _, err := w.Write(start.Bytes()); err != nil {
		return err
	}
	// The layer blobs, bottom first, resumable (resume.go).
	blobDir := filepath.Join(tmp, "blobs", "sha256")
	written := map[string]bool{}
	var chunks []fileChunk
	for i := range e.Systems {
		for _, l := range e.Systems[i].Image.Layers {
			name := l.Digest.Encoded()
			if written[name] {
				continue
			}
			written[name] = true
			p := filepath.Join(blobDir, name)
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			chunks = append(chunks, fileChunk{[]*tar.Header{outerHeader("blobs/sha256/"+name, fi.Size(), mtime)}, p, fi.Size(), l.Digest})
		}
	}
	key := archiveStart("oci archive", start.Bytes())
	off := int64(start.Len())
	first := 0
	if c != nil && af != nil {
		if first, key, err = resumeArchive(af, c, key, chunks); err != nil {
			return err
		}
		off = af.n
	}
	for _, ch := range chunks[first:] {
		head, err := alignedHead(ch.hdrs, off)
		if err != nil {
			return err
		}
		if err := writeChunk(w, head, ch.blob, ch.size); err != nil {
			return fmt.Errorf("%s: %w", ch.blob, err)
		}
		off += int64(len(head)) + ch.size + tarPad(ch.size)
		key = prefixKey(key, head, ch.d, ch.size)
		keepState(af, c, key)
	}
	// Then configs, manifests and the image index, sorted by name.
	des, err := os.ReadDir(blobDir) // sorted
	if err != nil {
		return err
	}
	tw = tar.NewWriter(w)
	for _, de := range des {
		if written[de.Name()] {
			continue
		}
		if err := copyIntoTar(tw, filepath.Join(blobDir, de.Name()), "blobs/sha256/"+de.Name(), mtime); err != nil {
			return err
		}
	}
	index, err := os.ReadFile(filepath.Join(tmp, "index.json"))
	if err != nil {
		return err
	}
	if err := writeFile(tw, "index.json", index, mtime); err != nil {
		return err
	}
	return tw.Close()
}

// copyIntoTar writes the file at p into tw as name.
func copyIntoTar(tw *tar.Writer, p, name string, mtime int64) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(outerHeader(name, fi.Size(), mtime)); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// cacheLayerBlob writes ul's blob into a new cache blob and returns its
// result and path; the path is "" when the cache could not keep it (the
// caller then writes the blob into the layout itself).
func cacheLayerBlob(c *layercache.Cache, ul uniqueLayer, compression format.Compression) (blobResult, string, error) {
	bw, err := c.NewBlob()
	if err != nil {
		return blobResult{}, "", nil
	}
	fo := newFanout(bw)
	r, err := writeLayerBlob(fo, ul, compression)
	if ferr := fo.Close(); err == nil && ferr != nil {
		// The cache's disk failed, not the layer: write it without.
		bw.Abort()
		return blobResult{}, "", nil
	}
	if err != nil {
		bw.Abort()
		return r, "", err
	}
	p, err := bw.Commit(r.digest)
	if err != nil {
		return blobResult{}, "", nil
	}
	return r, p, nil
}

// linkBlob puts the cached blob at p into blobDir as name; an existing
// file of that name (the same blob, from another layer) is kept.
func linkBlob(p, blobDir, name string) error {
	dst := filepath.Join(blobDir, name)
	if _, err := os.Lstat(dst); err == nil {
		return nil
	}
	if err := layercache.Link(p, dst); err != nil {
		return fmt.Errorf("%s: %w", dst, err)
	}
	return nil
}
