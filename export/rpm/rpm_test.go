package rpm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/storepack/storepack/format"
)

// parseHeader reads a header's index: tag -> (type, offset, count), and
// the data store, checking the region entry and trailer.
func parseHeader(t *testing.T, b []byte, region int32) (map[int32][3]int32, []byte, int) {
	t.Helper()
	if !bytes.Equal(b[:4], []byte{0x8e, 0xad, 0xe8, 0x01}) {
		t.Fatalf("header magic %x", b[:4])
	}
	il := int32(binary.BigEndian.Uint32(b[8:]))
	dl := int(binary.BigEndian.Uint32(b[12:]))
	store := b[16+16*il : 16+16*int(il)+dl]
	idx := map[int32][3]int32{}
	prev := int32(-1)
	for i := int32(0); i < il; i++ {
		e := b[16+16*i:]
		tag := int32(binary.BigEndian.Uint32(e))
		v := [3]int32{int32(binary.BigEndian.Uint32(e[4:])), int32(binary.BigEndian.Uint32(e[8:])), int32(binary.BigEndian.Uint32(e[12:]))}
		if i == 0 && tag != region {
			t.Fatalf("the first entry is tag %d, want the region %d", tag, region)
		}
		if i > 1 && tag <= prev {
			t.Errorf("tag %d after %d: entries are not sorted", tag, prev)
		}
		prev = tag
		idx[tag] = v
	}
	trailer := store[idx[region][1]:]
	if got := int32(binary.BigEndian.Uint32(trailer[8:])); got != -16*il {
		t.Errorf("the region trailer points %d back, want %d", got, -16*il)
	}
	return idx, store, 16 + 16*int(il) + dl
}

func TestPackageLayout(t *testing.T) {
	w, err := NewWriter(t.TempDir(), "x-", Metadata{Name: "hello", Version: "1.0", Release: "1", Arch: "x86_64", Compression: format.Zstd, BuildTime: time.Unix(1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	mtime := time.Unix(1, 0)
	for _, f := range []struct {
		f    File
		body string
	}{
		{File{Path: "/opt/b", Type: Regular, Perm: 0o444, MTime: mtime}, "bbb"},
		{File{Path: "/opt", Type: Dir, Perm: 0o555, MTime: mtime}, ""},
		{File{Path: "/opt/a-link", Type: Symlink, LinkTo: "b", MTime: mtime}, ""},
		{File{Path: "/opt/a", Type: Regular, Perm: 0o555, MTime: mtime}, "#!/bin/sh\n"},
	} {
		if err := w.Add(f.f, strings.NewReader(f.body), int64(len(f.body))); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if _, err := w.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	b := out.Bytes()
	if !bytes.Equal(b[:4], []byte{0xed, 0xab, 0xee, 0xdb}) || !strings.HasPrefix(string(b[10:]), "hello-1.0-1") {
		t.Fatalf("lead %q", b[:96])
	}
	_, _, sigLen := parseHeader(t, b[96:], tagHeaderSignatures)
	start := 96 + sigLen + (8-sigLen%8)%8
	idx, store, _ := parseHeader(t, b[start:], tagHeaderImmutable)
	names := store[idx[tagBaseNames][1]:]
	if got := strings.Join(strings.SplitN(string(names), "\x00", 5)[:4], " "); got != "opt a a-link b" {
		t.Errorf("base names %q, want the files sorted by path", got)
	}
	if idx[tagSize][0] != typeInt32 || idx[tagLongSize] != [3]int32{} {
		t.Errorf("a small package with 64-bit sizes")
	}
}

// TestLongSizes: sizes past 2 GiB go in rpm's 64-bit tags.
func TestLongSizes(t *testing.T) {
	w := &Writer{m: Metadata{Name: "big", Version: "1", Release: "1"}}
	w.files.add(record{name: w.files.names.add("/a"), typ: Regular, size: math.MaxInt32})
	w.files.add(record{name: w.files.names.add("/b"), typ: Regular, size: 10})
	order, _ := w.files.sorted()
	h := w.header("00", order)
	if _, ok := h.entries[tagLongSize]; !ok {
		t.Error("no LONGSIZE for 2 GiB of files")
	}
	if _, ok := h.entries[tagLongFileSizes]; !ok {
		t.Error("no LONGFILESIZES")
	}
	if _, ok := h.entries[tagSize]; ok {
		t.Error("SIZE beside LONGSIZE")
	}
}

// TestTwice: a path added twice fails the package, naming the path.
func TestTwice(t *testing.T) {
	w, err := NewWriter(t.TempDir(), "x-", Metadata{Name: "twice", Version: "1", Release: "1", Compression: format.Gzip})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, body := range []string{"a", "bb"} {
		if err := w.Add(File{Path: "/opt/a", Type: Regular}, strings.NewReader(body), int64(len(body))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.WriteTo(io.Discard); err == nil || !strings.Contains(err.Error(), "/opt/a is in the package twice") {
		t.Errorf("a path added twice: %v", err)
	}
}

// TestFileListChunks: records and names past a chunk's end stay intact,
// and the order is by name.
func TestFileListChunks(t *testing.T) {
	var l fileList
	n := 3*recordChunk + 7
	long := strings.Repeat("x", arenaChunk+1)
	for i := n - 1; i >= 0; i-- {
		name := fmt.Sprintf("/f%06d", i)
		if i == 5 {
			name += long
		}
		l.add(record{name: l.names.add(name), size: int64(i)})
	}
	order, twice := l.sorted()
	if twice != nil {
		t.Fatalf("%s twice", twice)
	}
	for i, k := range order {
		r := l.at(int(k))
		want := fmt.Sprintf("/f%06d", i)
		if i == 5 {
			want += long
		}
		if string(l.name(r)) != want || r.size != int64(i) {
			t.Fatalf("record %d: %.20s size %d, want %.20s size %d", i, l.name(r), r.size, want, i)
		}
	}
}
