package store

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/storepack/storepack/store/nar"
)

// fakePath makes a store path under d whose hash part comes from seed.
func fakePath(d Dir, seed, name string) Path {
	sum := sha256.Sum256([]byte(seed))
	return d.Join(Encode32(sum[:20]) + "-" + name)
}

// naiveRefs finds the candidates whose hash part is a window of data by
// looking at every offset: the definition the Scanner must meet.
func naiveRefs(data []byte, candidates []Path) []Path {
	var out []Path
	for _, p := range candidates {
		if bytes.Contains(data, []byte(p.HashPart())) {
			out = append(out, p)
		}
	}
	return SortPaths(out)
}

// scanInPieces writes data to a new Scanner in pieces of the given sizes
// (the last piece takes the rest).
func scanInPieces(candidates []Path, data []byte, sizes ...int) []Path {
	s := NewScanner(candidates)
	for _, n := range sizes {
		n = min(n, len(data))
		s.Write(data[:n])
		data = data[n:]
	}
	s.Write(data)
	return s.References()
}

func TestScannerCases(t *testing.T) {
	d := Dir("/nix/store")
	a, b, c := fakePath(d, "a", "a"), fakePath(d, "b", "b"), fakePath(d, "c", "c")
	cands := []Path{a, b, c}
	ha, hb := a.HashPart(), b.HashPart()
	for _, tc := range []struct {
		name   string
		data   string
		pieces []int
		want   []Path
	}{
		{"empty", "", nil, nil},
		{"none", "no store paths here", nil, nil},
		{"full path", "x " + string(a) + "/bin/sh y", nil, []Path{a}},
		{"bare hash part", ha, nil, []Path{a}},
		{"at start", ha + "\x00\x01\x02 and more", nil, []Path{a}},
		{"at end", "\x00\x01\x02 and more" + hb, nil, []Path{b}},
		{"start and end", ha + "\xff" + hb, nil, []Path{a, b}},
		{"adjacent", ha + hb, nil, []Path{a, b}},
		{"inside a base32 run", "00000" + ha + "zzzz", nil, []Path{a}},
		{"31 characters", ha[:31] + "-", nil, nil},
		{"one character changed", ha[:10] + "e" + ha[11:], nil, nil},
		{"split across two writes", "xx" + ha + "yy", []int{2 + 16}, []Path{a}},
		{"split after first byte", ha, []int{1}, []Path{a}},
		{"split before last byte", ha, []int{31}, []Path{a}},
		{"one byte per write", "--" + hb + "--", []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, []Path{b}},
		{"overlapping candidates", ha[:16] + ha + ha[16:], nil, []Path{a}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := scanInPieces(cands, []byte(tc.data), tc.pieces...)
			tc.want = SortPaths(tc.want)
			if !slices.Equal(got, tc.want) {
				t.Errorf("references = %q, want %q", got, tc.want)
			}
			if naive := naiveRefs([]byte(tc.data), cands); !slices.Equal(naive, tc.want) {
				t.Errorf("test case is wrong: naive search finds %q", naive)
			}
		})
	}
}

// TestScannerSplits puts a hash part across every possible Write boundary,
// including boundaries of the Scanner's internal chunking.
func TestScannerSplits(t *testing.T) {
	d := Dir("/gnu/store")
	p := fakePath(d, "p", "p")
	for _, prefix := range []int{0, 1, 100, scanChunk - 40, scanChunk - 16, scanChunk, scanChunk + 3} {
		data := append(bytes.Repeat([]byte{0xff}, prefix), p.HashPart()...)
		data = append(data, 0xfe)
		for cut := prefix - 1; cut <= prefix+HashLen+1; cut++ {
			if cut < 0 {
				continue
			}
			for _, sizes := range [][]int{{cut}, {cut, 5}, {cut / 2, cut - cut/2}} {
				if got := scanInPieces([]Path{p}, data, sizes...); !slices.Equal(got, []Path{p}) {
					t.Fatalf("prefix %d, pieces %v: references = %q", prefix, sizes, got)
				}
			}
		}
	}
}

// TestScannerRandom compares the Scanner with naive search on random data
// planted with hash parts, written in random pieces.
func TestScannerRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	d := Dir("/nix/store")
	var cands []Path
	for i := range 50 {
		cands = append(cands, fakePath(d, fmt.Sprint(i), "c"))
	}
	for iter := range 200 {
		size := r.IntN(3 * scanChunk)
		data := make([]byte, size)
		alpha := []byte(nix32Alphabet + "\x00/-e")
		for i := range data {
			if iter%2 == 0 {
				data[i] = byte(r.Uint32())
			} else {
				data[i] = alpha[r.IntN(len(alpha))]
			}
		}
		for range r.IntN(5) {
			if size < HashLen {
				break
			}
			at := r.IntN(size - HashLen + 1)
			copy(data[at:], cands[r.IntN(len(cands))].HashPart())
		}
		var sizes []int
		for range r.IntN(20) {
			sizes = append(sizes, r.IntN(2*scanChunk))
		}
		got := scanInPieces(cands, data, sizes...)
		if want := naiveRefs(data, cands); !slices.Equal(got, want) {
			t.Fatalf("iteration %d (%d bytes, pieces %v): references %q, want %q", iter, size, sizes, got, want)
		}
	}
}

// TestScannerNAR scans NAR serialisations: a reference only in a symlink
// target, only in a file name, and in an item's own contents.
func TestScannerNAR(t *testing.T) {
	d := Dir("/nix/store")
	self, dep, other := fakePath(d, "self", "self"), fakePath(d, "dep", "dep"), fakePath(d, "other", "other")
	cands := []Path{self, dep, other}
	root := t.TempDir()
	for _, tc := range []struct {
		name  string
		build func(dir string) error
		want  []Path
	}{
		{"symlink target", func(dir string) error {
			return os.Symlink(string(dep)+"/lib", filepath.Join(dir, "link"))
		}, []Path{dep}},
		{"file name", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, other.HashPart()), nil, 0o644)
		}, []Path{other}},
		{"self reference", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "f"), []byte("#!"+string(self)+"/bin/sh\n"), 0o755)
		}, []Path{self}},
		{"no reference", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "f"), []byte(dep.Name()+other.Name()), 0o644)
		}, []Path{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(root, tc.name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := tc.build(dir); err != nil {
				t.Fatal(err)
			}
			s := NewScanner(cands)
			var buf bytes.Buffer
			if err := nar.Dump(io.MultiWriter(s, &buf), dir); err != nil {
				t.Fatal(err)
			}
			got := s.References()
			if !slices.Equal(got, tc.want) {
				t.Errorf("references = %q, want %q", got, tc.want)
			}
			if naive := naiveRefs(buf.Bytes(), cands); !slices.Equal(naive, got) {
				t.Errorf("naive search of the NAR finds %q", naive)
			}
		})
	}
}

// TestScannerLockFiles: an item and its build lock share a hash part; the
// item is the reference.
func TestScannerLockFiles(t *testing.T) {
	p := fakePath("/nix/store", "p", "p")
	s := NewScanner([]Path{p + ".lock", p, p + ".chroot"})
	s.Write([]byte(string(p)))
	if got := s.References(); !slices.Equal(got, []Path{p}) {
		t.Errorf("references = %q, want %q", got, []Path{p})
	}
}
