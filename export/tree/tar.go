// Package tree writes the file system trees of a plan (plan.Tree: store
// items at their store paths, with folders and symlinks around them) as
// tar archives: the layers of images, and the file system formats.
//
// Tars are reproducible: their bytes depend only on the tree (entries and
// the store items' contents) and the mtime, never on the machine, time
// zone, umask, owner or mtimes of the files, working folder, GOMAXPROCS or
// map order.
//
//   - Entries come depth first, parents before children, the children of a
//     folder sorted by the bytes of their names (what `tar --sort=name`
//     and NAR serialisation do). Names are relative ("gnu/store/...-x/bin"),
//     folders end with "/".
//   - Every layer holds the store folder's parents (/gnu, /gnu/store, 0755)
//     so it extracts alone: engines that check parents come first accept it.
//   - Every entry has the given mtime, uid and gid 0 (but the plan's own
//     entries that an account or file block owns: their uid and gid), no
//     user or group names, no access or change times.
//   - Modes are those a store holds, normalised: folders 0555, regular
//     files 0555 when the owner may execute them else 0444, symlinks 0777
//     with their target verbatim. Hard links are written as regular files.
//     The plan's own entries keep their modes (0755, /tmp 1777, 0777), and
//     its files their contents; a database entry holds the store database
//     of the closure (Source.DB, from StoreDB).
//   - The format is PAX (POSIX.1-2001) as archive/tar writes it (or, with
//     Source.GNU, GNU tar's long names where PAX would be needed): a USTAR
//     header (a long name split over its prefix and name fields when it
//     fits them), preceded by a PAX extended header (named
//     "<dir>/PaxHeaders.0/<base>", all its fields zero, records sorted)
//     only when a name or link target does not fit USTAR or is not ASCII.
//
// A tar's length is known before its files are read: Size walks the
// items' metadata (lstat and readdir, no contents) and adds header and
// padded content lengths. That lets a docker archive write each layer's tar
// header first and then stream the layer into it, reading every file once
// and keeping no temporary file.
//
// The writer is our own rather than archive/tar's: the store walk is
// shared with NAR serialisation (nar.Stream with a Framer, one pass per
// item, files read ahead on another goroutine), and the common headers are
// built in place (appendHeader, checked byte for byte against archive/tar,
// which still writes the rare ones).
package tree

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/nar"
)

// Source is what writing a tree needs besides the tree: where its store
// items are read from, how reading them is counted, the contents of its
// database and how its names start.
type Source struct {
	// Items are the closure's items by path (plan.Items): their FSPath
	// says where their files are, their NarSize what Counter expects.
	Items map[store.Path]*plan.Item
	// Counter, when not nil, counts the items as they are written: the
	// bytes as they are read, then each item's planned NAR size.
	Counter nar.Counter
	// DB is the contents of the tree's database entry (StoreDB of Items),
	// when it has one: WithDB sets it.
	DB []byte
	// Prefix, when set ("./", as a deb's data.tar has it), starts every
	// name, and the tar then starts with that folder (0755).
	Prefix string
	// GNU writes the headers USTAR cannot hold (long or non-ASCII names
	// and link targets) as GNU tar does, with long-name entries, instead
	// of PAX extended headers: dpkg reads no PAX.
	GNU bool
}

// WithDB returns src with DB set to the store database of src.Items
// registered at mtime (Unix seconds) when t has a database entry, else
// src as it is.
func (src Source) WithDB(t *plan.Tree, mtime int64) (Source, error) {
	if src.DB != nil || !slices.ContainsFunc(t.Entries, func(e plan.Entry) bool { return e.Type == plan.EntryDatabase }) {
		return src, nil
	}
	db, err := StoreDB(src.Items, mtime)
	if err != nil {
		return src, err
	}
	src.DB = db
	return src, nil
}

// Size is the length of t's tar with every entry's mtime set to mtime
// (Unix seconds), computed from the items' metadata (folder listings,
// lstat, symlink targets) without reading their contents.
func Size(t *plan.Tree, mtime int64, src Source) (int64, error) {
	return walk(nil, t, mtime, src)
}

// WriteTar writes t's tar to w, every entry's mtime set to mtime (Unix
// seconds), reading each file once, and returns its length. A file whose
// length changes while it is read is an error. The files are walked and
// read ahead in another goroutine (nar.Stream); w is only called from the
// calling goroutine.
func WriteTar(w io.Writer, t *plan.Tree, mtime int64, src Source) (int64, error) {
	return walk(w, t, mtime, src)
}

// Padding is the number of zero bytes tar puts after size bytes of a
// file's contents, to fill its last 512-byte block.
func Padding(size int64) int64 { return -size & 511 }

// node is a node of a tree: a folder or symlink of the plan, or the root of
// a store item read from the file system.
type node struct {
	name     string
	entry    *plan.Entry
	fsPath   string
	item     store.Path // the store item read from fsPath
	children []*node
}

