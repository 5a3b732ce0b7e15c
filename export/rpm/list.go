package rpm

import (
	"bytes"
	"crypto/sha256"
	"sort"
)

// fileList holds a package's file list compactly, since it stays in
// memory until the header is written: fixed-size records in chunks, the
// names and link targets in an arena of large chunks. Nothing is copied
// to grow, and 100,000 files of a store closure take about 15 MB.
type fileList struct {
	recs  [][]record
	names arena
	n     int
}

// record is one file of the list; the time is in seconds, as rpm and cpio
// record it.
type record struct {
	name, link nameRef
	size       int64
	offset     int64 // in the spool
	mtime      int64
	perm       uint32
	typ        Type
	digest     [sha256.Size]byte
}

const recordChunk = 4096

func (l *fileList) add(r record) {
	if l.n%recordChunk == 0 {
		l.recs = append(l.recs, make([]record, 0, recordChunk))
	}
	c := &l.recs[len(l.recs)-1]
	*c = append(*c, r)
	l.n++
}

func (l *fileList) at(i int) *record { return &l.recs[i/recordChunk][i%recordChunk] }

// sorted returns the indexes of the records sorted by name, the order rpm
// looks files up in, and the first name that is there twice, if any.
func (l *fileList) sorted() (order []int32, twice []byte) {
	order = make([]int32, l.n)
	for i := range order {
		order[i] = int32(i)
	}
	sort.Slice(order, func(i, j int) bool {
		return bytes.Compare(l.name(l.at(int(order[i]))), l.name(l.at(int(order[j])))) < 0
	})
	for i := 1; i < len(order); i++ {
		if a := l.name(l.at(int(order[i]))); bytes.Equal(a, l.name(l.at(int(order[i-1])))) {
			return nil, a
		}
	}
	return order, nil
}

func (l *fileList) name(r *record) []byte { return l.names.bytes(r.name) }
func (l *fileList) link(r *record) []byte { return l.names.bytes(r.link) }

// nameRef is a string in an arena.
type nameRef struct{ chunk, off, n uint32 }

// arena keeps strings back to back in chunks of 1 MiB (or one of their
// own, for a longer one).
type arena struct{ chunks [][]byte }

const arenaChunk = 1 << 20

func (a *arena) add(s string) nameRef {
	if s == "" {
		return nameRef{}
	}
	last := len(a.chunks) - 1
	if last < 0 || cap(a.chunks[last])-len(a.chunks[last]) < len(s) {
		a.chunks = append(a.chunks, make([]byte, 0, max(arenaChunk, len(s))))
		last++
	}
	c := a.chunks[last]
	a.chunks[last] = append(c, s...)
	return nameRef{uint32(last), uint32(len(c)), uint32(len(s))}
}

func (a *arena) bytes(r nameRef) []byte {
	if r.n == 0 {
		return nil
	}
	return a.chunks[r.chunk][r.off : r.off+r.n]
}
