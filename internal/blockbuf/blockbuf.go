// Package blockbuf keeps bytes in blocks of a fixed size: a Buffer grows
// a block at a time and never copies what it holds into a larger array,
// so that text of unknown length (a layer's compressed frames, a TOC, a
// package's md5sums) takes no more memory than it is, and no array twice
// its size at the last growth, as bytes.Buffer may.
package blockbuf

import "io"

// BlockSize is the size of a Buffer's blocks.
const BlockSize = 32 << 10

// Buffer is bytes written, kept in blocks of BlockSize. Its zero value
// is an empty buffer.
type Buffer struct {
	// Pool, when not nil, gives blocks (of capacity BlockSize, empty) and
	// takes them back at Reset, when it has room.
	Pool   chan []byte
	blocks [][]byte
	n      int64
}

// Write appends p; it never fails.
func (b *Buffer) Write(p []byte) (int, error) { return write(b, p), nil }

// WriteString appends s; it never fails.
func (b *Buffer) WriteString(s string) (int, error) { return write(b, s), nil }

// write appends p to b and returns its length.
func write[T string | []byte](b *Buffer, p T) int {
	n := len(p)
	for len(p) > 0 {
		last := b.last()
		k := copy((*last)[len(*last):BlockSize], p)
		*last = (*last)[:len(*last)+k]
		p = p[k:]
	}
	b.n += int64(n)
	return n
}

// last is the block to write into, a new one when the last is full.
func (b *Buffer) last() *[]byte {
	if len(b.blocks) == 0 || len(b.blocks[len(b.blocks)-1]) == BlockSize {
		var blk []byte
		select {
		case blk = <-b.Pool: // a nil Pool is never ready
		default:
			blk = make([]byte, 0, BlockSize)
		}
		b.blocks = append(b.blocks, blk)
	}
	return &b.blocks[len(b.blocks)-1]
}

// Len is the number of bytes written.
func (b *Buffer) Len() int64 { return b.n }

// WriteTo writes the bytes to w.
func (b *Buffer) WriteTo(w io.Writer) (int64, error) {
	var written int64
	for _, blk := range b.blocks {
		n, err := w.Write(blk)
		written += int64(n)
		if err == nil && n < len(blk) {
			err = io.ErrShortWrite
		}
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// Reset empties b, giving its blocks back to its Pool.
func (b *Buffer) Reset() {
	for i, blk := range b.blocks {
		select {
		case b.Pool <- blk[:0]:
		default:
		}
		b.blocks[i] = nil
	}
	b.blocks, b.n = b.blocks[:0], 0
}
