package export

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/export/image"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/base"
	"github.com/storepack/storepack/internal/layercache"
	"github.com/storepack/storepack/plan"
)

// openBaseBlob returns a reader of the layer blob b of the base ref:
// from the layer cache when it holds it, else from the base (registry,
// layout or archive), checked against its digest and size as it is read
// and, with a cache, kept there for the next export.
func openBaseBlob(ref string, b image.BaseBlob, insecure bool, c *layercache.Cache) (io.ReadCloser, error) {
	if c != nil {
		if p, ok := c.Blob(b.Digest, b.BlobSize); ok {
			return os.Open(p)
		}
	}
	rc, err := base.Open(ref, b.Digest, base.Options{Insecure: insecure})
	if err != nil {
		return nil, fmt.Errorf("base %s: layer %s: %w", ref, b.Digest, err)
	}
	v := &verifier{r: rc, want: b.Digest, size: b.BlobSize, h: sha256.New(), what: fmt.Sprintf("base %s: layer %s", ref, b.Digest)}
	if c == nil {
		return v, nil
	}
	bw, err := c.NewBlob()
	if err != nil {
		return v, nil // no cache: read from the base
	}
	if _, err := bw.ReadFrom(v); err != nil {
		bw.Abort()
		v.Close()
		return nil, err
	}
	v.Close()
	p, err := bw.Commit(b.Digest)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

// writeBaseBlobs puts the base layers of imgs into the layout blob folder
// blobDir, unchanged: linked from the layer cache, or copied from the
// base; then checks that each uncompresses to the diff id the base's
// config gives it (checkBaseDiffIDs), as docker archives do.
func writeBaseBlobs(blobDir string, imgs []*image.Image, insecure bool, c *layercache.Cache) error {
	if err := copyBaseBlobs(blobDir, imgs, insecure, c); err != nil {
		return err
	}
	return checkBaseDiffIDs(blobDir, imgs, c)
}

// checkBaseDiffIDs checks every base layer blob of imgs in blobDir
// against its diff id (base.CheckDiffID), but those the layer cache
// records as checked; it records those it checks.
func checkBaseDiffIDs(blobDir string, imgs []*image.Image, c *layercache.Cache) error {
	type pair struct{ blob, diffID digest.Digest }
	seen := map[pair]bool{}
	for _, img := range imgs {
		if img.Plan.Base == nil {
			continue
		}
		b := img.Plan.Base
		for _, l := range b.Layers {
			k := pair{l.Digest, l.DiffID}
			if seen[k] || c != nil && c.DiffID(l.Digest, l.DiffID) {
				continue
			}
			seen[k] = true
			f, err := os.Open(filepath.Join(blobDir, l.Digest.Encoded()))
			if err != nil {
				return fmt.Errorf("base %s: layer %s: %w", b.Ref, l.Digest, err)
			}
			err = base.CheckDiffID(bufio.NewReaderSize(f, 1<<20), l, fmt.Sprintf("base %s: layer %s", b.Ref, l.Digest))
			f.Close()
			if err != nil {
				return err
			}
			if c != nil {
				c.PutDiffID(l.Digest, l.DiffID)
			}
		}
	}
	return nil
}

// copyBaseBlobs puts the base layer blobs of imgs into blobDir.
func copyBaseBlobs(blobDir string, imgs []*image.Image, insecure bool, c *layercache.Cache) error {
	seen := map[digest.Digest]bool{}
	for _, img := range imgs {
		for _, b := range img.BaseBlobs {
			if seen[b.Digest] {
				continue
			}
			seen[b.Digest] = true
			if c != nil {
				if p, ok := c.Blob(b.Digest, b.BlobSize); ok {
					if err := linkBlob(p, blobDir, b.Digest.Encoded()); err != nil {
						return err
					}
					continue
				}
			}
			rc, err := openBaseBlob(img.Plan.Base.Ref, b, insecure, c)
			if err != nil {
				return err
			}
			err = writeBlobFile(blobDir, func(w io.Writer) (digest.Digest, error) {
				_, err := io.Copy(w, rc)
				return b.Digest, err
			})
			rc.Close()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// verifier reads a blob and fails at its end unless it had the digest
// and size expected.
type verifier struct {
	r    io.ReadCloser
	want digest.Digest
	size int64
	n    int64
	h    hash.Hash
	what string
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.size {
		return n, fmt.Errorf("%s: more than its %d bytes", v.what, v.size)
	}
	if err == io.EOF {
		if got := digest.NewDigest(digest.SHA256, v.h); v.n != v.size || got != v.want {
			return n, fmt.Errorf("%s: read %d bytes of digest %s, want %d bytes of %s", v.what, v.n, got, v.size, v.want)
		}
	}
	return n, err
}

func (v *verifier) Close() error { return v.r.Close() }

// dockerBaseTar is the uncompressed tar of the base layer l of ref, as a
// file: a docker archive holds layers as tars. It comes from the layer
// cache (kept there by its diff id), else is decompressed from the base's
// blob (itself through the cache), checked against the diff id
// (base.Uncompressed, the rule OCI exports follow too). remove
// deletes a temporary file when there is no cache.
func dockerBaseTar(ref string, l plan.BaseLayer, insecure bool, c *layercache.Cache) (path string, size int64, remove func(), err error) {
	if c != nil {
		p := c.BlobPath(l.DiffID)
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
			return p, fi.Size(), func() {}, nil
		}
	}
	rc, err := openBaseBlob(ref, image.BaseBlob{Blob: image.Blob{Digest: l.Digest, BlobSize: l.Size}, MediaType: l.MediaType}, insecure, c)
	if err != nil {
		return "", 0, nil, err
	}
	defer rc.Close()
	tee, done, err := base.Uncompressed(rc, l, fmt.Sprintf("base %s: layer %s", ref, l.Digest))
	if err != nil {
		return "", 0, nil, err
	}
	defer done()
	// tee fails at the end of a tar that is not l.DiffID.
	if c != nil {
		if bw, err := c.NewBlob(); err == nil {
			n, err := bw.ReadFrom(tee)
			if err != nil {
				bw.Abort()
				return "", 0, nil, err
			}
			p, err := bw.Commit(l.DiffID)
			return p, n, func() {}, err
		}
	}
	f, err := os.CreateTemp("", "storepack-base-layer-*")
	if err != nil {
		return "", 0, nil, err
	}
	n, err := io.Copy(f, tee)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", 0, nil, err
	}
	return f.Name(), n, func() { os.Remove(f.Name()) }, nil
}

// layerCompression is the compression of a layer media type.
func layerCompression(mt string) format.Compression { return base.LayerCompression(mt) }
