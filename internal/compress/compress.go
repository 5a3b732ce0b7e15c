// Package compress holds the compressions storepack writes and reads:
// gzip, zstd, xz and none, with settings fixed so that the same bytes
// always compress to the same bytes, on any machine and whatever
// GOMAXPROCS is.
//
//   - gzip: level 6, no name and no mtime in the header (klauspost's
//     compress/gzip). Parallel: the stream in 1 MiB blocks compressed on
//     GOMAXPROCS goroutines, each block with the previous one's last 32 KiB
//     as dictionary, in one gzip member (klauspost/pgzip); its bytes differ
//     from serial gzip's but not with the number of goroutines.
//   - zstd: the default level with a 2 MiB window (ZstdWindow), as
//     libzstd's level 3, zstd's default, takes for inputs over 256 KiB
//     (windowLog 21); a CRC; a frame even for no input. Parallel encodes
//     blocks on GOMAXPROCS goroutines, which gives the same bytes as one.
//     For an input whose size is given (Options.Size), the frame header
//     records it and the window is the smallest power of two that holds
//     it, if under 2 MiB, as libzstd fits its window to a pledged source
//     size: the same matches, and a small input's encoder holds no more
//     history than it needs. The encoder's own default, 8 MiB, held 16
//     MiB of history for each layer compressed at once, which at the 2 GB
//     scale took an export of zstd layers past 64 MiB, for a gain of
//     0.5 % in size on a Go toolchain's files.
//   - xz: LZMA2 with an 8 MiB dictionary and a CRC64 check, as xz -6
//     (ulikunitz/xz); always one goroutine. For an input whose size is
//     given (Options.Size), the dictionary is the smallest power of two
//     that holds it, if under 8 MiB.
//
// A change to any setting changes outputs: layer caches key their blobs
// by compression and must change their keys with it.
package compress

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/ulikunitz/xz"

	"github.com/storepack/storepack/format"
)

// gzipLevel is gzip's level, as gzip -6.
const gzipLevel = 6

// parallelBlock is the block size of parallel gzip.
const parallelBlock = 1 << 20

// Options change how a stream is compressed.
type Options struct {
	// Parallel compresses one stream on GOMAXPROCS goroutines: for a
	// single large stream (a tarball) rather than many at once (layers).
	Parallel bool
	// Size is the input's exact length, when it is known beforehand (a
	// NAR's); 0 means unknown. Writing another number of bytes is an
	// error of Close.
	Size int64
}

// EncoderMemory is about how much memory an encoder of c with o holds
// while it runs, for callers that run several at once and bound their sum:
// zstd's history (its window and a block for an input that fits the
// window, else twice the window) and tables; xz's dictionary and its match
// finder (ulikunitz/xz's hash table and chain: eight bytes a dictionary
// byte); gzip's window and tables.
func EncoderMemory(c format.Compression, o Options) int64 {
	workers := int64(1)
	if o.Parallel {
		workers = int64(runtime.GOMAXPROCS(0))
	}
	switch c {
	case format.Zstd:
		w := int64(zstdWindow(o.Size))
		hist := 2 * w
		if o.Size > 0 && o.Size <= w {
			hist = w + 128<<10
		}
		return hist + workers*(3<<20)
	case format.XZ:
		return 9*int64(xzDict(o.Size)) + 1<<20
	case format.Gzip:
		return workers * (2 << 20)
	}
	return 0
}

// xzDict is xz's dictionary: 8 MiB, or for an input of known size the
// smallest power of two (of at least 4 KiB) that holds it. A dictionary
// holds nothing past the input's end, and the encoder's match finder
// takes about eight times the dictionary (ulikunitz/xz's hash table and
// chain): a small NAR's encoder then takes little.
func xzDict(size int64) int {
	d := 8 << 20
	for size > 0 && d/2 >= 4096 && int64(d/2) >= size {
		d /= 2
	}
	return d
}

// ZstdWindow is the window of zstd streams of unknown size, and the
// largest of any.
const ZstdWindow = 2 << 20

// zstdWindow is zstd's window: ZstdWindow, or for an input of known size
// the smallest power of two (of at least zstd's minimum) that holds it.
func zstdWindow(size int64) int {
	w := ZstdWindow
	for size > 0 && w/2 >= zstd.MinWindowSize && int64(w/2) >= size {
		w /= 2
	}
	return w
}

