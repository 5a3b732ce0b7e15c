package binarycache

import (
	"fmt"
	"io"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/compress"
)

// newCompressor returns a writer that compresses a NAR of size bytes (0:
// unknown) into w as package compress does, one goroutine per NAR (the
// parallelism is across NARs); Close ends the compressed stream (it does
// not close w). The size fits zstd's window to a small NAR, so that
// encoders running at once hold little history.
func newCompressor(compression string, w io.Writer, size int64) (io.WriteCloser, error) {
	if !format.BinaryCache.Takes(format.Compression(compression)) {
		return nil, fmt.Errorf("unknown compression %q (want one of %q)", compression, format.BinaryCache.Def().Compressions)
	}
	return compress.NewWriter(w, format.Compression(compression), compress.Options{Size: size})
}

// newDecompressor returns a reader of the decompressed bytes of r and a
// function releasing its resources.
func newDecompressor(compression string, r io.Reader) (io.Reader, func(), error) {
	return compress.NewReader(r, format.Compression(compression))
}
