package export

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/base"
	"github.com/storepack/storepack/image"
	"github.com/storepack/storepack/layercache"
)

// openBaseBlob returns a reader of the base layer blob b of img's base:
// from the layer cache when it holds it, else from the base (registry,
// layout or archive), checked against its digest and size as it is read
// and, with a cache, kept there for the next export.
func openBaseBlob(img *image.Image, b image.BaseBlob, insecure bool, c *layercache.Cache) (io.ReadCloser, error) {
	if c != nil {
		if p, ok := c.Blob(b.Digest, b.BlobSize); ok {
			return os.Open(p)
		}
	}
	rc, err := base.Open(img.Plan.Base.Ref, b.Digest, base.Options{Insecure: insecure})
	if err != nil {
		return nil, fmt.Errorf("base %s: layer %s: %w", img.Plan.Base.Ref, b.Digest, err)
	}
	v := &verifier{r: rc, want: b.Digest, size: b.BlobSize, h: sha256.New(), what: fmt.Sprintf("base %s: layer %s", img.Plan.Base.Ref, b.Digest)}
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
// base.
func writeBaseBlobs(blobDir string, imgs []*image.Image, insecure bool, c *layercache.Cache) error {
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
			rc, err := openBaseBlob(img, b, insecure, c)
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
