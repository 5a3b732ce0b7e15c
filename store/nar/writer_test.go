package nar_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/storepack/storepack/store/nar"
)

// TestWriterRefuses checks that the Writer refuses to write what the Reader
// would refuse, or what is not a complete NAR.
func TestWriterRefuses(t *testing.T) {
	dir := nar.Header{Path: "/", Type: nar.TypeDirectory}
	file := func(p string, size int64) nar.Header { return nar.Header{Path: p, Type: nar.TypeRegular, Size: size} }
	tests := []struct {
		name    string
		headers []nar.Header
		write   string // contents written after the last header
		want    string
	}{
		{"first node not the root", []nar.Header{file("/a", 0)}, "", `first node is "/a"`},
		{"unsorted", []nar.Header{dir, file("/b", 0), file("/a", 0)}, "", `"a" does not sort after "b"`},
		{"duplicate", []nar.Header{dir, file("/a", 0), file("/a", 0)}, "", `"a" does not sort after "a"`},
		{"dot dot", []nar.Header{dir, file("/..", 0)}, "", `".." is not allowed`},
		{"empty name", []nar.Header{dir, file("/", 0)}, "", "empty entry name"},
		{"NUL in name", []nar.Header{dir, file("/a\x00", 0)}, "", "contains NUL"},
		{"long name", []nar.Header{dir, file("/"+strings.Repeat("x", 256), 0)}, "", "longer than 255"},
		{"parent not open", []nar.Header{dir, file("/d/x", 0)}, "", `parent "/d" is not an open folder`},
		{"empty target", []nar.Header{{Path: "/", Type: nar.TypeSymlink}}, "", "empty symlink target"},
		{"unknown type", []nar.Header{{Path: "/", Type: 9}}, "", "unknown node type"},
		{"negative size", []nar.Header{file("/", -1)}, "", "negative size"},
		{"second root", []nar.Header{file("/", 0), file("/", 0)}, "", "after the root node is complete"},
		{"contents too long", []nar.Header{file("/", 2)}, "abc", "past the file's size"},
		{"contents too short", []nar.Header{dir, file("/a", 5), file("/b", 0)}, "", "5 bytes of the previous file missing"},
		{"short at close", []nar.Header{file("/", 5)}, "ab", "3 bytes of the last file missing"},
		{"nothing written", nil, "", "no root node written"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := nar.NewWriter(io.Discard)
			var err error
			for i := range tc.headers {
				if err = w.WriteHeader(&tc.headers[i]); err != nil {
					break
				}
			}
			if err == nil && tc.write != "" {
				_, err = w.Write([]byte(tc.write))
			}
			if err == nil {
				err = w.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// TestWriterWrites builds a NAR with the Writer, large and small writes
// mixed, and checks it against a hand-made one.
func TestWriterWrites(t *testing.T) {
	big := strings.Repeat("z", 300<<10+3)
	want := newNAR().str("(", "type", "directory").
		entry("a", "small").
		entry("b", big).
		str("entry", "(", "name", "c", "node", "(", "type", "directory", ")", ")").
		str("entry", "(", "name", "l", "node", "(", "type", "symlink", "target", "a", ")", ")").
		str(")").bytes()
	var out bytes.Buffer
	w := nar.NewWriter(&out)
	steps := []struct {
		h    nar.Header
		data []string
	}{
		{nar.Header{Path: "/", Type: nar.TypeDirectory}, nil},
		{nar.Header{Path: "/a", Type: nar.TypeRegular, Size: 5}, []string{"sm", "all"}},
		{nar.Header{Path: "/b", Type: nar.TypeRegular, Size: int64(len(big))}, []string{big[:10], big[10 : 200<<10], big[200<<10:]}},
		{nar.Header{Path: "/c", Type: nar.TypeDirectory}, nil},
		{nar.Header{Path: "/l", Type: nar.TypeSymlink, LinkTarget: "a"}, nil},
	}
	for _, s := range steps {
		if err := w.WriteHeader(&s.h); err != nil {
			t.Fatal(err)
		}
		for _, d := range s.data {
			if _, err := w.Write([]byte(d)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("Writer wrote %d bytes, want %d; first difference at %d", out.Len(), len(want), firstDiff(out.Bytes(), want))
	}
}
