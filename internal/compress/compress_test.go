package compress

import (
	"bytes"
	"io"
	"math/rand"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/storepack/storepack/format"
)

// sample is compressible data of n bytes.
func sample(n int) []byte {
	r := rand.New(rand.NewSource(1))
	b := make([]byte, n)
	for i := range b {
		if i%7 == 0 {
			b[i] = byte(r.Intn(256))
		} else {
			b[i] = byte('a' + i%13)
		}
	}
	return b
}

// compressed compresses data as c with o, written in chunks of chunk
// bytes, with GOMAXPROCS set to procs.
func compressed(t *testing.T, data []byte, c format.Compression, o Options, chunk, procs int) []byte {
	t.Helper()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
	var buf bytes.Buffer
	w, err := NewWriter(&buf, c, o)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(data); i += chunk {
		if _, err := w.Write(data[i:min(i+chunk, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestReproducible compresses the same bytes with every compression,
// serial and parallel, written in different chunks under different
// GOMAXPROCS: the bytes are the same each time and decompress to the
// input.
func TestReproducible(t *testing.T) {
	for _, c := range []format.Compression{format.None, format.Gzip, format.Zstd, format.XZ} {
		data := sample(5<<20 + 12345) // several parallel gzip blocks
		if c == format.XZ {
			data = data[:300<<10] // xz is slow, and one goroutine
		}
		for _, o := range []Options{{}, {Parallel: true}, {Size: int64(len(data))}, {Parallel: true, Size: int64(len(data))}} {
			first := compressed(t, data, c, o, 1<<16, 1)
			for _, run := range []struct{ chunk, procs int }{{1000003, 4}, {4096, 2}, {len(data), 8}} {
				if got := compressed(t, data, c, o, run.chunk, run.procs); !bytes.Equal(got, first) {
					t.Errorf("%s %+v: writes of %d bytes with GOMAXPROCS=%d give other bytes", c, o, run.chunk, run.procs)
				}
			}
			r, done, err := NewReader(bytes.NewReader(first), c)
			if err != nil {
				t.Fatal(err)
			}
			back, err := io.ReadAll(r)
			done()
			if err != nil || !bytes.Equal(back, data) {
				t.Errorf("%s %+v: decompressed %d bytes (%v), want the %d written", c, o, len(back), err, len(data))
			}
			if c != format.None && len(first) >= len(data)/2 {
				t.Errorf("%s %+v: %d bytes from %d: not compressed", c, o, len(first), len(data))
			}
		}
	}
}

func TestUnknown(t *testing.T) {
	if _, err := NewWriter(io.Discard, "lz4", Options{}); err == nil {
		t.Error("lz4: no error")
	}
	if _, _, err := NewReader(bytes.NewReader(nil), "lz4"); err == nil {
		t.Error("lz4 reader: no error")
	}
}

func TestSettingsDiffer(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range []format.Compression{format.None, format.Gzip, format.Zstd, format.XZ} {
		for _, o := range []Options{{}, {Parallel: true}, {Size: 1}} {
			seen[Settings(c, o)] = true
		}
	}
	// gzip's parallel bytes differ from serial, zstd's and xz's sized
	// ones from unsized; zstd's parallel ones and the others' do not.
	if len(seen) != 7 {
		t.Errorf("%d distinct settings, want 7: %v", len(seen), seen)
	}
}

// TestZstdSized: with the input's size given, the frame header records it
// and a window fitted to it (ZstdWindow at most), the compressed blocks are
// those of the unsized stream, and another number of bytes is an error
// of Close.
func TestZstdSized(t *testing.T) {
	for _, n := range []int{1, 5000, 1 << 20, 3<<20 + 1, 9 << 20} {
		data := sample(n)
		sized := compressed(t, data, format.Zstd, Options{Size: int64(n)}, 1<<16, 1)
		var h zstd.Header
		if err := h.Decode(sized); err != nil {
			t.Fatal(err)
		}
		// A frame of one block is a single segment (no window), and a
		// size under 256 fits only there.
		want := uint64(zstdWindow(int64(n)))
		if (n > 255 && (!h.HasFCS || h.FrameContentSize != uint64(n))) || (!h.SingleSegment && h.WindowSize != want) {
			t.Errorf("%d bytes: content size %v %d, window %d; want %d and %d", n, h.HasFCS, h.FrameContentSize, h.WindowSize, n, want)
		}
		if want < uint64(n) && n <= ZstdWindow || want > ZstdWindow || (n > zstd.MinWindowSize && want >= 2*uint64(n)) {
			t.Errorf("%d bytes: window %d", n, want)
		}
		plain := compressed(t, data, format.Zstd, Options{}, 1<<16, 1)
		var ph zstd.Header
		if err := ph.Decode(plain); err != nil {
			t.Fatal(err)
		}
		if n > ZstdWindow && ph.WindowSize != ZstdWindow {
			t.Errorf("%d bytes of unknown size: window %d, want %d", n, ph.WindowSize, ZstdWindow)
		}
		if !bytes.Equal(sized[h.HeaderSize:], plain[ph.HeaderSize:]) {
			t.Errorf("%d bytes: the sized frame's blocks differ from the unsized one's", n)
		}
	}
	w, err := NewWriter(io.Discard, format.Zstd, Options{Size: 10})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("123456789"))
	if err := w.Close(); err == nil {
		t.Error("9 bytes written after a size of 10: Close gives no error")
	}
}

// TestZstdReused: an encoder that wrote other streams of known size
// before (they wait for the next one when closed) writes the same bytes as
// a new one; a stream of unknown size leaves no encoder waiting.
func TestZstdReused(t *testing.T) {
	reset := func() {
		idleZstd.Lock()
		idleZstd.encs, idleZstd.n = nil, 0
		idleZstd.Unlock()
	}
	waiting := func() int {
		idleZstd.Lock()
		defer idleZstd.Unlock()
		return idleZstd.n
	}
	// a and b have the same length (one window), c another.
	a, b, c := sample(3<<20), sample(3<<20 + 5)[5:], sample(100000)
	sized := func(d []byte) Options { return Options{Size: int64(len(d))} }
	want := map[*byte][]byte{}
	for _, d := range [][]byte{a, b, c} {
		reset()
		want[&d[0]] = compressed(t, d, format.Zstd, sized(d), 1<<16, 1)
		if n := waiting(); n != 1 {
			t.Errorf("%d encoders wait after a stream of known size, want 1", n)
		}
	}
	reset()
	for i := range 3 {
		for _, d := range [][]byte{b, c, a} {
			if got := compressed(t, d, format.Zstd, sized(d), 1<<16, 1); !bytes.Equal(got, want[&d[0]]) {
				t.Errorf("run %d: %d bytes on a used encoder differ", i, len(d))
			}
		}
	}
	reset()
	compressed(t, c, format.Zstd, Options{}, 1<<16, 1)
	if n := waiting(); n != 0 {
		t.Errorf("%d encoders wait after a stream of unknown size, want none", n)
	}
}

// TestXZSized: with the input's size given, the LZMA2 dictionary recorded
// in the block header is the smallest power of two (of 4 KiB at least)
// that holds it, 8 MiB at most; without, 8 MiB.
func TestXZSized(t *testing.T) {
	dictOf := func(b []byte) int {
		// The stream header (12 bytes), then the block header: the LZMA2
		// filter (id 0x21) with one property byte.
		i := bytes.Index(b[12:], []byte{0x21, 0x01})
		if i < 0 {
			t.Fatalf("no LZMA2 filter in % x", b[:min(len(b), 40)])
		}
		p := int(b[12+i+2])
		return (2 | p&1) << (p/2 + 11)
	}
	for _, tt := range []struct {
		size int64
		want int
	}{{0, 8 << 20}, {1, 4096}, {5000, 8192}, {1 << 20, 1 << 20}, {3<<20 + 1, 4 << 20}, {9 << 20, 8 << 20}} {
		data := sample(int(min(tt.size, 64<<10)))
		o := Options{Size: tt.size}
		if tt.size > int64(len(data)) {
			o.Size = 0 // the dictionary only: the bytes are few
			if got := xzDict(tt.size); got != tt.want {
				t.Errorf("xzDict(%d) = %d, want %d", tt.size, got, tt.want)
			}
			continue
		}
		if got := dictOf(compressed(t, data, format.XZ, o, 1<<16, 1)); got != tt.want {
			t.Errorf("%d bytes: dictionary %d, want %d", tt.size, got, tt.want)
		}
	}
}

// TestExt checks each compression's extension.
func TestExt(t *testing.T) {
	for c, want := range map[format.Compression]string{format.Gzip: ".gz", format.Zstd: ".zst", format.XZ: ".xz", format.None: "", "": "", "lz4": ""} {
		if got := Ext(c); got != want {
			t.Errorf("Ext(%q) = %q, want %q", c, got, want)
		}
	}
}

// TestZstdLowMemory checks that NewZstdFrames, whose encoder keeps a
// history of the window and a block, writes the bytes of an encoder
// with zstd's default history (twice the window), for frames shorter
// than a block, than the window and several times longer, of data that
// repeats itself at distances within and beyond the window.
func TestZstdLowMemory(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	blocks := make([][]byte, 3000)
	for i := range blocks {
		blocks[i] = make([]byte, 4096)
		for j := range blocks[i] {
			blocks[i][j] = byte('a' + r.Intn(20))
		}
	}
	var data []byte
	for len(data) < 30<<20 {
		data = append(data, blocks[r.Intn(len(blocks))]...)
	}
	frames := func(enc *zstd.Encoder, buf *bytes.Buffer) []byte {
		for _, n := range []int{50000, 24 << 20, 130000, 9 << 20, 200000} {
			enc.Reset(buf)
			for p := 0; p < n; p += 100000 {
				if _, err := enc.Write(data[p:min(p+100000, n)]); err != nil {
					t.Fatal(err)
				}
			}
			if err := enc.Close(); err != nil {
				t.Fatal(err)
			}
		}
		return buf.Bytes()
	}
	var low, def bytes.Buffer
	enc, err := NewZstdFrames(nil)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(zstdWindow(0)), zstd.WithEncoderCRC(true), zstd.WithZeroFrames(true))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := frames(enc, &low), frames(ref, &def); !bytes.Equal(got, want) {
		t.Errorf("%d bytes with the lower memory, %d with the default", len(got), len(want))
	}
}
