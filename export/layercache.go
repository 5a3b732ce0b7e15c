package export

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/layercache"
	"github.com/storepack/storepack/progress"
)

// Options are the settings of WriteWith and DigestLayersWith.
type Options struct {
	// Cache, when not nil, supplies layers already built by earlier
	// exports (their diff ids, sizes, digests and blobs) and keeps the
	// layers built now: see docs/cache.md. Outputs are byte-identical with
	// and without it.
	Cache *layercache.Cache
	// Progress, when not nil, is told when each export begins and ends,
	// with its totals (Totals), and given the bytes and store items done
	// as its store files are read: see docs/progress.md.
	Progress progress.Reporter
}

// layerFormat names the version of storepack's layer tar encoding
// (export/layer.go): part of every cache key, so that a change to the
// encoding never reuses blobs encoded the old way. Bump it with any change
// to a layer's bytes.
const layerFormat = "storepack layer tar 1"

var (
	compressVersionOnce sync.Once
	compressVersion     string
)

// compressModuleVersion is the version of klauspost/compress built in,
// which fixes the bytes of gzip and zstd blobs.
func compressModuleVersion() string {
	compressVersionOnce.Do(func() {
		compressVersion = "unknown"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, m := range bi.Deps {
				if m.Path == "github.com/klauspost/compress" {
					compressVersion = m.Version
					if m.Replace != nil {
						compressVersion = m.Replace.Path + "@" + m.Replace.Version
					}
				}
			}
		}
	})
	return compressVersion
}

// cacheKey is the key of ul's blob compressed as compression: everything
// its bytes depend on. ok is false when an item has no NAR hash (its
// contents are then not pinned, and the layer is not cached).
func cacheKey(ul uniqueLayer, compression format.Compression) (layercache.Key, bool) {
	parts := []string{layerFormat, "go " + runtime.Version(), "mtime " + strconv.FormatInt(ul.mtime, 10), "compression " + string(compression)}
	switch compression {
	case format.Gzip:
		parts = append(parts, fmt.Sprintf("gzip level %d klauspost/compress %s", gzipLevel, compressModuleVersion()))
	case format.Zstd:
		parts = append(parts, "zstd default level window 8MiB crc single-goroutine klauspost/compress "+compressModuleVersion())
	}
	for _, e := range ul.layer.Entries {
		parts = append(parts, fmt.Sprintf("entry %s %04o %q %q", e.Type, uint32(e.Mode), e.Path, e.Target))
	}
	for _, p := range ul.layer.Items {
		h := ul.narHashes[p]
		if len(h) < len("sha256:")+1 || h[:len("sha256:")] != "sha256:" {
			return "", false
		}
		parts = append(parts, fmt.Sprintf("item %q %s", string(p), h))
	}
	k, err := layercache.KeyOf(parts...)
	return k, err == nil
}

// cached is a layer the cache already has: its record, and the blob's path
// when the caller needs the bytes and the cache holds them.
type cached struct {
	rec  layercache.Record
	blob string
}

// lookup finds ul's layer compressed as compression in c; withBlob also
// requires the blob. c may be nil.
func lookup(c *layercache.Cache, ul uniqueLayer, compression format.Compression, withBlob bool) (cached, layercache.Key, bool) {
	if c == nil {
		return cached{}, "", false
	}
	k, ok := cacheKey(ul, compression)
	if !ok {
		return cached{}, "", false
	}
	rec, ok := c.Get(k)
	if !ok {
		return cached{}, k, false
	}
	if !withBlob {
		return cached{rec: rec}, k, true
	}
	p, ok := c.Blob(rec.Digest, rec.BlobSize)
	if !ok {
		return cached{}, k, false
	}
	return cached{rec, p}, k, true
}

// remember stores what building ul's layer found. Failing to write the
// cache never fails an export: the record is simply not kept.
func remember(c *layercache.Cache, k layercache.Key, r blobResult) {
	if c == nil || k == "" {
		return
	}
	c.Put(layercache.Record{Key: k, DiffID: r.diffID, Size: r.size, Digest: r.digest, BlobSize: r.blobSize})
}

func (ch cached) result() blobResult {
	return blobResult{ch.rec.DiffID, ch.rec.Size, ch.rec.Digest, ch.rec.BlobSize}
}

// cacheBlobWriter tees a layer's bytes into a new cache blob, best effort:
// after a write error it drops the blob and passes writes on untouched.
type cacheBlobWriter struct {
	bw  *layercache.BlobWriter
	fo  *fanout
	err error
}

func newCacheBlobWriter(c *layercache.Cache) *cacheBlobWriter {
	if c == nil {
		return nil
	}
	bw, err := c.NewBlob()
	if err != nil {
		return nil
	}
	return &cacheBlobWriter{bw: bw, fo: newFanout(bw)}
}

func (cw *cacheBlobWriter) Write(p []byte) (int, error) {
	if cw.err == nil {
		if _, err := cw.fo.Write(p); err != nil {
			cw.err = err
		}
	}
	return len(p), nil
}

// commit keeps the blob under its digest and returns its path, or "" when
// it could not be kept; abort (ok false) drops it.
func (cw *cacheBlobWriter) finish(r blobResult, ok bool) string {
	if cw == nil {
		return ""
	}
	if err := cw.fo.Close(); err != nil && cw.err == nil {
		cw.err = err
	}
	if !ok || cw.err != nil {
		cw.bw.Abort()
		return ""
	}
	p, err := cw.bw.Commit(r.digest)
	if err != nil {
		return ""
	}
	return p
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
