package nar_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/storepack/storepack/store/nar"
)

// bundleItem is what a test bundle holds for one item.
type bundleItem struct {
	nar     []byte
	path    string
	refs    []string
	deriver string
}

// bundleBytes frames items as an export bundle, with signature marker sig
// after each item (1 adds a legacy signature string).
func bundleBytes(items []bundleItem, sig uint64) []byte {
	nb := new(narBuilder)
	for _, it := range items {
		nb.u64(1).raw(it.nar).u64(nar.BundleMagic).str(it.path).u64(uint64(len(it.refs))).str(it.refs...).str(it.deriver).u64(sig)
		if sig == 1 {
			nb.str("legacy-signature")
		}
	}
	return nb.u64(0).bytes()
}

// readBundle reads a whole bundle with the BundleReader: the entries and
// each NAR as the Reader gave it back through Copy.
func readBundleAll(in []byte) ([]nar.BundleEntry, [][]byte, error) {
	br := nar.NewBundleReader(bytes.NewReader(in))
	var entries []nar.BundleEntry
	var nars [][]byte
	for {
		nr, err := br.Next()
		if err == io.EOF {
			return entries, nars, nil
		}
		if err != nil {
			return entries, nars, err
		}
		var buf bytes.Buffer
		if err := nar.Copy(nar.NewWriter(&buf), nr); err != nil {
			return entries, nars, err
		}
		e, err := br.Entry()
		if err != nil {
			return entries, nars, err
		}
		entries = append(entries, *e)
		nars = append(nars, buf.Bytes())
	}
}

func TestBundleReader(t *testing.T) {
	file := newNAR().file("hello\n", false).bytes()
	dir := newNAR().str("(", "type", "directory").entry("a", "x").str(")").bytes()
	items := []bundleItem{
		{file, "/nix/store/00000000000000000000000000000000-a", nil, ""},
		{dir, "/nix/store/11111111111111111111111111111111-b", []string{"/nix/store/00000000000000000000000000000000-a", "/nix/store/11111111111111111111111111111111-b"}, "/nix/store/22222222222222222222222222222222-b.drv"},
	}
	for _, sig := range []uint64{0, 1} {
		in := bundleBytes(items, sig)
		entries, nars, err := readBundleAll(in)
		if err != nil {
			t.Fatalf("signature marker %d: %v", sig, err)
		}
		if len(entries) != len(items) {
			t.Fatalf("read %d entries, want %d", len(entries), len(items))
		}
		for i, e := range entries {
			want := items[i]
			if e.Path != want.path || !slices.Equal(e.References, append([]string{}, want.refs...)) || e.Deriver != want.deriver {
				t.Errorf("entry %d: %+v, want %+v", i, e, want)
			}
			if !bytes.Equal(nars[i], want.nar) || !bytes.Equal(in[e.NarOffset:e.NarOffset+e.NarSize], want.nar) {
				t.Errorf("entry %d: NAR at %d+%d differs", i, e.NarOffset, e.NarSize)
			}
		}
	}

	// Next without reading the NAR or calling Entry skips the item.
	br := nar.NewBundleReader(bytes.NewReader(bundleBytes(items, 0)))
	for range items {
		if _, err := br.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := br.Next(); err != io.EOF {
		t.Errorf("Next after the last item: %v, want io.EOF", err)
	}
	if _, err := br.Entry(); err == nil {
		t.Error("Entry without a current item succeeded")
	}
}

func TestBundleReaderErrors(t *testing.T) {
	file := newNAR().file("hello\n", false).bytes()
	p := "/nix/store/00000000000000000000000000000000-a"
	good := bundleBytes([]bundleItem{{file, p, nil, ""}}, 0)
	afterNAR := int64(8 + len(file)) // the export magic
	tests := []struct {
		name   string
		in     []byte
		offset int64
		reason string
	}{
		{"empty", nil, 0, "reading the item marker"},
		{"bad item marker", new(narBuilder).u64(2).bytes(), 0, "item marker is not 0 or 1"},
		{"data after the end", append(bytes.Clone(good), 0), int64(len(good)), "data after the end marker"},
		{"bad NAR", new(narBuilder).u64(1).str("not-a-nar").bytes(), 8, "magic"},
		{"bad export magic", new(narBuilder).u64(1).raw(file).u64(7).bytes(), afterNAR, "export magic is not NIXE"},
		{"relative path", new(narBuilder).u64(1).raw(file).u64(nar.BundleMagic).str("nix/store/x").bytes(), afterNAR + 8, "store path is not an absolute path"},
		{"long path", new(narBuilder).u64(1).raw(file).u64(nar.BundleMagic).str("/" + strings.Repeat("x", 4096)).bytes(), afterNAR + 8, "longer than 4096"},
		{"padding", new(narBuilder).u64(1).raw(file).u64(nar.BundleMagic).u64(1).raw([]byte("/\x00\x00\x01\x00\x00\x00\x00")).bytes(), afterNAR + 8, "non-zero padding"},
		{"empty reference", new(narBuilder).u64(1).raw(file).u64(nar.BundleMagic).str(p).u64(1).str("").bytes(), afterNAR + 16 + 48 + 8, "reference is not an absolute path"},
		{"bad signature marker", new(narBuilder).u64(1).raw(file).u64(nar.BundleMagic).str(p).u64(0).str("").u64(5).bytes(), afterNAR + 16 + 48 + 16, "signature marker is not 0 or 1"},
		{"truncated", good[:len(good)-3], int64(len(good) - 8), "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := readBundleAll(tt.in)
			if err == nil {
				t.Fatal("accepted")
			}
			fe := asFormatError(t, err)
			if fe.Offset != tt.offset || !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q at %d, want %q at %d", err, fe.Offset, tt.reason, tt.offset)
			}
		})
	}
}

