package binarycache

import (
	"compress/bzip2"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/compress"
)

// WriteCompressions are the compressions a cache written here gives its
// NARs, the default (xz, as Nix) first: what the binary-cache format's
// compression attribute takes.
var WriteCompressions = []format.Compression{CompressionXZ, CompressionZstd, CompressionNone}

// newCompressor returns a writer that compresses a NAR of size bytes (0:
// unknown) into w as package compress does, one goroutine per NAR (the
// parallelism is across NARs); Close ends the compressed stream (it does
// not close w). The size fits zstd's window to a small NAR, so that
// encoders running at once hold little history.
func newCompressor(compression string, w io.Writer, size int64) (io.WriteCloser, error) {
	if !slices.Contains(WriteCompressions, format.Compression(compression)) {
		return nil, fmt.Errorf("unknown compression %q (want one of %q)", compression, WriteCompressions)
	}
	return compress.NewWriter(w, format.Compression(compression), compress.Options{Size: size})
}

// NewDecompressor returns a reader of the decompressed bytes of r, a NAR
// file compressed as a narinfo's Compression field says, and a function
// releasing its resources: xz, zstd, none, bzip2 or gzip (bzip2 read here,
// the others by package compress). br, which a narinfo may also name, is
// an error.
func NewDecompressor(compression string, r io.Reader) (io.Reader, func(), error) {
	return NewDecompressorSize(compression, r, 0)
}

// NewDecompressorSize is NewDecompressor for a NAR of narSize bytes (0:
// unknown): the decompressor holds no more memory than such a NAR needs,
// whatever the compressed stream's headers claim (an xz dictionary is
// capped: compress.NewReaderSize). It does not stop at narSize: callers
// bound what they read (bounded.Reader).
func NewDecompressorSize(compression string, r io.Reader, narSize int64) (io.Reader, func(), error) {
	switch {
	case compression == "bzip2":
		return bzip2.NewReader(r), func() {}, nil
	case !slices.Contains(compressions(true), compression):
		return nil, nil, fmt.Errorf("a NAR compressed with %q, which storepack cannot read (%s)", compression, strings.Join(compressions(true), ", "))
	}
	return compress.NewReaderSize(r, format.Compression(compression), narSize)
}
