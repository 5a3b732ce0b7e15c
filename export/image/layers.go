package image

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	digest "github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/export/tree"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/compress"
	"github.com/storepack/storepack/internal/fanout"
	"github.com/storepack/storepack/internal/layercache"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/nar"
)

// Layer is a layer of an export's images with what writing it needs: its
// plan, the images' mtime, and the items of the closure it comes from.
type Layer struct {
	Plan  *plan.Layer
	MTime int64
	Items map[store.Path]*plan.Item
	// db makes the store database once for the layer that holds it, for
	// Size and WriteTar both; nil for a Layer not made by Layers.
	db func() (tree.Source, error)
}

// Layers lists the distinct layers of e's images (by ID) in image order:
// the first image's layers from the bottom up, then the layers of the next
// images not listed yet. Archives hold them in this order, so that the
// layers that change least often come first.
func Layers(e *plan.Export) []Layer {
	seen := map[string]bool{}
	var out []Layer
	for i := range e.Systems {
		sys := &e.Systems[i]
		if sys.Image == nil {
			continue
		}
		items := plan.Items(sys.Closure)
		for j := range sys.Image.Layers {
			l := &sys.Image.Layers[j]
			if seen[l.ID] {
				continue
			}
			seen[l.ID] = true
			layer := Layer{Plan: l, MTime: sys.Image.MTime(), Items: items}
			layer.db = sync.OnceValues(func() (tree.Source, error) {
				return tree.Source{Items: items}.WithDB(&l.Tree, sys.Image.MTime())
			})
			out = append(out, layer)
		}
	}
	return out
}

// Totals is the work of writing e's images: the NAR bytes and the number
// of the items of each distinct layer (an item in two differently grouped
// layers is read twice). Progress shows the work done against them.
func Totals(e *plan.Export) (bytes, items int64) {
	for _, l := range Layers(e) {
		for _, p := range l.Plan.Items {
			bytes += l.Items[p].NarSize
			items++
		}
	}
	return bytes, items
}

// Check checks that every system of e has an image with layers and that
// the images share one mtime and one compression (they do: both are set
// per export), and returns them.
func Check(e *plan.Export) (mtime int64, compression format.Compression, err error) {
	if len(e.Systems) == 0 {
		return 0, "", fmt.Errorf("export %q has no system", e.Name)
	}
	for i := range e.Systems {
		img := e.Systems[i].Image
		if img == nil {
			return 0, "", fmt.Errorf("export %q, system %s: no image plan", e.Name, e.Systems[i].Name)
		}
		if len(img.Layers) == 0 {
			return 0, "", fmt.Errorf("export %q, system %s: the image has no layer", e.Name, e.Systems[i].Name)
		}
		first := e.Systems[0].Image
		if img.MTime() != first.MTime() {
			return 0, "", fmt.Errorf("export %q: systems %s and %s have different creation times", e.Name, e.Systems[0].Name, e.Systems[i].Name)
		}
		if img.Compression != first.Compression {
			return 0, "", fmt.Errorf("export %q: systems %s and %s have different compressions", e.Name, e.Systems[0].Name, e.Systems[i].Name)
		}
	}
	compression = e.Systems[0].Image.Compression
	if compression == "" {
		compression = format.None
	}
	return e.Systems[0].Image.MTime(), compression, nil
}

// Images gives each system of e its image, from the blobs of its layers
// by layer ID, as a Set: the images of OCI layouts and archives and of
// pushes, whose base layers are the base's blobs, unchanged.
func Images(e *plan.Export, blobs map[string]Blob) (*Set, error) {
	return images(e, blobs, nil, false)
}

// DockerImages is Images for docker archives, which hold the base's
// layers as uncompressed tars: base maps a base blob's digest to the tar
// that stands for it. The images are marked Docker.
func DockerImages(e *plan.Export, blobs map[string]Blob, base map[digest.Digest]BaseBlob) (*Set, error) {
	return images(e, blobs, base, true)
}

// images is Images and DockerImages.
func images(e *plan.Export, blobs map[string]Blob, base map[digest.Digest]BaseBlob, docker bool) (*Set, error) {
	imgs := make([]*Image, 0, len(e.Systems))
	for i := range e.Systems {
		p := e.Systems[i].Image
		bs := make([]Blob, len(p.Layers))
		for j, l := range p.Layers {
			b, ok := blobs[l.ID]
			if !ok {
				return nil, fmt.Errorf("image %s: layer %s was not written", p.Tag, l.ID)
			}
			bs[j] = b
		}
		img, err := newImage(p, bs, base, docker)
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, img)
	}
	return newSet(e, imgs)
}

// source is where l's items are read from, counted on c, with the store
// database of the closure when the layer holds it (made once per layer).
func (l Layer) source(c nar.Counter) (tree.Source, error) {
	if l.db != nil {
		src, err := l.db()
		src.Counter = c
		return src, err
	}
	return tree.Source{Items: l.Items, Counter: c}.WithDB(&l.Plan.Tree, l.MTime)
}

// Size is the length of l's tar, from the items' metadata alone.
func (l Layer) Size() (int64, error) {
	src, err := l.source(nil)
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", l.Plan.ID, err)
	}
	n, err := tree.Size(&l.Plan.Tree, l.MTime, src)
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", l.Plan.ID, err)
	}
	return n, nil
}

