package nar_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storepack/storepack/store/nar"
)

// TestReaderRejects holds one malformed NAR per rule the Reader enforces.
// Each must fail with a *FormatError whose reason names the problem, at the
// offset of the offending token, for the NAR path concerned.
func TestReaderRejects(t *testing.T) {
	dir := func() *narBuilder { return newNAR().str("(", "type", "directory") }
	pad := func(s string, b byte) []byte { // a token whose padding is not zero
		p := append([]byte(s), make([]byte, (8-len(s)%8)%8)...)
		p[len(p)-1] = b
		return p
	}
	deep := newNAR()
	for range 257 {
		deep.str("(", "type", "directory", "entry", "(", "name", "d", "node")
	}
	deep.str("(", "type").here().str("directory")
	deepPath := strings.Repeat("/d", 257)

	tests := []struct {
		name   string
		nb     *narBuilder
		reason string // substring of FormatError.Reason
		path   string
		eof    bool // the cause is io.ErrUnexpectedEOF
	}{
		{"empty input", new(narBuilder).here(), "input ends in the magic", "", true},
		{"wrong magic", new(narBuilder).here().str("nix-archive-2"), "not a NAR", "", false},
		{"magic of the wrong length", new(narBuilder).here().str("nix-archive"), "not a NAR", "", false},
		{"magic with non-zero padding", new(narBuilder).here().u64(13).raw(pad("nix-archive-1", 1)), "not a NAR", "", false},
		{"missing open paren", newNAR().here().str("type"), `expected "(", got "type"`, "/", false},
		{"missing type", newNAR().str("(").here().str("regular"), `expected "type", got "regular"`, "/", false},
		{"unknown node type", newNAR().str("(", "type").here().str("fifo"), `unknown node type "fifo"`, "/", false},
		{"token padding not zero", newNAR().here().u64(1).raw(pad("(", 7)), "non-zero padding", "/", false},
		{"contents padding not zero", newNAR().str("(", "type", "regular", "contents").u64(3).raw([]byte("abc")).here().raw([]byte{0, 0, 0, 0, 1}), "non-zero padding after the contents", "/", false},
		{"executable marker not empty", newNAR().str("(", "type", "regular", "executable").here().str("yes"), "executable marker has the non-empty value", "/", false},
		{"contents tag missing", newNAR().str("(", "type", "regular").here().str("target"), `expected "contents", got "target"`, "/", false},
		{"executable after contents", newNAR().str("(", "type", "regular", "contents", "").here().str("executable"), `expected ")", got "executable"`, "/", false},
		{"contents size beyond int64", newNAR().str("(", "type", "regular", "contents").here().u64(math.MaxUint64), "does not fit", "/", false},
		{"symlink without target tag", newNAR().str("(", "type", "symlink").here().str("contents"), `expected "target", got "contents"`, "/", false},
		{"empty symlink target", newNAR().str("(", "type", "symlink", "target").here().str(""), "empty symlink target", "/", false},
		{"NUL in symlink target", newNAR().str("(", "type", "symlink", "target").here().str("a\x00b"), "contains NUL", "/", false},
		{"symlink target too long", newNAR().str("(", "type", "symlink", "target").here().u64(4096), "longer than 4095", "/", false},
		{"hostile symlink target length", newNAR().str("(", "type", "symlink", "target").here().u64(1 << 62), "longer than 4095", "/", false},
		{"two targets", newNAR().str("(", "type", "symlink", "target", "a").here().str("target", "b"), `expected ")", got "target"`, "/", false},
		{"unknown tag in folder", dir().here().str("entries"), `expected "entry" or ")", got "entries"`, "/", false},
		{"hostile tag length", dir().here().u64(1 << 40), "at most 32", "/", false},
		{"entry without open paren", dir().str("entry").here().str("name"), `expected "(", got "name"`, "/", false},
		{"entry without name", dir().str("entry", "(").here().str("node"), `expected "name", got "node"`, "/", false},
		{"empty name", dir().str("entry", "(", "name").here().str(""), "empty entry name", "/", false},
		{"name dot", dir().str("entry", "(", "name").here().str("."), `entry name "." is not allowed`, "/", false},
		{"name dot dot", dir().str("entry", "(", "name").here().str(".."), `entry name ".." is not allowed`, "/", false},
		{"name with slash", dir().str("entry", "(", "name").here().str("a/b"), "contains '/'", "/", false},
		{"name with NUL", dir().str("entry", "(", "name").here().str("a\x00b"), "contains NUL", "/", false},
		{"name too long", dir().str("entry", "(", "name").here().str(strings.Repeat("n", 256)), "longer than 255", "/", false},
		{"hostile name length", dir().str("entry", "(", "name").here().u64(math.MaxUint64), "longer than 255", "/", false},
		{"entry without node", dir().str("entry", "(", "name", "a").here().str("("), `expected "node", got "("`, "/a", false},
		{"entries out of order", dir().entry("b", "").str("entry", "(", "name").here().str("a"), `"a" is not sorted after the previous entry "b"`, "/", false},
		{"byte order, not case order", dir().entry("a", "").str("entry", "(", "name").here().str("B"), `"B" is not sorted after`, "/", false},
		{"duplicate entry", dir().entry("a", "").str("entry", "(", "name").here().str("a"), `"a" duplicates the previous entry "a"`, "/", false},
		{"entry not closed", dir().str("entry", "(", "name", "a", "node").file("", false).here().str("entry"), `expected ")", got "entry"`, "/", false},
		{"nested too deep", deep, "nested deeper than 256", deepPath, false},
		{"truncated in contents", newNAR().str("(", "type", "regular", "contents").u64(10).raw([]byte("abc")).here(), "input ends 7 bytes before the end of the contents", "/", true},
		{"truncated in a token", newNAR().str("(", "type").here().u64(7).raw([]byte("reg")), "input ends in the node type", "/", true},
		{"truncated before folder end", dir().entry("a", "x").here(), "input ends in the tag", "/", true},
		{"truncated in nested folder", dir().str("entry", "(", "name", "sub", "node", "(", "type", "directory").here(), "input ends in the tag", "/sub", true},
		{"truncated before root close", newNAR().str("(", "type", "symlink", "target", "x").here(), `input ends in the ")"`, "/", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readAll(nar.NewReader(bytes.NewReader(tc.nb.bytes())))
			if err == nil {
				t.Fatal("accepted a malformed NAR")
			}
			fe := asFormatError(t, err)
			if !strings.Contains(fe.Reason, tc.reason) {
				t.Errorf("reason %q, want it to contain %q", fe.Reason, tc.reason)
			}
			if fe.Offset != tc.nb.mark {
				t.Errorf("offset %d, want %d (%v)", fe.Offset, tc.nb.mark, err)
			}
			if fe.Path != tc.path {
				t.Errorf("path %q, want %q", fe.Path, tc.path)
			}
			if got := errors.Is(err, io.ErrUnexpectedEOF); got != tc.eof {
				t.Errorf("errors.Is(err, io.ErrUnexpectedEOF) = %v, want %v", got, tc.eof)
			}
			if !strings.Contains(err.Error(), "byte ") {
				t.Errorf("message %q does not give the offset", err)
			}
			// The error is sticky.
			r := nar.NewReader(bytes.NewReader(tc.nb.bytes()))
			readAll(r)
			if _, err2 := r.Next(); err2 == nil || err2 == io.EOF {
				t.Errorf("Next after an error returned %v", err2)
			}
		})
	}
}

