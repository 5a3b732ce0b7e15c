package plan

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/store"
)

// Tree is a file system tree of store items and the folders, symlinks and
// files around them: what an image layer holds, and what the output of a
// file system tree format holds. Package tree writes it.
type Tree struct {
	// Items are the store items the tree holds, each at its store path,
	// sorted.
	Items []store.Path `json:"items,omitempty"`
	// Entries are the folders, symlinks and files it holds besides the
	// items, sorted by path: the store folder's parents, and the folders,
	// symlinks and files the spec and the format ask for.
	Entries []Entry `json:"entries"`
}

// Entry types.
const (
	EntryDirectory = "directory"
	EntrySymlink   = "symlink"
	// EntryFile is a regular file whose contents are the entry's Content.
	EntryFile = "file"
	// EntryDatabase is the store database registering the tree's closure
	// (every item of the export's system), which the writer makes
	// (store.WriteDB) with the tree's time as registration time.
	EntryDatabase = "database"
)

// Entry is a folder, symlink or file of a tree that is not part of a store
// item.
type Entry struct {
	// Path is absolute, as in the tree: /gnu/store, /bin.
	Path string `json:"path"`
	// Type is one of the Entry types.
	Type string `json:"type"`
	// Mode is the permission bits (with the sticky bit for /tmp).
	Mode Mode `json:"mode"`
	// Target is a symlink's target, verbatim.
	Target string `json:"target,omitempty"`
	// Content is a file's contents.
	Content string `json:"content,omitempty"`
	// UID and GID own the entry (0: root).
	UID int `json:"uid,omitempty"`
	GID int `json:"gid,omitempty"`
}

// Mode is a file mode's permission bits; JSON writes it as an octal string
// such as "0755".
type Mode uint32

// MarshalText writes m in octal with at least four digits.
func (m Mode) MarshalText() ([]byte, error) { return fmt.Appendf(nil, "%04o", uint32(m)), nil }

// UnmarshalText reads an octal mode.
func (m *Mode) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 8, 32)
	if err != nil {
		return fmt.Errorf("mode %q: %w", b, err)
	}
	*m = Mode(v)
	return nil
}

// TreeOutput is the plan of one system's output of a file system tree
// format (tarball, squashfs, deb, rpm): the tree, whose items are the whole
// closure, its time and compression, and a package's metadata.
type TreeOutput struct {
	// Created is the time of the output: every entry's modification time
	// is Created rounded down to the second (MTime), and a database's
	// registration time.
	Created time.Time `json:"created"`
	// Compression is the output's compression, one of the format's.
	Compression format.Compression `json:"compression,omitempty"`
	Tree
	// Package is the package metadata of deb and rpm outputs.
	Package *Package `json:"package,omitempty"`
	// Runtime is the file an output starts with, read from here (an
	// AppImage's runtime), or "".
	Runtime string `json:"runtime,omitempty"`
}

// AppImage is an AppImage's appimage block: its runtime's file, and its
// desktop entry's name and categories.
type AppImage struct {
	Runtime    string   `json:"runtime"`
	Name       string   `json:"name"`
	Categories []string `json:"categories"`
}

// MTime is the modification time of every entry of the tree, in Unix
// seconds: Created rounded down to the second.
func (t *TreeOutput) MTime() int64 { return t.Created.Unix() }

// Package is the metadata of a package (deb, rpm) as the spec's package
// block gives it, with the architecture of its system in the format's
// naming (amd64 for deb, x86_64 for rpm). The description's first line is
// the package's summary; by default it names the closure's roots.
type Package struct {
	Name         string `json:"name"`
	Version      string `json:"version"`
	Release      string `json:"release,omitempty"`
	Architecture string `json:"architecture"`
	Maintainer   string `json:"maintainer,omitempty"`
	Description  string `json:"description,omitempty"`
	License      string `json:"license,omitempty"`
	Homepage     string `json:"homepage,omitempty"`
	Section      string `json:"section,omitempty"`
	Priority     string `json:"priority,omitempty"`
	// Scripts are the package's maintainer scripts.
	Scripts Scripts `json:"scripts,omitzero"`
}

// DefaultInterpreter is the #! line's interpreter of a package script
// given without one: the shell of the host the package is installed on,
// since dpkg and rpm run the scripts there, outside the closure.
const DefaultInterpreter = "/bin/sh"

// Scripts are a package's maintainer scripts, by dpkg's names: preinst,
// postinst, prerm and postrm, which are rpm's %pre, %post, %preun and
// %postun. Each is a whole script starting with its #! line; an empty one
// is not in the package.
type Scripts struct {
	Preinst  string `json:"preinst,omitempty"`
	Postinst string `json:"postinst,omitempty"`
	Prerm    string `json:"prerm,omitempty"`
	Postrm   string `json:"postrm,omitempty"`
}

// Script is one maintainer script of a package and its dpkg name.
type Script struct {
	Name, Text string
}

// List is the scripts present, in the order preinst, postinst, prerm,
// postrm.
func (s *Scripts) List() []Script {
	var out []Script
	for _, c := range []Script{{"preinst", s.Preinst}, {"postinst", s.Postinst}, {"prerm", s.Prerm}, {"postrm", s.Postrm}} {
		if c.Text != "" {
			out = append(out, c)
		}
	}
	return out
}

// SplitInterpreter splits a script at the end of its #! line, as the
// kernel reads one: the interpreter (the first word after "#!", spaces
// and tabs skipped) and, when the line has more, its one argument (the
// rest of the line, trimmed); then the body after the line. ok is false
// when the script does not start with "#!".
func SplitInterpreter(script string) (interp []string, body string, ok bool) {
	rest, ok := strings.CutPrefix(script, "#!")
	if !ok {
		return nil, script, false
	}
	line, body, _ := strings.Cut(rest, "\n")
	line = strings.Trim(line, " \t")
	prog, arg := line, ""
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		prog, arg = line[:i], strings.Trim(line[i:], " \t")
	}
	interp = []string{prog}
	if arg != "" {
		interp = append(interp, arg)
	}
	return interp, body, true
}