// FuzzBundleReader feeds arbitrary bytes to the BundleReader: it must never
// panic, fail with anything but a *FormatError inside the input, nor
// accept a bundle it cannot read back once framed again. Seeds are in
// testdata/fuzz/FuzzBundleReader.
func FuzzBundleReader(f *testing.F) {
	file := newNAR().file("hello\n", true).bytes()
	f.Add(bundleBytes([]bundleItem{{file, "/nix/store/00000000000000000000000000000000-a", []string{"/nix/store/00000000000000000000000000000000-a"}, "/d.drv"}}, 0))
	f.Add(bundleBytes(nil, 0))
	f.Fuzz(func(t *testing.T, in []byte) {
		entries, nars, err := readBundleAll(in)
		if err != nil {
			var fe *nar.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a *nar.FormatError", err, err)
			}
			if fe.Offset < 0 || fe.Offset > int64(len(in)) {
				t.Fatalf("error offset %d outside the %d input bytes", fe.Offset, len(in))
			}
			return
		}
		var items []bundleItem
		for i, e := range entries {
			if !bytes.Equal(nars[i], in[e.NarOffset:e.NarOffset+e.NarSize]) {
				t.Fatalf("entry %d: the NAR read differs from the input's bytes", i)
			}
			items = append(items, bundleItem{nars[i], e.Path, e.References, e.Deriver})
		}
		again, _, err := readBundleAll(bundleBytes(items, 0))
		if err != nil {
			t.Fatalf("the bundle framed again is refused: %v", err)
		}
		for i := range again {
			again[i].NarOffset, entries[i].NarOffset = 0, 0
			if !slices.EqualFunc([]nar.BundleEntry{again[i]}, []nar.BundleEntry{entries[i]}, func(a, b nar.BundleEntry) bool {
				return a.Path == b.Path && a.Deriver == b.Deriver && a.NarSize == b.NarSize && slices.Equal(a.References, b.References)
			}) {
				t.Fatalf("entry %d read back as %+v, was %+v", i, again[i], entries[i])
			}
		}
	})
}

// TestBundleWriter writes a bundle of two items with the BundleWriter:
// its bytes are those framed by hand (references sorted and without
// repeats), and the BundleReader reads the same items back.
func TestBundleWriter(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.WriteFile(a, []byte("item a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "f"), []byte("in b"), 0o755); err != nil {
		t.Fatal(err)
	}
	entries := []nar.BundleEntry{
		{Path: "/nix/store/a", References: nil},
		{Path: "/nix/store/b", References: []string{"/nix/store/b", "/nix/store/a", "/nix/store/b"}, Deriver: "/nix/store/b.drv"},
	}
	var want []bundleItem
	var out bytes.Buffer
	bw := nar.NewBundleWriter(&out)
	for i, fsPath := range []string{a, b} {
		var dump, tee bytes.Buffer
		if err := nar.Dump(&dump, fsPath); err != nil {
			t.Fatal(err)
		}
		n, err := bw.WriteNAR(&entries[i], fsPath, &tee, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n != int64(dump.Len()) || !bytes.Equal(tee.Bytes(), dump.Bytes()) {
			t.Errorf("%s: WriteNAR wrote %d bytes and teed %d, want the %d of Dump", fsPath, n, tee.Len(), dump.Len())
		}
		if err := bw.WriteTrailer(&entries[i]); err != nil {
			t.Fatal(err)
		}
		refs := slices.Compact(slices.Sorted(slices.Values(entries[i].References)))
		want = append(want, bundleItem{dump.Bytes(), entries[i].Path, refs, entries[i].Deriver})
	}
	if err := bw.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), bundleBytes(want, 0)) {
		t.Fatal("the bundle differs from the one framed by hand")
	}
	got, nars, err := readBundleAll(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i].Path != want[i].path || !slices.Equal(got[i].References, want[i].refs) || got[i].Deriver != want[i].deriver || !bytes.Equal(nars[i], want[i].nar) {
			t.Errorf("item %d read back as %+v", i, got[i])
		}
	}
}