// TestReaderAccepts reads hand-made NARs of each shape and checks the
// headers and contents it reports.
func TestReaderAccepts(t *testing.T) {
	tests := []struct {
		name string
		nb   *narBuilder
		want []nar.Header
		data []string // contents of the regular files, in order
	}{
		{"regular root", newNAR().file("hello", false), []nar.Header{{Path: "/", Type: nar.TypeRegular, Size: 5}}, []string{"hello"}},
		{"executable root", newNAR().file("12345678", true), []nar.Header{{Path: "/", Type: nar.TypeRegular, Size: 8, Executable: true}}, []string{"12345678"}},
		{"empty file", newNAR().file("", false), []nar.Header{{Path: "/", Type: nar.TypeRegular}}, []string{""}},
		{"symlink root", newNAR().str("(", "type", "symlink", "target", "../x", ")"), []nar.Header{{Path: "/", Type: nar.TypeSymlink, LinkTarget: "../x"}}, nil},
		{"empty folder", newNAR().str("(", "type", "directory", ")"), []nar.Header{{Path: "/", Type: nar.TypeDirectory}}, nil},
		{"nested", newNAR().str("(", "type", "directory").
			entry("a", "A").
			str("entry", "(", "name", "d", "node", "(", "type", "directory").entry("x", "X").str(")", ")").
			str("entry", "(", "name", "é", "node", "(", "type", "symlink", "target", "/abs", ")", ")").
			str(")"),
			[]nar.Header{
				{Path: "/", Type: nar.TypeDirectory},
				{Path: "/a", Type: nar.TypeRegular, Size: 1},
				{Path: "/d", Type: nar.TypeDirectory},
				{Path: "/d/x", Type: nar.TypeRegular, Size: 1},
				{Path: "/é", Type: nar.TypeSymlink, LinkTarget: "/abs"},
			}, []string{"A", "X"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.nb.bytes()
			r := nar.NewReader(bytes.NewReader(in))
			var got []nar.Header
			var data []string
			for {
				h, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, *h)
				if h.Type == nar.TypeRegular {
					b, err := io.ReadAll(r)
					if err != nil {
						t.Fatal(err)
					}
					data = append(data, string(b))
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("headers %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("header %d: %+v, want %+v", i, got[i], tc.want[i])
				}
			}
			if strings.Join(data, "|") != strings.Join(tc.data, "|") {
				t.Errorf("contents %q, want %q", data, tc.data)
			}
			if r.Offset() != int64(len(in)) {
				t.Errorf("Offset %d after the root, want %d", r.Offset(), len(in))
			}
			var out bytes.Buffer
			if err := nar.Copy(nar.NewWriter(&out), nar.NewReader(bytes.NewReader(in))); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), in) {
				t.Error("Copy through a Writer changed the bytes")
			}
		})
	}
}