// NewWriter returns a writer that compresses into w as c says ("" is
// none); its Close ends the compressed stream and does not close w.
func NewWriter(w io.Writer, c format.Compression, o Options) (io.WriteCloser, error) {
	switch c {
	case "", format.None:
		return nopCloser{w}, nil
	case format.Gzip:
		if o.Parallel {
			pw, err := pgzip.NewWriterLevel(w, gzipLevel)
			if err != nil {
				return nil, err
			}
			if err := pw.SetConcurrency(parallelBlock, runtime.GOMAXPROCS(0)+1); err != nil {
				return nil, err
			}
			return pw, nil
		}
		return gzip.NewWriterLevel(w, gzipLevel)
	case format.Zstd:
		workers := 1
		if o.Parallel {
			workers = runtime.GOMAXPROCS(0)
		}
		return newZstd(w, zstdWindow(o.Size), workers, o.Size)
	case format.XZ:
		return xz.WriterConfig{DictCap: xzDict(o.Size)}.NewWriter(w)
	}
	return nil, fmt.Errorf("unknown compression %q", c)
}

// idleZstd keeps the encoders of finished zstd streams of known size for
// the next such stream with the same window and workers: those come many
// at a time (a binary cache's NARs), and allocating an encoder's history
// for each made garbage faster than a bounded heap collects it. A reset
// encoder writes the same bytes as a new one. At most GOMAXPROCS encoders
// wait in all (a sync.Pool misses those put on another P and so makes
// more than run at once). The encoder of a stream of unknown size (a
// layer, a tarball, an rpm's payload) is left to the garbage collector:
// kept, its history (twice the window) would outlive the stream.
var idleZstd struct {
	sync.Mutex
	encs map[zstdKey][]*zstd.Encoder
	n    int
}

type zstdKey struct {
	window, workers int
	sized, low      bool
}

// pooledZstd is a zstd stream whose encoder waits in idleZstd when the
// stream ends.
type pooledZstd struct {
	*zstd.Encoder
	key zstdKey
}

func (z *pooledZstd) Close() error {
	if z.Encoder == nil {
		return nil
	}
	err := z.Encoder.Close()
	if err == nil {
		z.Encoder.Reset(nil)
		idleZstd.Lock()
		if z.key.sized && idleZstd.n < runtime.GOMAXPROCS(0) {
			if idleZstd.encs == nil {
				idleZstd.encs = map[zstdKey][]*zstd.Encoder{}
			}
			idleZstd.encs[z.key] = append(idleZstd.encs[z.key], z.Encoder)
			idleZstd.n++
		}
		idleZstd.Unlock()
	}
	z.Encoder = nil
	return err
}

func newZstd(w io.Writer, window, workers int, size int64) (io.WriteCloser, error) {
	// An input that fits the window never moves its history down, so
	// the encoder needs no more than the window and a block of it (the
	// default is twice the window, which saves copies on longer ones).
	key := zstdKey{window, workers, size > 0, size > 0 && size <= int64(window)}
	var enc *zstd.Encoder
	idleZstd.Lock()
	if l := idleZstd.encs[key]; len(l) > 0 {
		enc, idleZstd.encs[key] = l[len(l)-1], l[:len(l)-1]
		idleZstd.n--
	}
	idleZstd.Unlock()
	if enc == nil {
		var err error
		enc, err = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderConcurrency(workers),
			zstd.WithWindowSize(window),
			zstd.WithLowerEncoderMem(key.low),
			zstd.WithEncoderCRC(true),
			zstd.WithZeroFrames(true),
		)
		if err != nil {
			return nil, err
		}
	}
	if size > 0 {
		enc.ResetContentSize(w, size)
	} else {
		enc.Reset(w)
	}
	return &pooledZstd{enc, key}, nil
}

// GzipLevel is gzip's level, for encoders that take one (eStargz layers).
const GzipLevel = gzipLevel