// build builds the tree of t, finding store items in items.
func build(t *plan.Tree, items map[store.Path]*plan.Item) (*node, error) {
	root := &node{entry: &plan.Entry{Path: "/", Type: plan.EntryDirectory}}
	nodes := map[string]*node{"/": root}
	attach := func(p string, n *node) error {
		if _, dup := nodes[p]; dup {
			return fmt.Errorf("%s is in the tree twice", p)
		}
		parent, ok := nodes[path.Dir(p)]
		if !ok || parent.entry == nil || parent.entry.Type != plan.EntryDirectory {
			return fmt.Errorf("%s: its folder %s is not a folder of the tree", p, path.Dir(p))
		}
		nodes[p] = n
		parent.children = append(parent.children, n)
		return nil
	}
	entries := slices.Clone(t.Entries)
	slices.SortFunc(entries, func(a, b plan.Entry) int { return strings.Compare(a.Path, b.Path) })
	for i := range entries {
		e := &entries[i]
		if !path.IsAbs(e.Path) || path.Clean(e.Path) != e.Path || e.Path == "/" {
			return nil, fmt.Errorf("entry %q: not a clean absolute path below /", e.Path)
		}
		switch e.Type {
		case plan.EntryDirectory, plan.EntrySymlink, plan.EntryFile, plan.EntryDatabase:
		default:
			return nil, fmt.Errorf("entry %s: unknown type %q", e.Path, e.Type)
		}
		if err := attach(e.Path, &node{name: path.Base(e.Path), entry: e}); err != nil {
			return nil, err
		}
	}
	for _, p := range t.Items {
		it, ok := items[p]
		if !ok || it.FSPath == "" {
			return nil, fmt.Errorf("store item %s: not in the closure", p)
		}
		if err := attach(string(p), &node{name: p.Base(), fsPath: it.FSPath, item: p}); err != nil {
			return nil, fmt.Errorf("store item %w", err)
		}
	}
	return root, nil
}

// framer frames the nodes of a store item as tar entries named below
// prefix ("gnu/store/...-x"): it is the nar.Framer that the shared store
// walk (nar.Stream, nar.Measure) uses for trees.
type framer struct {
	prefix string
	mtime  int64
	long   tar.Format // the format of headers USTAR cannot hold
	err    error      // the first header archive/tar refused
}

func (f *framer) Begin(b []byte, h *nar.Header) []byte {
	name := f.prefix
	if h.Path != "/" {
		name += h.Path
	}
	switch h.Type {
	case nar.TypeRegular:
		mode := int64(0o444)
		if h.Executable {
			mode = 0o555
		}
		return f.header(b, name, tar.TypeReg, mode, h.Size, "")
	case nar.TypeSymlink:
		return f.header(b, name, tar.TypeSymlink, 0o777, 0, h.LinkTarget)
	default:
		return f.header(b, name+"/", tar.TypeDir, 0o555, 0, "")
	}
}

func (f *framer) End(b []byte, h *nar.Header) []byte {
	if h.Type == nar.TypeRegular {
		b = append(b, zeroBlock[:Padding(h.Size)]...)
	}
	return b
}

// header appends one entry's header and records archive/tar's error, if
// any.
func (f *framer) header(b []byte, name string, typ byte, mode, size int64, link string) []byte {
	b, err := appendHeader(b, name, typ, mode, Owner{}, size, f.mtime, link, f.long)
	if err != nil && f.err == nil {
		f.err = err
	}
	return b
}

// Owner is the uid and gid of an entry.
type Owner struct{ UID, GID int }

// zeroBlock pads file contents to whole tar blocks.
var zeroBlock [512]byte

// appendHeader appends the header of one entry exactly as archive/tar's
// Writer writes it in the PAX format: a single USTAR block when the name
// and link target are ASCII and fit their fields (built here, the common
// case; TestHeaderMatches checks it against archive/tar), else whatever
// archive/tar writes (a PAX extended header, or a name split over the
// prefix field). Entries have owner's uid and gid (0 but for the plan's
// own entries that say otherwise), no user or group names and mtime in
// Unix seconds.
func appendHeader(b []byte, name string, typ byte, mode int64, owner Owner, size, mtime int64, link string, long tar.Format) ([]byte, error) {
	const maxOctal11 = 1<<33 - 1
	const maxOctal7 = 1<<21 - 1
	if len(name) > 100 || len(link) > 100 || !isASCIIName(name) || !isASCIIName(link) || size > maxOctal11 || mtime < 0 || mtime > maxOctal11 ||
		owner.UID > maxOctal7 || owner.GID > maxOctal7 {
		var buf bytes.Buffer
		hdr := &tar.Header{Format: long, Name: name, Linkname: link, Typeflag: typ, Mode: mode, Uid: owner.UID, Gid: owner.GID, Size: size, ModTime: time.Unix(mtime, 0)}
		if err := tar.NewWriter(&buf).WriteHeader(hdr); err != nil {
			return b, fmt.Errorf("%s: %w", name, err)
		}
		return append(b, buf.Bytes()...), nil
	}
	start := len(b)
	b = append(b, zeroBlock[:]...)
	blk := b[start:]
	copy(blk[0:100], name)
	octal(blk[100:108], mode)
	octal(blk[108:116], int64(owner.UID))
	octal(blk[116:124], int64(owner.GID))
	octal(blk[124:136], size)
	octal(blk[136:148], mtime)
	blk[156] = typ
	copy(blk[157:257], link)
	copy(blk[257:263], "ustar\x00")
	copy(blk[263:265], "00")
	octal(blk[329:337], 0) // devmajor
	octal(blk[337:345], 0) // devminor
	sum := int64(8 * ' ')  // the checksum field counts as spaces
	for i, c := range blk {
		if i < 148 || i >= 156 {
			sum += int64(c)
		}
	}
	octal(blk[148:155], sum)
	blk[155] = ' '
	return b, nil
}

