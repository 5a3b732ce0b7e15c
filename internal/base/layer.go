package base

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/bounded"
	"github.com/storepack/storepack/internal/compress"
	"github.com/storepack/storepack/plan"
)

// LayerLimit is the most bytes the tar of a base layer whose blob has
// size bytes may hold (size 0: unknown, an uncompressed layer of an
// archive): bounded.LayerExpansion times the blob and bounded.LayerSlack
// more. A compressed stream that expands past it is stopped before it
// fills a disk or the layer cache.
func LayerLimit(size int64) int64 {
	return size*bounded.LayerExpansion + limitSlack
}

// limitSlack is bounded.LayerSlack, which tests lower.
var limitSlack int64 = bounded.LayerSlack

// Uncompressed returns a reader of the tar of the base layer l, from its
// blob: decompressed as l's media type says, stopped past LayerLimit,
// and failing at its end unless the tar's sha256 is l.DiffID, the diff
// id the base's config gives it. This is the one rule by which every
// export that carries a base layer knows it holds what the config says
// (docker archives decompress it; OCI layouts check it). Errors start
// with what, which names the layer. done releases the decompressor.
func Uncompressed(blob io.Reader, l plan.BaseLayer, what string) (r io.Reader, done func(), err error) {
	dr, done, err := compress.NewReader(blob, LayerCompression(l.MediaType))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	return &diffIDReader{r: &bounded.Reader{R: dr, Limit: LayerLimit(l.Size), What: "its tar"}, l: l, h: sha256.New(), what: what}, done, nil
}

// CheckDiffID reads the blob of the base layer l to its end and checks
// that its tar is l.DiffID (Uncompressed).
func CheckDiffID(blob io.Reader, l plan.BaseLayer, what string) error {
	r, done, err := Uncompressed(blob, l, what)
	if err != nil {
		return err
	}
	defer done()
	_, err = io.Copy(io.Discard, r)
	return err
}

// diffIDReader hashes a layer's tar and checks its diff id at the end.
type diffIDReader struct {
	r    io.Reader
	l    plan.BaseLayer
	h    hash.Hash
	what string
}

func (d *diffIDReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.h.Write(p[:n])
	if err == io.EOF {
		if got := digest.NewDigest(digest.SHA256, d.h); got != d.l.DiffID {
			return n, fmt.Errorf("%s uncompresses to %s, but the base's config gives it the diff id %s", d.what, got, d.l.DiffID)
		}
	}
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%s: %w", d.what, err)
	}
	return n, err
}

// LayerCompression is the compression of a layer media type.
func LayerCompression(mt string) format.Compression {
	switch {
	case strings.HasSuffix(mt, "+gzip"):
		return format.Gzip
	case strings.HasSuffix(mt, "+zstd"):
		return format.Zstd
	}
	return format.None
}
