// Package trailer is the data a relocatable wrapper carries after its
// program bytes: the store folder and the store path of the program it
// runs. The wrapper (export/relocate/wrapper) reads it from its own file
// and storepack writes it (export/relocate), so that every wrapped
// program of a system shares the wrapper's bytes and differs only in its
// trailer. It uses the standard library alone: the wrapper's bytes depend
// on nothing else.
//
// The trailer is, at the very end of the file:
//
//	store folder, NUL, program path, NUL,
//	their length (those two strings and their NULs) as 4 bytes, little endian,
//	the 8 bytes of Magic.
package trailer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"path"
	"strconv"
	"strings"
)

// Magic ends every wrapped program.
const Magic = "SPRELOC1"

// footerLen is the length of the fixed part: the length field and Magic.
const footerLen = 4 + int64(len(Magic))

// maxData bounds the strings: two paths of at most PATH_MAX bytes.
const maxData = 2 * 4096

// Trailer is what a wrapper learns from its trailer.
type Trailer struct {
	// StoreDir is the store folder, such as /gnu/store.
	StoreDir string
	// Program is the absolute path of the real program, inside StoreDir.
	Program string
}

// Check reports whether t's paths are absolute and clean, the store
// folder is not /, and the program is below it.
func (t Trailer) Check() error {
	switch {
	case !clean(t.StoreDir) || t.StoreDir == "/":
		return errors.New("store folder " + strconv.Quote(t.StoreDir) + ": not an absolute clean path below /")
	case !clean(t.Program) || !strings.HasPrefix(t.Program, t.StoreDir+"/"):
		return errors.New("program " + strconv.Quote(t.Program) + ": not an absolute clean path in the store folder " + t.StoreDir)
	}
	return nil
}

func clean(p string) bool {
	return strings.HasPrefix(p, "/") && path.Clean(p) == p && !strings.ContainsRune(p, 0)
}

// Append returns b followed by t's trailer.
func Append(b []byte, t Trailer) ([]byte, error) {
	if err := t.Check(); err != nil {
		return nil, err
	}
	n := len(t.StoreDir) + len(t.Program) + 2
	if n > maxData {
		return nil, errors.New("program " + strconv.Quote(t.Program) + ": path too long for a trailer")
	}
	out := make([]byte, 0, len(b)+n+int(footerLen))
	out = append(out, b...)
	out = append(out, t.StoreDir...)
	out = append(out, 0)
	out = append(out, t.Program...)
	out = append(out, 0)
	out = binary.LittleEndian.AppendUint32(out, uint32(n))
	return append(out, Magic...), nil
}

// ErrNone is Read's error when the bytes end without a trailer.
var ErrNone = errors.New("no relocatable trailer (" + Magic + ") at the end")

// Read reads the trailer at the end of r, whose size is size. It
// returns ErrNone when there is none.
func Read(r io.ReaderAt, size int64) (Trailer, error) {
	var foot [footerLen]byte
	if size < footerLen {
		return Trailer{}, ErrNone
	}
	if _, err := r.ReadAt(foot[:], size-footerLen); err != nil {
		return Trailer{}, err
	}
	if string(foot[4:]) != Magic {
		return Trailer{}, ErrNone
	}
	n := int64(binary.LittleEndian.Uint32(foot[:4]))
	if n > maxData || n > size-footerLen {
		return Trailer{}, errors.New("relocatable trailer: length " + strconv.FormatInt(n, 10) + " out of range")
	}
	data := make([]byte, n)
	if _, err := r.ReadAt(data, size-footerLen-n); err != nil {
		return Trailer{}, err
	}
	fields := bytes.Split(data, []byte{0})
	if len(fields) != 3 || len(fields[2]) != 0 {
		return Trailer{}, errors.New("relocatable trailer: not two NUL-terminated paths")
	}
	t := Trailer{StoreDir: string(fields[0]), Program: string(fields[1])}
	if err := t.Check(); err != nil {
		return Trailer{}, errors.New("relocatable trailer: " + err.Error())
	}
	return t, nil
}

// Size is the length of t's trailer.
func Size(t Trailer) int { return len(t.StoreDir) + len(t.Program) + 2 + int(footerLen) }
