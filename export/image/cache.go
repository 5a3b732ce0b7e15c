package image

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/compress"
	"github.com/storepack/storepack/internal/fanout"
	"github.com/storepack/storepack/internal/layercache"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store/nar"
)

// Layers in the layer cache (package layercache): a layer's key hashes
// everything its blob's bytes depend on (key), the cache keeps its record
// (Blob) and blob under it. Every function here takes a nil cache as none.

// layerFormat names the version of the layer tar encoding (package tree):
// part of every cache key, so that a change to the encoding never reuses
// blobs encoded the old way. Bump it with any change to a layer's bytes.
const layerFormat = "storepack layer tar 1"

// key is the cache key of l's blob compressed as compression: everything
// its bytes depend on.
func key(l Layer, compression format.Compression) layercache.Key {
	parts := []string{layerFormat, "go " + runtime.Version(), "mtime " + strconv.FormatInt(l.MTime, 10),
		"compression " + compress.Settings(compression, layerCompression) + lazySettings(compression)}
	k, err := layercache.KeyOf(append(parts, plan.LayerInputs(l.Plan, l.Items)...)...)
	if err != nil {
		// No part holds a newline: %q quotes paths and targets.
		panic(err)
	}
	return k
}

// Cached is a layer the cache already has: its blob's record, and the
// blob's path when the caller asked for the bytes and the cache holds them.
type Cached struct {
	Blob Blob
	// Path is the cached blob file, or "".
	Path string
}

// Lookup finds l's blob compressed as compression in c; withBlob also
// requires the blob's bytes. It returns l's key in any case (but "" when c
// is nil).
func Lookup(c *layercache.Cache, l Layer, compression format.Compression, withBlob bool) (Cached, layercache.Key, bool) {
	if c == nil {
		return Cached{}, "", false
	}
	k := key(l, compression)
	rec, ok := c.Get(k)
	if !ok {
		return Cached{}, k, false
	}
	hit := Cached{Blob: Blob{DiffID: rec.DiffID, Size: rec.Size, Digest: rec.Digest, BlobSize: rec.BlobSize, Annotations: rec.Annotations}}
	if !withBlob {
		return hit, k, true
	}
	p, ok := c.Blob(rec.Digest, rec.BlobSize)
	if !ok {
		return Cached{}, k, false
	}
	hit.Path = p
	return hit, k, true
}

// Remember keeps in c what building a layer found, under its key k.
// Failing to write the cache never fails an export: the record is simply
// not kept.
func Remember(c *layercache.Cache, k layercache.Key, b Blob) {
	if c == nil || k == "" {
		return
	}
	c.Put(layercache.Record{Key: k, DiffID: b.DiffID, Size: b.Size, Digest: b.Digest, BlobSize: b.BlobSize, Annotations: b.Annotations})
}

// Tee writes a blob's bytes into a new cache blob as well, best effort:
// after a write error it drops the blob and passes writes on untouched. A
// nil *Tee does nothing.
type Tee struct {
	bw  *layercache.BlobWriter
	fo  *fanout.Writer
	err error
}

// NewTee starts a cache blob in c; nil when c is nil or the blob cannot be
// started.
func NewTee(c *layercache.Cache) *Tee {
	if c == nil {
		return nil
	}
	bw, err := c.NewBlob()
	if err != nil {
		return nil
	}
	return &Tee{bw: bw, fo: fanout.New(bw)}
}

// Write takes p for the cache blob; it never fails.
func (t *Tee) Write(p []byte) (int, error) {
	if t.err == nil {
		if _, err := t.fo.Write(p); err != nil {
			t.err = err
		}
	}
	return len(p), nil
}

// Finish keeps the blob under its digest d and returns its path, or ""
// when it could not be kept; with ok false it drops it.
func (t *Tee) Finish(d Blob, ok bool) string {
	if t == nil {
		return ""
	}
	if err := t.fo.Close(); err != nil && t.err == nil {
		t.err = err
	}
	if !ok || t.err != nil {
		t.bw.Abort()
		return ""
	}
	p, err := t.bw.Commit(d.Digest)
	if err != nil {
		return ""
	}
	return p
}

// CacheBlob writes l's blob into a new cache blob and returns it and its
// path; the path is "" when the cache could not keep it (the caller then
// writes the blob itself).
func CacheBlob(c *layercache.Cache, l Layer, compression format.Compression, count nar.Counter) (Blob, string, error) {
	bw, err := c.NewBlob()
	if err != nil {
		return Blob{}, "", nil
	}
	fo := fanout.New(bw)
	b, err := l.WriteBlob(fo, compression, count)
	if ferr := fo.Close(); err == nil && ferr != nil {
		// The cache's disk failed, not the layer: write it without.
		bw.Abort()
		return Blob{}, "", nil
	}
	if err != nil {
		bw.Abort()
		return b, "", err
	}
	p, err := bw.Commit(b.Digest)
	if err != nil {
		return Blob{}, "", nil
	}
	return b, p, nil
}

// copyBlob copies the cached blob at p, which must hold size bytes, to w.
func copyBlob(w io.Writer, p string, size int64) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("layer cache: %w", err)
	}
	defer f.Close()
	n, err := io.CopyBuffer(struct{ io.Writer }{w}, io.LimitReader(f, size), make([]byte, 1<<20))
	if err != nil {
		return fmt.Errorf("layer cache: %s: %w", p, err)
	}
	if n != size {
		return fmt.Errorf("layer cache: %s: %d bytes, %d expected: the cached blob changed while being read; export again, or with --no-cache", p, n, size)
	}
	return nil
}
