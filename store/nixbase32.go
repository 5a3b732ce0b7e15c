package store

import (
	"errors"
	"fmt"
)

// nix32Alphabet is the digit set of Nix's base32: no e, o, u or t.
const nix32Alphabet = "0123456789abcdfghijklmnpqrsvwxyz"

var nix32Index = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(nix32Alphabet); i++ {
		t[nix32Alphabet[i]] = int8(i)
	}
	return t
}()

// EncodedLen32 is the length of the Nix base32 encoding of n bytes.
func EncodedLen32(n int) int {
	if n == 0 {
		return 0
	}
	return (n*8-1)/5 + 1
}

// Encode32 writes b in Nix base32: the bytes read as one little-endian number,
// written most significant digit first.
func Encode32(b []byte) string {
	out := make([]byte, EncodedLen32(len(b)))
	AppendEncode32(out[:0], b)
	return string(out)
}

// AppendEncode32 appends the Nix base32 encoding of b to dst.
func AppendEncode32(dst, b []byte) []byte {
	n := EncodedLen32(len(b))
	for k := n - 1; k >= 0; k-- {
		bit := k * 5
		i, j := bit/8, uint(bit%8)
		c := b[i] >> j
		if i+1 < len(b) {
			c |= b[i+1] << (8 - j)
		}
		dst = append(dst, nix32Alphabet[c&0x1f])
	}
	return dst
}

// Decode32 parses a Nix base32 string into the bytes it encodes.
func Decode32(s string) ([]byte, error) {
	size := len(s) * 5 / 8
	if EncodedLen32(size) != len(s) {
		return nil, fmt.Errorf("nix base32 %q: invalid length %d", s, len(s))
	}
	out := make([]byte, size)
	for n := 0; n < len(s); n++ {
		c := s[len(s)-n-1]
		d := nix32Index[c]
		if d < 0 {
			return nil, fmt.Errorf("nix base32 %q: invalid character %q", s, c)
		}
		bit := n * 5
		i, j := bit/8, uint(bit%8)
		out[i] |= byte(d) << j
		if carry := byte(d) >> (8 - j); i+1 < size {
			out[i+1] |= carry
		} else if carry != 0 {
			return nil, errors.New("nix base32 " + s + ": value out of range")
		}
	}
	return out, nil
}
