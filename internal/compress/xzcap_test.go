package compress

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"math/rand"
	"os/exec"
	"testing"

	"github.com/storepack/storepack/format"
)

// xzOf compresses data with this package's xz writer.
func xzOf(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := NewWriter(&b, format.XZ, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// declare4GiB makes the first block of an xz stream declare a 4 GiB
// dictionary (LZMA2 property 40), its header's CRC32 kept valid: a
// valid stream a decoder without a cap allocates 4 GiB for.
func declare4GiB(t *testing.T, x []byte) []byte {
	t.Helper()
	x = bytes.Clone(x)
	hdr := x[12 : 12+(int(x[12])+1)*4]
	i := bytes.Index(hdr, []byte{0x21, 0x01})
	if i < 0 {
		t.Fatal("no LZMA2 filter in the block header")
	}
	hdr[i+2] = 40
	binary.LittleEndian.PutUint32(hdr[len(hdr)-4:], crc32.ChecksumIEEE(hdr[:len(hdr)-4]))
	return x
}

func TestXZReaderSize(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	text := make([]byte, 300_000)
	for i := range text {
		text[i] = "abcdefgh\n"[rnd.Intn(9)]
	}
	noise := make([]byte, 200_000)
	rnd.Read(noise)
	two := append(xzOf(t, text), xzOf(t, noise)...)
	cases := []struct {
		name string
		xz   []byte
		want []byte
	}{
		{"text", xzOf(t, text), text},
		{"incompressible", xzOf(t, noise), noise},
		{"empty", xzOf(t, nil), nil},
		{"two streams", two, append(bytes.Clone(text), noise...)},
		{"declaring 4 GiB", declare4GiB(t, xzOf(t, text)), text},
	}
	if xzCmd, err := exec.LookPath("xz"); err == nil {
		// Several blocks and stream padding, as xz -T writes.
		cmd := exec.Command(xzCmd, "-T2", "--block-size=65536", "-c")
		cmd.Stdin = bytes.NewReader(text)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct {
			name string
			xz   []byte
			want []byte
		}{"xz -T2 blocks, padded", append(out, 0, 0, 0, 0), text})
	}
	for _, c := range cases {
		r, done, err := NewReaderSize(bytes.NewReader(c.xz), format.XZ, int64(max(len(c.want), 1)))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("%s: %d bytes, %v; want %d bytes", c.name, len(got), err, len(c.want))
		}
		// Read again past the end, as callers that hash what is left do.
		if n, err := r.Read(make([]byte, 10)); n != 0 || err != io.EOF {
			t.Errorf("%s: a read past the end gave %d, %v", c.name, n, err)
		}
		done()
	}
	for _, c := range []struct {
		name string
		xz   []byte
	}{
		{"truncated", xzOf(t, text)[:1000]},
		{"garbage", noise[:1000]},
		{"bad header CRC", func() []byte { x := xzOf(t, text); x[14] ^= 1; return x }()},
	} {
		r, done, err := NewReaderSize(bytes.NewReader(c.xz), format.XZ, 1<<20)
		if err == nil {
			_, err = io.ReadAll(r)
			done()
		}
		if err == nil {
			t.Errorf("%s: read without error", c.name)
		}
	}
}

func TestXZDictOf(t *testing.T) {
	for d, want := range map[byte]uint32{0: 4096, 1: 6144, 2: 8192, 18: 2 << 20, 19: 3 << 20, 40: 0xffffffff} {
		if got := xzDictOf(d); got != want {
			t.Errorf("xzDictOf(%d) = %d, want %d", d, got, want)
		}
	}
}