// WriteTar writes l's tar to w, counting its items on c (which may be
// nil), and returns its diff id (the tar's sha256) and length, computed
// while writing.
func (l Layer) WriteTar(w io.Writer, c nar.Counter) (digest.Digest, int64, error) {
	src, err := l.source(c)
	if err != nil {
		return "", 0, fmt.Errorf("layer %s: %w", l.Plan.ID, err)
	}
	dw := newDigestWriter(w)
	if _, err := tree.WriteTar(dw, &l.Plan.Tree, l.MTime, src); err != nil {
		return "", 0, fmt.Errorf("layer %s: %w", l.Plan.ID, err)
	}
	return dw.digest(), dw.n, nil
}

// WriteBlob writes l's blob, its tar compressed as compression says, to w,
// computing the diff id and the blob digest in the same pass, and counting
// the items on c (which may be nil). zstd:chunked and eStargz blobs
// (lazy.go) carry annotations for their manifest descriptors. Compression runs in a goroutine of
// its own, fed through a fanout, so that it overlaps reading and hashing
// the tar.
func (l Layer) WriteBlob(w io.Writer, compression format.Compression, c nar.Counter) (Blob, error) {
	if compression == "" || compression == format.None {
		id, n, err := l.WriteTar(w, c)
		return Blob{DiffID: id, Size: n, Digest: id, BlobSize: n}, err
	}
	if compression == format.ZstdChunked || compression == format.Estargz {
		return l.writeLazy(w, compression, c)
	}
	dw := newDigestWriter(w)
	cw, err := compress.NewWriter(dw, compression, layerCompression)
	if err != nil {
		return Blob{}, err
	}
	fo := fanout.New(cw)
	id, n, err := l.WriteTar(fo, c)
	ferr := fo.Close()
	cerr := cw.Close()
	for _, e := range []error{err, ferr, cerr} {
		if e != nil {
			return Blob{}, fmt.Errorf("layer %s: %w", l.Plan.ID, e)
		}
	}
	return Blob{DiffID: id, Size: n, Digest: dw.digest(), BlobSize: dw.n}, nil
}

// Skipped counts on c (which may be nil) l's items done without reading
// them (a cached layer): their whole NAR sizes.
func (l Layer) Skipped(c nar.Counter) {
	if c == nil {
		return
	}
	var bytes int64
	for _, p := range l.Plan.Items {
		bytes += l.Items[p].NarSize
	}
	c.Done(int64(len(l.Plan.Items)), bytes)
}

// layerCompression is how layer blobs are compressed: one goroutine per
// layer (the parallelism is across layers). A change changes every
// compressed layer's bytes.
var layerCompression = compress.Options{}

// Each runs do for every layer of layers, up to GOMAXPROCS at once, and
// collects the blobs by layer ID. The first error stops the layers not yet
// started and is returned. Every layer's bytes depend only on its plan and
// compression, so the results are the same whatever the parallelism.
func Each(layers []Layer, do func(l Layer) (Blob, error)) (map[string]Blob, error) {
	workers := min(runtime.GOMAXPROCS(0), len(layers))
	var (
		mu      sync.Mutex
		results = make(map[string]Blob, len(layers))
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
				l := layers[next]
				next++
				mu.Unlock()
				r, err := do(l)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				results[l.Plan.ID] = r
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return results, first
}

// SizeResult is a layer's length, or why it has none.
type SizeResult struct {
	Size int64
	Err  error
}

// SizesAhead computes the layers' lengths (Layer.Size, file metadata only)
// in a goroutine, in order, so that the walk for one layer overlaps the
// streaming of the ones before it: results[i] receives layer i's. stop
// makes it end after the layer it is on.
func SizesAhead(layers []Layer) (results []chan SizeResult, stop func()) {
	results = make([]chan SizeResult, len(layers))
	for i := range results {
		results[i] = make(chan SizeResult, 1)
	}
	var stopped atomic.Bool
	go func() {
		for i, l := range layers {
			if stopped.Load() {
				return
			}
			n, err := l.Size()
			results[i] <- SizeResult{n, err}
		}
	}()
	return results, func() { stopped.Store(true) }
}

// Digest computes the blobs of e's images by streaming (and compressing)
// every layer into the hashes only (DigestBlobs), and returns each
// system's image (Images): what pushing needs before any blob is written.
func Digest(e *plan.Export, c *layercache.Cache) (*Set, error) {
	blobs, err := DigestBlobs(e, c)
	if err != nil {
		return nil, err
	}
	return Images(e, blobs)
}

// DigestBlobs computes the blobs of e's layers (by layer ID) by streaming
// (and compressing) every layer into the hashes only: what planning and
// pushing need before any blob is written. With a cache (c not nil), the
// layers it has records of are not read at all, and the records of the
// others are kept (without their blobs, which nothing writes).
func DigestBlobs(e *plan.Export, c *layercache.Cache) (map[string]Blob, error) {
	_, compression, err := Check(e)
	if err != nil {
		return nil, err
	}
	blobs, err := Each(Layers(e), func(l Layer) (Blob, error) {
		hit, k, ok := Lookup(c, l, compression, false)
		if ok {
			return hit.Blob, nil
		}
		b, err := l.WriteBlob(io.Discard, compression, nil)
		if err == nil {
			Remember(c, k, b)
		}
		return b, err
	})
	if err != nil {
		return nil, err
	}
	return blobs, nil
}

// digestWriter passes writes on while hashing and counting them.
type digestWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func newDigestWriter(w io.Writer) *digestWriter { return &digestWriter{w: w, h: sha256.New()} }

func (d *digestWriter) Write(p []byte) (int, error) {
	n, err := d.w.Write(p)
	d.h.Write(p[:n])
	d.n += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return n, err
}

func (d *digestWriter) digest() digest.Digest { return digest.NewDigest(digest.SHA256, d.h) }
