package binarycache

import (
	"fmt"
	"io"

	"github.com/storepack/storepack/compress"
	"github.com/storepack/storepack/format"
)

// newCompressor returns a writer that compresses NARs into w as package
// compress does, one goroutine per NAR (the parallelism is across NARs);
// Close ends the compressed stream (it does not close w).
func newCompressor(compression string, w io.Writer) (io.WriteCloser, error) {
	if !format.BinaryCache.Takes(format.Compression(compression)) {
		return nil, fmt.Errorf("unknown compression %q (want one of %q)", compression, format.BinaryCache.Def().Compressions)
	}
	return compress.NewWriter(w, format.Compression(compression), compress.Options{})
}

// newDecompressor returns a reader of the decompressed bytes of r and a
// function releasing its resources.
func newDecompressor(compression string, r io.Reader) (io.Reader, func(), error) {
	return compress.NewReader(r, format.Compression(compression))
}
