package blockbuf

import (
	"bytes"
	"strings"
	"testing"
)

// TestBuffer writes across block boundaries, by Write and WriteString,
// reads it all back, and checks that Reset gives the blocks to the pool
// and that the next writes take them from it.
func TestBuffer(t *testing.T) {
	pool := make(chan []byte, 8)
	b := Buffer{Pool: pool}
	var want bytes.Buffer
	for i, n := range []int{1, BlockSize - 1, BlockSize, 3*BlockSize + 7, 0, 5} {
		p := bytes.Repeat([]byte{byte('a' + i)}, n)
		if i%2 == 0 {
			b.Write(p)
		} else {
			b.WriteString(string(p))
		}
		want.Write(p)
	}
	if b.Len() != int64(want.Len()) {
		t.Errorf("Len %d, want %d", b.Len(), want.Len())
	}
	var got strings.Builder
	if n, err := b.WriteTo(&got); err != nil || n != int64(want.Len()) || got.String() != want.String() {
		t.Fatalf("WriteTo: %d bytes, %v; the bytes equal: %v", n, err, got.String() == want.String())
	}
	blocks := len(b.blocks)
	if wantBlocks := (want.Len() + BlockSize - 1) / BlockSize; blocks != wantBlocks {
		t.Errorf("%d blocks for %d bytes, want %d", blocks, want.Len(), wantBlocks)
	}
	b.Reset()
	if b.Len() != 0 || len(pool) != blocks {
		t.Errorf("after Reset: Len %d, %d blocks in the pool; want 0 and %d", b.Len(), len(pool), blocks)
	}
	b.WriteString("x")
	if len(pool) != blocks-1 {
		t.Errorf("a write after Reset left %d blocks in the pool, want %d (it takes one)", len(pool), blocks-1)
	}
}
