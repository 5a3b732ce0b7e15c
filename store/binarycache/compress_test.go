package binarycache

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/compress"
)

// bzip2Hello is "hello, NAR\n" as bzip2 -9 compresses it (Go has no
// bzip2 writer).
var bzip2Hello = []byte{
	0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59, 0x26, 0x53, 0x59, 0x52, 0xd9, 0x2d, 0x1d, 0x00, 0x00,
	0x03, 0xd7, 0x00, 0x00, 0x10, 0x40, 0x04, 0x20, 0x01, 0x10, 0x00, 0x02, 0x44, 0xa0, 0x00, 0x22,
	0x01, 0x93, 0x21, 0x00, 0x30, 0x18, 0xc8, 0x2b, 0x93, 0x8f, 0x17, 0x72, 0x45, 0x38, 0x50, 0x90,
	0x52, 0xd9, 0x2d, 0x1d,
}

// TestNarInfoCompressions checks the compressions a narinfo may name,
// the extension of each one's NAR files, and that NewDecompressor reads
// all but br.
func TestNarInfoCompressions(t *testing.T) {
	want := []string{"xz", "zstd", "none", "bzip2", "gzip", "br"}
	if got := NarInfoCompressions(); !slices.Equal(got, want) {
		t.Fatalf("NarInfoCompressions() = %q, want %q", got, want)
	}
	exts := map[string]string{"xz": ".nar.xz", "zstd": ".nar.zst", "none": ".nar", "bzip2": ".nar.bz2", "gzip": ".nar.gz", "br": ".nar.br"}
	const nar = "hello, NAR\n"
	for _, c := range want {
		if got := narExt(c); got != exts[c] {
			t.Errorf("narExt(%q) = %q, want %q", c, got, exts[c])
		}
		file := bzip2Hello
		switch c {
		case "br":
			if _, _, err := NewDecompressor(c, bytes.NewReader(nil)); err == nil || !strings.Contains(err.Error(), "cannot read") {
				t.Errorf("br: error %v, want one saying storepack cannot read it", err)
			}
			continue
		case "bzip2":
		default:
			var buf bytes.Buffer
			w, err := compress.NewWriter(&buf, format.Compression(c), compress.Options{})
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(w, nar)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			file = buf.Bytes()
		}
		r, done, err := NewDecompressor(c, bytes.NewReader(file))
		if err != nil {
			t.Errorf("%s: %v", c, err)
			continue
		}
		got, err := io.ReadAll(r)
		done()
		if err != nil || string(got) != nar {
			t.Errorf("%s: read %q (%v), want %q", c, got, err, nar)
		}
	}
	for _, c := range []string{"", "lzma"} {
		if _, _, err := NewDecompressor(c, bytes.NewReader(nil)); err == nil {
			t.Errorf("NewDecompressor(%q): no error", c)
		}
	}
}
