package nar_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storepack/storepack/store/nar"
)

// narBuilder assembles NAR bytes token by token, for hand-made archives
// (well formed or not), and remembers the offset of a marked token.
type narBuilder struct {
	b    bytes.Buffer
	mark int64
}

// str appends a string token with zero padding.
func (nb *narBuilder) str(ss ...string) *narBuilder {
	for _, s := range ss {
		nb.u64(uint64(len(s)))
		nb.b.WriteString(s)
		nb.b.Write(make([]byte, (8-len(s)%8)%8))
	}
	return nb
}

// u64 appends a little-endian integer.
func (nb *narBuilder) u64(n uint64) *narBuilder {
	nb.b.Write(binary.LittleEndian.AppendUint64(nil, n))
	return nb
}

// raw appends bytes as they are.
func (nb *narBuilder) raw(p []byte) *narBuilder {
	nb.b.Write(p)
	return nb
}

// here marks the current offset: the token that follows is the one an error
// should point at.
func (nb *narBuilder) here() *narBuilder {
	nb.mark = int64(nb.b.Len())
	return nb
}

// file appends a complete regular-file node.
func (nb *narBuilder) file(contents string, exec bool) *narBuilder {
	nb.str("(", "type", "regular")
	if exec {
		nb.str("executable", "")
	}
	nb.str("contents")
	return nb.str(contents).str(")")
}

// entry appends a folder entry holding a regular file.
func (nb *narBuilder) entry(name, contents string) *narBuilder {
	nb.str("entry", "(", "name", name, "node")
	return nb.file(contents, false).str(")")
}

func (nb *narBuilder) bytes() []byte { return bytes.Clone(nb.b.Bytes()) }

func newNAR() *narBuilder { return new(narBuilder).str(nar.Magic) }

// readAll reads a whole NAR, contents included, and returns the headers.
func readAll(r *nar.Reader) ([]nar.Header, error) {
	var hs []nar.Header
	for {
		h, err := r.Next()
		if err == io.EOF {
			return hs, nil
		}
		if err != nil {
			return hs, err
		}
		hs = append(hs, *h)
		if _, err := io.Copy(io.Discard, r); err != nil {
			return hs, err
		}
	}
}

// writeTree builds the test tree under dir: executables, empty files and
// folders, relative, absolute and dangling symlinks, non-ASCII and long
// names, a hard link, nested folders, names whose byte order differs from
// other orders, and files that cross the dumper's buffer boundaries.
func writeTree(t testing.TB, dir string) {
	t.Helper()
	long := strings.Repeat("long-name-", 22) + "end" // 223 bytes
	files := []struct {
		name string
		data string
		mode os.FileMode
	}{
		{"bin/tool", "#!/bin/sh\necho hi\n", 0o755},
		{"bin/other-tool", "#!/bin/sh\n", 0o700},
		{"empty", "", 0o644},
		{"empty-exec", "", 0o755},
		{"eight", "12345678", 0o644},
		{"share/doc/README", "read me\n", 0o444},
		{"share/doc/héllo wörld ☃ 日本語", "non-ASCII\n", 0o644},
		{"share/" + long, "long\n", 0o644},
		{"order/B", "upper", 0o644},
		{"order/a", "a", 0o644},
		{"order/a-b", "dash", 0o644},
		{"order/a.b", "dot", 0o644},
		{"order/a0", "zero", 0o644},
		{"order/\xc3\xa9", "e-acute", 0o644},
		{"deep/1/2/3/4/5/6/leaf", "leaf\n", 0o644},
		{"big/a", strings.Repeat("0123456789abcdef", 300<<10/16+3), 0o644},
		{"big/b", strings.Repeat("x", 256<<10), 0o755},
		{"big/c", strings.Repeat("y", 1<<20+5), 0o644},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"empty-dir", "deep/1/2/empty"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"link-rel":      "share/doc/README",
		"link-up":       "../outside",
		"link-abs":      "/etc/hostname",
		"link-dangling": "does/not/exist",
		"bin/link-dir":  "../share",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(dir, "bin/tool"), filepath.Join(dir, "hardlink-to-tool")); err != nil {
		t.Fatal(err)
	}
}

// asFormatError extracts a *nar.FormatError or fails the test.
func asFormatError(t *testing.T, err error) *nar.FormatError {
	t.Helper()
	var fe *nar.FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *nar.FormatError", err, err)
	}
	return fe
}