// TestReaderStopsAtEnd checks that the Reader consumes exactly the NAR and
// leaves what follows in the stream.
func TestReaderStopsAtEnd(t *testing.T) {
	in := newNAR().str("(", "type", "directory").entry("a", "data").str(")").bytes()
	trailer := []byte("trailing bytes")
	src := bytes.NewReader(append(bytes.Clone(in), trailer...))
	r := nar.NewReader(src)
	if _, err := readAll(r); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("Next after the end: %v, want io.EOF", err)
	}
	if r.Offset() != int64(len(in)) {
		t.Errorf("Offset %d, want %d", r.Offset(), len(in))
	}
	rest, _ := io.ReadAll(src)
	if !bytes.Equal(rest, trailer) {
		t.Errorf("left %q in the stream, want %q", rest, trailer)
	}
}

// TestReadPartialSkips checks that Next skips unread contents.
func TestReadPartialSkips(t *testing.T) {
	in := newNAR().str("(", "type", "directory").entry("a", "0123456789").entry("b", "xyz").str(")").bytes()
	r := nar.NewReader(bytes.NewReader(in))
	var names []string
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Path)
		if h.Path == "/a" {
			p := make([]byte, 3)
			if _, err := io.ReadFull(r, p); err != nil || string(p) != "012" {
				t.Fatalf("read %q, %v", p, err)
			}
		}
		if h.Path == "/b" {
			b, _ := io.ReadAll(r)
			if string(b) != "xyz" {
				t.Errorf("contents of /b %q", b)
			}
		}
	}
	if strings.Join(names, " ") != "/ /a /b" {
		t.Errorf("nodes %q", names)
	}
}

// TestRoundTripTree dumps the test tree, reads it back and writes it again
// through a Writer: the bytes must not change.
func TestRoundTripTree(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tree")
	writeTree(t, dir)
	for _, sub := range []string{"", "bin/tool", "link-rel", "empty", "share"} {
		t.Run("/"+sub, func(t *testing.T) {
			var dumped bytes.Buffer
			if err := nar.Dump(&dumped, filepath.Join(dir, sub)); err != nil {
				t.Fatal(err)
			}
			var copied bytes.Buffer
			r := nar.NewReader(bytes.NewReader(dumped.Bytes()))
			if err := nar.Copy(nar.NewWriter(&copied), r); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(copied.Bytes(), dumped.Bytes()) {
				t.Errorf("round trip changed %d bytes into %d", dumped.Len(), copied.Len())
			}
			// Restore then dump again.
			out := filepath.Join(t.TempDir(), "out")
			if err := nar.Restore(bytes.NewReader(dumped.Bytes()), out); err != nil {
				t.Fatal(err)
			}
			var again bytes.Buffer
			if err := nar.Dump(&again, out); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Bytes(), dumped.Bytes()) {
				t.Error("Restore then Dump changed the bytes")
			}
			makeWritable(t, out)
		})
	}
}

// makeWritable lets t.TempDir clean up a restored (read-only) tree.
func makeWritable(t *testing.T, dir string) {
	t.Helper()
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
}
