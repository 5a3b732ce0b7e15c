package store

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

// scanChunk is how many bytes of small writes a Scanner gathers before it
// searches them.
const scanChunk = 64 << 10

// prefilterBits is log2 of the size of a Scanner's prefilter bitset.
const prefilterBits = 20

// isNix32 tells which bytes are Nix base32 digits.
var isNix32 = func() (t [256]bool) {
	for i := 0; i < len(nix32Alphabet); i++ {
		t[nix32Alphabet[i]] = true
	}
	return t
}()

// scanKeys indexes the hash parts of candidate items: a bitset over a hash
// of each hash part's first bytes rejects most windows at once, and an
// open-addressing table finds the candidate of the others.
type scanKeys struct {
	paths  []Path   // the candidates, one per hash part
	hashes []string // their hash parts
	filter []uint64
	table  []int32 // index into paths plus one; 0 for an empty slot
	shift  uint
}

// filterIndex picks the prefilter bit of a window from its first 4 bytes.
func filterIndex(w []byte) uint32 {
	return (binary.LittleEndian.Uint32(w) * 0x9E3779B1) >> (32 - prefilterBits)
}

// slot is where the table search for a window starts.
func (k *scanKeys) slot(w []byte) uint64 {
	return (binary.LittleEndian.Uint64(w[8:]) * 0x9E3779B97F4A7C15) >> k.shift
}

// newScanKeys indexes candidates by hash part. When several share a hash
// part (an item and its build lock file <item>.lock, say), the shortest
// path, then the first in byte order, stands for them.
func newScanKeys(candidates []Path) *scanKeys {
	byHash := make(map[string]Path, len(candidates))
	for _, p := range candidates {
		base := p.Base()
		if len(base) < HashLen {
			continue
		}
		h := base[:HashLen]
		if q, ok := byHash[h]; !ok || len(p) < len(q) || len(p) == len(q) && p < q {
			byHash[h] = p
		}
	}
	k := &scanKeys{filter: make([]uint64, 1<<prefilterBits/64)}
	for _, p := range byHash {
		k.paths = append(k.paths, p)
	}
	slices.Sort(k.paths)
	bits := uint(10)
	for 1<<bits < 4*len(k.paths) {
		bits++
	}
	k.table, k.shift = make([]int32, 1<<bits), 64-bits
	mask := uint64(len(k.table) - 1)
	for i, p := range k.paths {
		h := p.HashPart()
		k.hashes = append(k.hashes, h)
		f := filterIndex([]byte(h))
		k.filter[f/64] |= 1 << (f % 64)
		s := k.slot([]byte(h))
		for k.table[s] != 0 {
			s = (s + 1) & mask
		}
		k.table[s] = int32(i + 1)
	}
	return k
}

// maybe is false when no candidate's hash part is w; small enough to be
// inlined.
func (k *scanKeys) maybe(w []byte) bool {
	f := filterIndex(w)
	return k.filter[f/64]&(1<<(f%64)) != 0
}

// find gives the index of the candidate whose hash part is w, or -1.
func (k *scanKeys) find(w []byte) int {
	mask := uint64(len(k.table) - 1)
	for s := k.slot(w); ; s = (s + 1) & mask {
		e := k.table[s]
		if e == 0 {
			return -1
		}
		if k.hashes[e-1] == string(w) {
			return int(e - 1)
		}
	}
}

// Scanner finds references to store items in a byte stream, as Nix does
// when it registers a path: it is written the NAR serialisation of an item
// (for example with nar.Dump(io.MultiWriter(scanner, ...), path)) and
// reports every candidate whose 32-character hash part occurs anywhere in
// it, at any offset, also across Write boundaries. An item that contains
// its own hash part refers to itself. A Scanner is not safe for
// concurrent use.
type Scanner struct {
	keys  *scanKeys
	found []uint64 // bitset over keys.paths
	last  int      // the candidate found last, or -1
	// buf holds bytes written but not yet searched, after up to
	// HashLen-1 bytes already searched that windows may start in.
	buf []byte
}

// NewScanner makes a Scanner looking for the hash parts of candidates.
func NewScanner(candidates []Path) *Scanner {
	return newScanner(newScanKeys(candidates))
}

func newScanner(k *scanKeys) *Scanner {
	return &Scanner{keys: k, found: make([]uint64, (len(k.paths)+63)/64), last: -1, buf: make([]byte, 0, scanChunk+HashLen)}
}

// Write searches p, joined to what was written before. It never fails.
func (s *Scanner) Write(p []byte) (int, error) {
	if len(s.buf)+len(p) <= scanChunk {
		s.buf = append(s.buf, p...)
		return len(p), nil
	}
	// The windows that start in buf: buf and the first HashLen-1 bytes of p.
	head := min(len(p), HashLen-1)
	s.buf = append(s.buf, p[:head]...)
	s.search(s.buf)
	if len(p) > head {
		s.search(p)
		s.buf = append(s.buf[:0], p[len(p)-(HashLen-1):]...)
	} else {
		s.keepTail()
	}
	return len(p), nil
}

// keepTail drops all but the last HashLen-1 bytes of buf, all searched.
func (s *Scanner) keepTail() {
	if n := len(s.buf); n > HashLen-1 {
		s.buf = s.buf[:copy(s.buf, s.buf[n-(HashLen-1):])]
	}
}

// References lists the candidates found so far, sorted. More may be
// written afterwards.
func (s *Scanner) References() []Path {
	s.search(s.buf)
	s.keepTail()
	out := []Path{}
	for i, w := range s.found {
		for ; w != 0; w &= w - 1 {
			out = append(out, s.keys.paths[i*64+bits.TrailingZeros64(w)])
		}
	}
	return out // sorted, as keys.paths is
}

// search looks at every HashLen-byte window of b. A window is checked from
// its last byte backwards; a byte outside Nix base32 rules out every window
// that holds it, so the search skips past it (usually HashLen bytes ahead
// in binary data). Inside a run of base32 bytes each further byte adds one
// window.
func (s *Scanner) search(b []byte) {
	i, n := 0, len(b)
	for i+HashLen <= n {
		w := b[i : i+HashLen : i+HashLen]
		j := HashLen - 1
		for j >= 0 && isNix32[w[j]] {
			j--
		}
		if j >= 0 {
			i += j + 1
			continue
		}
		for {
			if w := b[i : i+HashLen]; s.keys.maybe(w) {
				s.lookup(w)
			}
			i++
			if i+HashLen > n || !isNix32[b[i+HashLen-1]] {
				break
			}
		}
		// b[i+HashLen-1] is not base32 (or past the end).
		i += HashLen
	}
}

// lookup records the candidate whose hash part is w, if any.
func (s *Scanner) lookup(w []byte) {
	if i := s.keys.find(w); i >= 0 && i != s.last {
		s.found[i/64] |= 1 << (i % 64)
		s.last = i
	}
}
