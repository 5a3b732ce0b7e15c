package binarycache

import (
	"fmt"
	"io"
	"slices"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/compress"
)

// newCompressor returns a writer that compresses a NAR of size bytes (0:
// unknown) into w as package compress does, one goroutine per NAR (the
// parallelism is across NARs); Close ends the compressed stream (it does
// not close w). The size fits zstd's window to a small NAR, so that
// encoders running at once hold little history.
// WriteCompressions are the compressions a cache written here gives its
// NARs, the default (xz, as Nix) first.
var WriteCompressions = []format.Compression{format.XZ, format.Zstd, format.None}

func newCompressor(compression string, w io.Writer, size int64) (io.WriteCloser, error) {
	if !slices.Contains(WriteCompressions, format.Compression(compression)) {
		return nil, fmt.Errorf("unknown compression %q (want one of %q)", compression, WriteCompressions)
	}
	return compress.NewWriter(w, format.Compression(compression), compress.Options{Size: size})
}

// newDecompressor returns a reader of the decompressed bytes of r and a
// function releasing its resources.
func newDecompressor(compression string, r io.Reader) (io.Reader, func(), error) {
	return compress.NewReader(r, format.Compression(compression))
}
