package compress

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/storepack/storepack/format"
)

// Block compresses independent blocks, as squashfs stores its data and
// metadata: each block is a stream of its own, decompressed alone.
//
//   - gzip: a zlib stream (what squashfs calls gzip), level 6.
//   - zstd: a zstd frame, the default level, a window no larger than the
//     block (the kernel sizes its workspace by the block size).
//   - xz: an xz stream with a CRC32 check and a dictionary of the block
//     size (the kernel's decoder knows no CRC64, and allocates the
//     dictionary by the block size).
//
// Compress may be called from several goroutines at once; its output
// depends only on its input.
type Block struct {
	c         format.Compression
	blockSize int
	zlibs     sync.Pool
	zstd      *zstd.Encoder
}

// NewBlock returns the block compressor for c, for blocks of at most
// blockSize bytes (a power of two of at least 4096).
func NewBlock(c format.Compression, blockSize int) (*Block, error) {
	if blockSize < 4096 || blockSize&(blockSize-1) != 0 {
		return nil, fmt.Errorf("block size %d: not a power of two of at least 4096", blockSize)
	}
	b := &Block{c: c, blockSize: blockSize}
	switch c {
	case format.Gzip, format.XZ:
	case format.Zstd:
		enc, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithWindowSize(blockSize),
			zstd.WithEncoderCRC(false),
		)
		if err != nil {
			return nil, err
		}
		b.zstd = enc
	default:
		return nil, fmt.Errorf("unknown block compression %q", c)
	}
	return b, nil
}

// Compress appends the compressed src to dst.
func (b *Block) Compress(dst, src []byte) ([]byte, error) {
	switch b.c {
	case format.Gzip:
		buf := bytes.NewBuffer(dst)
		zw, _ := b.zlibs.Get().(*zlib.Writer)
		if zw == nil {
			var err error
			if zw, err = zlib.NewWriterLevel(buf, gzipLevel); err != nil {
				return nil, err
			}
		} else {
			zw.Reset(buf)
		}
		defer b.zlibs.Put(zw)
		if _, err := zw.Write(src); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case format.Zstd:
		return b.zstd.EncodeAll(src, dst), nil
	case format.XZ:
		buf := bytes.NewBuffer(dst)
		xw, err := xz.WriterConfig{DictCap: b.blockSize, CheckSum: xz.CRC32}.NewWriter(buf)
		if err != nil {
			return nil, err
		}
		if _, err := xw.Write(src); err != nil {
			return nil, err
		}
		if err := xw.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	return nil, fmt.Errorf("unknown block compression %q", b.c)
}
