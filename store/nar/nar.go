// Package nar reads and writes Nix archives (NAR, "nix-archive-1"), the
// serialisation of a file system tree that Nix and Guix hash, sign and
// export.
//
// Dump and Hash serialise a tree from the file system, byte for byte as
// `nix-store --dump` and `nix-hash --type sha256` do, reading ahead on
// other goroutines with bounded memory. Restore recreates a tree from a NAR
// as a store holds it. The Writer and the strict Reader stream, like
// archive/tar: a Header per node, then the contents of regular files; Copy
// passes a NAR from one to the other, checking it.
package nar

import "encoding/binary"

// Magic is the first token of every NAR.
const Magic = "nix-archive-1"

// appendString appends s framed as Nix frames every string of a NAR and an
// export bundle: its length as a little-endian u64, its bytes, then zero
// bytes up to a multiple of 8.
func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	b = append(b, s...)
	return append(b, zeros[:padding(len(s))]...)
}

var zeros [8]byte

// padding is the number of zero bytes after n bytes of a string or of a
// file's contents.
func padding(n int) int { return (8 - n%8) % 8 }

// Type is the kind of a NAR node.
type Type uint8

// The node types a NAR can hold.
const (
	TypeRegular Type = iota + 1
	TypeDirectory
	TypeSymlink
)

// String returns the type's name as a NAR spells it: "regular",
// "directory" or "symlink".
func (t Type) String() string {
	switch t {
	case TypeRegular:
		return "regular"
	case TypeDirectory:
		return "directory"
	case TypeSymlink:
		return "symlink"
	}
	return "unknown"
}

// Header describes one node of a NAR.
type Header struct {
	// Path is the node's path within the archive: "/" for the root,
	// "/a/b" below it.
	Path string
	// Type is regular, directory or symlink.
	Type Type
	// Executable is set for regular files with the execute bit.
	Executable bool
	// Size is the length of a regular file's contents.
	Size int64
	// LinkTarget is a symlink's target, verbatim.
	LinkTarget string
}
