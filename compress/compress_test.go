package compress

import (
	"bytes"
	"io"
	"math/rand"
	"runtime"
	"testing"

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
		for _, o := range []Options{{}, {Parallel: true}} {
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
		for _, o := range []Options{{}, {Parallel: true}} {
			seen[Settings(c, o)] = true
		}
	}
	// gzip's parallel bytes differ from serial; zstd's and the others' do not.
	if len(seen) != 5 {
		t.Errorf("%d distinct settings, want 5: %v", len(seen), seen)
	}
}
