package binarycache

import (
	"compress/bzip2"
	"compress/gzip"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// nopCloser is an io.WriteCloser whose Close does nothing.
type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// newCompressor returns a writer that compresses into w; Close ends the
// compressed stream (it does not close w). The output depends only on the
// bytes written: one encoder goroutine, fixed settings (xz: LZMA2 with an
// 8 MiB dictionary and a CRC64 check, as xz -6; zstd: the default level).
func newCompressor(compression string, w io.Writer) (io.WriteCloser, error) {
	switch compression {
	case CompressionXZ:
		return xz.WriterConfig{}.NewWriter(w)
	case CompressionZstd:
		return zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
	case CompressionNone:
		return nopCloser{w}, nil
	}
	return nil, fmt.Errorf("unknown compression %q (want xz, zstd or none)", compression)
}

// newDecompressor returns a reader of the decompressed bytes of r and a
// function releasing its resources.
func newDecompressor(compression string, r io.Reader) (io.Reader, func(), error) {
	switch compression {
	case CompressionXZ:
		xr, err := xz.NewReader(r)
		return xr, func() {}, err
	case CompressionZstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	case CompressionNone:
		return r, func() {}, nil
	case "bzip2":
		return bzip2.NewReader(r), func() {}, nil
	case "gzip":
		gr, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, err
		}
		return gr, func() { gr.Close() }, nil
	}
	return nil, nil, fmt.Errorf("cannot read the compression %q", compression)
}