// NewZstdFrames returns a zstd encoder into w with zstd's settings (an
// input of unknown size, one goroutine) for a stream cut into frames, as
// zstd:chunked layers are: Close ends a frame (and does not close w),
// Reset(w) starts the next, which writes the same bytes as a new encoder.
// Its history holds the window and a block (2 MiB and 128 KiB, allocated
// by the first frame of a block or more), not twice the window: it is
// moved down more often, which writes the same bytes (TestZstdLowMemory),
// but at every block of a frame longer than the window (2 MiB copied
// for 128 KiB: a long stream of one frame, a layer's, would take longer,
// so NewWriter keeps zstd's default).
func NewZstdFrames(w io.Writer) (*zstd.Encoder, error) {
	return zstd.NewWriter(w,
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(zstdWindow(0)),
		zstd.WithLowerEncoderMem(true),
		zstd.WithEncoderCRC(true),
		zstd.WithZeroFrames(true),
	)
}

// NewReader returns a reader of the decompressed bytes of r, compressed
// as c says, and a function that releases its resources. The other
// compressions a binary cache's NARs may have (bzip2) are read by package
// binarycache (binarycache.NewDecompressor).
func NewReader(r io.Reader, c format.Compression) (io.Reader, func(), error) {
	switch c {
	case "", format.None:
		return r, func() {}, nil
	case format.XZ:
		xr, err := xz.NewReader(r)
		return xr, func() {}, err
	case format.Zstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	case format.Gzip:
		gr, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, err
		}
		return gr, func() { gr.Close() }, nil
	}
	return nil, nil, fmt.Errorf("cannot read the compression %q", c)
}

// NewReaderSize is NewReader for a stream whose decompressed bytes are
// known to be at most size (a NAR of its narinfo's NarSize; 0: unknown):
// an xz decoder then holds a dictionary of no more than size needs,
// whatever the stream's headers declare (newXZReaderSize).
func NewReaderSize(r io.Reader, c format.Compression, size int64) (io.Reader, func(), error) {
	if c != format.XZ || size <= 0 {
		return NewReader(r, c)
	}
	return newXZReaderSize(r, size)
}

// Ext is the extension a file compressed as c takes after its own:
// ".gz", ".zst" or ".xz"; "" for none ("" or None) and for a compression
// this package does not know.
func Ext(c format.Compression) string {
	switch c {
	case format.Gzip:
		return ".gz"
	case format.Zstd:
		return ".zst"
	case format.XZ:
		return ".xz"
	}
	return ""
}

// Settings describes everything the bytes of a stream compressed as c
// with o depend on besides its input, for cache keys: the settings above
// and the version of the library built in.
func Settings(c format.Compression, o Options) string {
	switch c {
	case format.Gzip:
		if o.Parallel {
			return fmt.Sprintf("gzip level %d parallel %d-byte blocks klauspost/pgzip %s klauspost/compress %s", gzipLevel, parallelBlock, moduleVersion("github.com/klauspost/pgzip"), moduleVersion("github.com/klauspost/compress"))
		}
		return fmt.Sprintf("gzip level %d klauspost/compress %s", gzipLevel, moduleVersion("github.com/klauspost/compress"))
	case format.Zstd:
		window := fmt.Sprintf("window %d", ZstdWindow)
		if o.Size > 0 {
			window += " or fitted to the content size, content size in the header"
		}
		return "zstd default level " + window + " crc klauspost/compress " + moduleVersion("github.com/klauspost/compress")
	case format.XZ:
		dict := "8MiB dictionary"
		if o.Size > 0 {
			dict = "8MiB dictionary or fitted to the content size"
		}
		return "xz lzma2 " + dict + " crc64 ulikunitz/xz " + moduleVersion("github.com/ulikunitz/xz")
	}
	return string(c)
}

// ModuleVersion is the version of the module path built in (a module's
// version changes the bytes its encoders write), "unknown" when the
// binary has no build information.
func ModuleVersion(path string) string { return moduleVersion(path) }

// moduleVersion is the version of the module built in, "unknown" when
// the binary has no build information.
func moduleVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == path {
				if m.Replace != nil {
					return m.Replace.Path + "@" + m.Replace.Version
				}
				return m.Version
			}
		}
	}
	return "unknown"
}

// nopCloser is an io.WriteCloser whose Close does nothing.
type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
