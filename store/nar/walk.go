package nar

import (
	"encoding/binary"
	"path"
)

// A Framer turns the nodes of a tree into the bytes of an archive format.
// Stream and Measure walk a tree in NAR order (depth first, a folder's
// children sorted by the bytes of their names) and call it for every node:
// the bytes of a node are Begin's, then a regular file's contents (Size
// bytes) or a folder's children, then End's. The NAR serialisation is one
// Framer; export's layer tars are another, so that a NAR dump and a layer
// tar share one walk of the file system.
//
// h.Path is the node's path within the tree ("/" for the root, "/a/b"
// below it); for regular files Size and Executable are set, for symlinks
// LinkTarget. Begin and End append to b and return it; they are called
// from the walking goroutine and must not keep h, nor h.Path past the
// call: the walk builds the tree paths in one buffer, which it reuses
// (store/nar/dump_linux.go).
type Framer interface {
	Begin(b []byte, h *Header) []byte
	End(b []byte, h *Header) []byte
}

// narFramer frames nodes as a NAR, byte for byte as nix-store --dump.
type narFramer struct{}

func (narFramer) Begin(b []byte, h *Header) []byte {
	if h.Path == "/" {
		b = appendString(b, Magic)
	} else {
		b = appendString(b, "entry")
		b = appendString(b, "(")
		b = appendString(b, "name")
		b = appendString(b, path.Base(h.Path))
		b = appendString(b, "node")
	}
	b = appendString(b, "(")
	b = appendString(b, "type")
	b = appendString(b, h.Type.String())
	switch h.Type {
	case TypeRegular:
		if h.Executable {
			b = appendString(b, "executable")
			b = appendString(b, "")
		}
		b = appendString(b, "contents")
		b = binary.LittleEndian.AppendUint64(b, uint64(h.Size))
	case TypeSymlink:
		b = appendString(b, "target")
		b = appendString(b, h.LinkTarget)
	}
	return b
}

func (narFramer) End(b []byte, h *Header) []byte {
	if h.Type == TypeRegular {
		b = append(b, zeros[:padding(int(h.Size%8))]...)
	}
	b = appendString(b, ")")
	if h.Path != "/" {
		b = appendString(b, ")")
	}
	return b
}

// childPath is the tree path of name inside the folder at dir.
func childPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}