// octal writes x into field as archive/tar does: zero-padded octal digits
// filling all but the last byte, which stays NUL.
func octal(field []byte, x int64) {
	for i := len(field) - 2; i >= 0; i-- {
		field[i] = byte('0' + x&7)
		x >>= 3
	}
}

// isASCIIName reports whether s is ASCII without NUL.
func isASCIIName(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 || s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// walker writes (or, measuring, counts) the entries of a tree in tar
// order: the plan's folders and symlinks from its nodes, each store item
// through the shared store walk.
type walker struct {
	w       io.Writer // nil when measuring
	mtime   int64
	n       int64 // bytes written, or counted when measuring
	scratch []byte
	src     Source
	long    tar.Format // the format of headers USTAR cannot hold
}

// walk writes t's tar to w and returns its length, or, when w is nil,
// counts its bytes.
func walk(w io.Writer, t *plan.Tree, mtime int64, src Source) (int64, error) {
	root, err := build(t, src.Items)
	if err != nil {
		return 0, err
	}
	tw := &walker{w: w, mtime: mtime, src: src, long: tar.FormatPAX}
	if src.GNU {
		tw.long = tar.FormatGNU
	}
	if src.Prefix != "" {
		if !strings.HasSuffix(src.Prefix, "/") {
			return 0, fmt.Errorf("tar name prefix %q does not end with /", src.Prefix)
		}
		tw.scratch, err = appendHeader(tw.scratch[:0], src.Prefix, tar.TypeDir, 0o755, Owner{}, 0, tw.mtime, "", tw.long)
		if err == nil {
			err = tw.emit(tw.scratch)
		}
	}
	if err == nil {
		err = tw.node(root, "")
	}
	for range 2 { // the two zero blocks that end a tar
		if err == nil {
			err = tw.emit(zeroBlock[:])
		}
	}
	return tw.n, err
}

func (tw *walker) node(n *node, rel string) error {
	name := tw.src.Prefix + rel
	if n.fsPath != "" {
		f := &framer{prefix: name, mtime: tw.mtime, long: tw.long}
		var err error
		var k int64
		if tw.w == nil {
			k, err = nar.Measure(n.fsPath, f)
		} else {
			k, err = nar.Stream(tw.w, n.fsPath, f, tw.src.Counter)
			if err == nil && f.err == nil {
				nar.ItemDone(tw.src.Counter, tw.src.Items[n.item].NarSize, k)
			}
		}
		tw.n += k
		if err == nil {
			err = f.err
		}
		return err
	}
	if rel != "" { // the root itself is not an entry
		var err error
		var content []byte
		mode := int64(n.entry.Mode)
		owner := Owner{n.entry.UID, n.entry.GID}
		switch n.entry.Type {
		case plan.EntryDirectory:
			tw.scratch, err = appendHeader(tw.scratch[:0], name+"/", tar.TypeDir, mode, owner, 0, tw.mtime, "", tw.long)
		case plan.EntrySymlink:
			tw.scratch, err = appendHeader(tw.scratch[:0], name, tar.TypeSymlink, mode, owner, 0, tw.mtime, n.entry.Target, tw.long)
		case plan.EntryFile, plan.EntryDatabase:
			content = []byte(n.entry.Content)
			if n.entry.Type == plan.EntryDatabase {
				if tw.src.DB == nil {
					return fmt.Errorf("%s: the store database was not made (Source.WithDB)", n.entry.Path)
				}
				content = tw.src.DB
			}
			tw.scratch, err = appendHeader(tw.scratch[:0], name, tar.TypeReg, mode, owner, int64(len(content)), tw.mtime, "", tw.long)
			tw.scratch = append(tw.scratch, content...)
			tw.scratch = append(tw.scratch, zeroBlock[:Padding(int64(len(content)))]...)
		}
		if err != nil {
			return err
		}
		if err := tw.emit(tw.scratch); err != nil {
			return err
		}
	}
	slices.SortFunc(n.children, func(a, b *node) int { return strings.Compare(a.name, b.name) })
	for _, c := range n.children {
		if err := tw.node(c, path.Join(rel, c.name)); err != nil {
			return err
		}
	}
	return nil
}

func (tw *walker) emit(p []byte) error {
	if tw.w == nil {
		tw.n += int64(len(p))
		return nil
	}
	n, err := tw.w.Write(p)
	tw.n += int64(n)
	return err
}
