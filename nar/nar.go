// Package nar reads and writes Nix archives (NAR, "nix-archive-1"), the
// serialisation of a file system tree that Nix and Guix hash, sign and
// export.
//
// Dump and Hash serialise a tree from the file system, byte for byte as
// `nix-store --dump` and `nix-hash --type sha256` do, reading ahead on a
// second goroutine with bounded memory. Restore recreates a tree from a NAR
// as a store holds it. The Writer and the strict Reader stream, like
// archive/tar: a Header per node, then the contents of regular files; Copy
// passes a NAR from one to the other, checking it.
package nar

// Magic is the first token of every NAR.
const Magic = "nix-archive-1"

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
