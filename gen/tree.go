package gen

import (
	"fmt"
	"strconv"

	"github.com/storepack/storepack/store"
)

// Tree is a file system tree of store items and the folders and symlinks
// around them: what an image layer holds (and, for the file system
// formats, what their output holds). Package tree writes it.
type Tree struct {
	// Items are the store items the tree holds, each at its store path,
	// sorted.
	Items []store.Path `json:"items,omitempty"`
	// Entries are the folders and symlinks it holds besides the items,
	// sorted by path: the store folder's parents, and the folders and
	// symlinks the spec asks for.
	Entries []Entry `json:"entries"`
}

// Entry types.
const (
	EntryDirectory = "directory"
	EntrySymlink   = "symlink"
)

// Entry is a folder or symlink of a tree that is not part of a store item.
type Entry struct {
	// Path is absolute, as in the tree: /gnu/store, /bin.
	Path string `json:"path"`
	// Type is EntryDirectory or EntrySymlink.
	Type string `json:"type"`
	// Mode is the permission bits (with the sticky bit for /tmp).
	Mode Mode `json:"mode"`
	// Target is a symlink's target, verbatim.
	Target string `json:"target,omitempty"`
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
