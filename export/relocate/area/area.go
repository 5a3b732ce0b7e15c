// Package area is the block of a relocatable wrapper's data that says
// what the wrapper runs: the real program's store path and the store
// folder. The wrapper (export/relocate/wrapper) holds the block as a
// global variable, initialized to Magic followed by zeros, and storepack
// (export/relocate) fills it in a copy of the wrapper's bytes, so that
// every wrapped program of a system shares the wrapper's bytes but this
// block, and its length.
//
// The block is in memory before the wrapper's first instruction runs:
// its entry code, which runs before the Go runtime, tests whether the
// program exists at its store path from there. The block is Size bytes:
//
//	Magic (MagicLen bytes),
//	program path, NUL, store folder, NUL,
//	zeros to the end.
//
// The program comes first, at a fixed offset, for the entry code. This
// package uses the standard library alone: the wrapper's bytes depend on
// nothing else.
package area

import (
	"bytes"
	"errors"
	"path"
	"strconv"
	"strings"
)

// Magic begins the block; it occurs once in a wrapper's bytes.
const Magic = "storepack-reloc2"

// MagicLen is Magic's length: the offset of the program path. The
// wrapper names it rather than Magic, so that Magic's bytes are in the
// wrapper once, in the block.
const MagicLen = 16

// Size is the block's length: Magic and two paths of at most PATH_MAX
// bytes with their NULs.
const Size = MagicLen + 2*4096

// Paths is what the block says.
type Paths struct {
	// StoreDir is the store folder, such as /gnu/store.
	StoreDir string
	// Program is the absolute path of the real program, inside StoreDir.
	Program string
}

// Check reports whether p's paths are absolute and clean, the store
// folder is not /, and the program is below it.
func (p Paths) Check() error {
	switch {
	case !clean(p.StoreDir) || p.StoreDir == "/":
		return errors.New("store folder " + strconv.Quote(p.StoreDir) + ": not an absolute clean path below /")
	case !clean(p.Program) || !strings.HasPrefix(p.Program, p.StoreDir+"/"):
		return errors.New("program " + strconv.Quote(p.Program) + ": not an absolute clean path in the store folder " + p.StoreDir)
	}
	return nil
}

func clean(p string) bool {
	return strings.HasPrefix(p, "/") && path.Clean(p) == p && !strings.ContainsRune(p, 0)
}

// ErrNone is Find's error when b holds no block.
var ErrNone = errors.New("no relocatable wrapper's block (" + Magic + ")")

// Find returns the offset of the one block in b, a wrapper's bytes.
func Find(b []byte) (int, error) {
	i := bytes.Index(b, []byte(Magic))
	switch {
	case i < 0:
		return 0, ErrNone
	case bytes.Contains(b[i+1:], []byte(Magic)):
		return 0, errors.New("more than one relocatable wrapper's block (" + Magic + ")")
	case len(b)-i < Size:
		return 0, errors.New("the relocatable wrapper's block is cut short")
	}
	return i, nil
}

// Fill returns a copy of wrapper, whose block is empty, with the block
// saying p.
func Fill(wrapper []byte, p Paths) ([]byte, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	if len(p.Program)+len(p.StoreDir)+2 > Size-MagicLen {
		return nil, errors.New("program " + strconv.Quote(p.Program) + ": path too long for the wrapper's block")
	}
	i, err := Find(wrapper)
	if err != nil {
		return nil, err
	}
	block := wrapper[i+MagicLen : i+Size]
	if !zero(block) {
		return nil, errors.New("the relocatable wrapper's block is filled already")
	}
	out := bytes.Clone(wrapper)
	data := out[i+MagicLen:]
	n := copy(data, p.Program)
	copy(data[n+1:], p.StoreDir)
	return out, nil
}

// Read returns what the block in b, a wrapped program, says.
func Read(b []byte) (Paths, error) {
	i, err := Find(b)
	if err != nil {
		return Paths{}, err
	}
	return Parse(b[i+MagicLen : i+Size])
}

// Parse reads data, the block but its Magic.
func Parse(data []byte) (Paths, error) {
	prog, rest, ok := bytes.Cut(data, []byte{0})
	dir, rest2, ok2 := bytes.Cut(rest, []byte{0})
	if !ok || !ok2 || len(prog) == 0 {
		return Paths{}, errors.New("the relocatable wrapper's block is empty")
	}
	if !zero(rest2) {
		return Paths{}, errors.New("the relocatable wrapper's block: bytes after the two paths")
	}
	p := Paths{StoreDir: string(dir), Program: string(prog)}
	if err := p.Check(); err != nil {
		return Paths{}, errors.New("the relocatable wrapper's block: " + err.Error())
	}
	return p, nil
}

// zero reports whether b holds zeros alone.
func zero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
