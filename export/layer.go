package export

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/gen"
	"github.com/storepack/storepack/nar"
	"github.com/storepack/storepack/store"
)

// Layer tars are reproducible: their bytes depend only on the layer's plan
// (entries and the store items' contents) and the mtime, never on the
// machine, time zone, umask, owner or mtimes of the files, working folder,
// GOMAXPROCS or map order.
//
//   - Entries come depth first, parents before children, the children of a
//     folder sorted by the bytes of their names (what `tar --sort=name`
//     and NAR serialisation do). Names are relative ("gnu/store/...-x/bin"),
//     folders end with "/".
//   - Every layer holds the store folder's parents (/gnu, /gnu/store, 0755)
//     so it extracts alone: engines that check parents come first accept it.
//   - Every entry has the given mtime, uid and gid 0, no user or group
//     names, no access or change times.
//   - Modes are those a store holds, normalised: folders 0555, regular
//     files 0555 when the owner may execute them else 0444, symlinks 0777
//     with their target verbatim. Hard links are written as regular files.
//     The plan's own entries keep their modes (0755, /tmp 1777, 0777).
//   - The format is PAX (POSIX.1-2001) as archive/tar writes it: a USTAR
//     header (a long name split over its prefix and name fields when it
//     fits them), preceded by a PAX extended header (named
//     "<dir>/PaxHeaders.0/<base>", all its fields zero, records sorted)
//     only when a name or link target does not fit USTAR or is not ASCII.
//
// A layer's length is known before its files are read: LayerSize walks the
// items' metadata (lstat and readdir, no contents) and adds header and
// padded content lengths. That lets a docker archive write each layer's tar
// header first and then stream the layer into it, reading every file once
// and keeping no temporary file.

// layerNode is a node of a layer's tree: a folder or symlink of the plan,
// or the root of a store item read from the file system.
type layerNode struct {
	name     string
	entry    *gen.Entry
	fsPath   string
	item     store.Path // the store item read from fsPath
	children []*layerNode
}

// layerTree builds the tree of l, finding store items through fsPaths.
func layerTree(l *gen.Layer, fsPaths map[store.Path]string) (*layerNode, error) {
	root := &layerNode{entry: &gen.Entry{Path: "/", Type: gen.EntryDirectory}}
	nodes := map[string]*layerNode{"/": root}
	attach := func(p string, n *layerNode) error {
		if _, dup := nodes[p]; dup {
			return fmt.Errorf("%s is in the layer twice", p)
		}
		parent, ok := nodes[path.Dir(p)]
		if !ok || parent.entry == nil || parent.entry.Type != gen.EntryDirectory {
			return fmt.Errorf("%s: its folder %s is not a folder of the layer", p, path.Dir(p))
		}
		nodes[p] = n
		parent.children = append(parent.children, n)
		return nil
	}
	entries := slices.Clone(l.Entries)
	slices.SortFunc(entries, func(a, b gen.Entry) int { return strings.Compare(a.Path, b.Path) })
	for i := range entries {
		e := &entries[i]
		if !path.IsAbs(e.Path) || path.Clean(e.Path) != e.Path || e.Path == "/" {
			return nil, fmt.Errorf("entry %q: not a clean absolute path below /", e.Path)
		}
		if e.Type != gen.EntryDirectory && e.Type != gen.EntrySymlink {
			return nil, fmt.Errorf("entry %s: unknown type %q", e.Path, e.Type)
		}
		if err := attach(e.Path, &layerNode{name: path.Base(e.Path), entry: e}); err != nil {
			return nil, err
		}
	}
	for _, p := range l.Items {
		fsPath, ok := fsPaths[p]
		if !ok || fsPath == "" {
			return nil, fmt.Errorf("store item %s: not in the closure", p)
		}
		if err := attach(string(p), &layerNode{name: p.Base(), fsPath: fsPath, item: p}); err != nil {
			return nil, fmt.Errorf("store item %w", err)
		}
	}
	return root, nil
}

// tarFramer frames the nodes of a store item as layer tar entries named
// below prefix ("gnu/store/...-x"): it is the nar.Framer that the shared
// store walk (nar.Stream, nar.Measure) uses for layers.
type tarFramer struct {
	prefix string
	mtime  int64
	err    error // the first header archive/tar refused
}

func (f *tarFramer) Begin(b []byte, h *nar.Header) []byte {
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

func (f *tarFramer) End(b []byte, h *nar.Header) []byte {
	if h.Type == nar.TypeRegular {
		b = append(b, zeroBlock[:tarPadding(h.Size)]...)
	}
	return b
}

// header appends one entry's header and records archive/tar's error, if
// any.
func (f *tarFramer) header(b []byte, name string, typ byte, mode, size int64, link string) []byte {
	b, err := appendTarHeader(b, name, typ, mode, size, f.mtime, link)
	if err != nil && f.err == nil {
		f.err = err
	}
	return b
}

// zeroBlock pads file contents to whole tar blocks.
var zeroBlock [512]byte

// tarPadding is the number of zero bytes after size bytes of contents.
func tarPadding(size int64) int64 { return -size & 511 }

// appendTarHeader appends the header of one layer entry exactly as
// archive/tar's Writer writes it in the PAX format: a single USTAR block
// when the name and link target are ASCII and fit their fields (built here,
// the common case; TestTarHeaderMatches checks it against archive/tar),
// else whatever archive/tar writes (a PAX extended header, or a name split
// over the prefix field). Entries have uid and gid 0, no user or group
// names and mtime in Unix seconds.
func appendTarHeader(b []byte, name string, typ byte, mode, size, mtime int64, link string) ([]byte, error) {
	const maxOctal11 = 1<<33 - 1
	if len(name) > 100 || len(link) > 100 || !isASCIIName(name) || !isASCIIName(link) || size > maxOctal11 || mtime < 0 || mtime > maxOctal11 {
		var buf bytes.Buffer
		hdr := &tar.Header{Format: tar.FormatPAX, Name: name, Linkname: link, Typeflag: typ, Mode: mode, Size: size, ModTime: time.Unix(mtime, 0)}
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
	octal(blk[108:116], 0) // uid
	octal(blk[116:124], 0) // gid
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

// layerWalk writes (or, measuring, counts) the entries of a layer in tar
// order: the plan's folders and symlinks from its tree, each store item
// through the shared store walk.
type layerWalk struct {
	w       io.Writer // nil when measuring
	mtime   int64
	n       int64 // bytes counted when measuring
	scratch []byte
	// count, when not nil, counts the items written, their planned NAR
	// sizes in sizes.
	count nar.Counter
	sizes map[store.Path]int64
}

func (lw *layerWalk) node(n *layerNode, name string) error {
	if n.fsPath != "" {
		f := &tarFramer{prefix: name, mtime: lw.mtime}
		var err error
		if lw.w == nil {
			var k int64
			k, err = nar.Measure(n.fsPath, f)
			lw.n += k
		} else {
			var k int64
			k, err = nar.Stream(lw.w, n.fsPath, f, lw.count)
			if err == nil && f.err == nil {
				itemDone(lw.count, lw.sizes[n.item], k)
			}
		}
		if err == nil {
			err = f.err
		}
		return err
	}
	if name != "" { // the root itself is not an entry
		var err error
		mode := int64(n.entry.Mode)
		switch n.entry.Type {
		case gen.EntryDirectory:
			lw.scratch, err = appendTarHeader(lw.scratch[:0], name+"/", tar.TypeDir, mode, 0, lw.mtime, "")
		case gen.EntrySymlink:
			lw.scratch, err = appendTarHeader(lw.scratch[:0], name, tar.TypeSymlink, mode, 0, lw.mtime, n.entry.Target)
		}
		if err != nil {
			return err
		}
		if err := lw.emit(lw.scratch); err != nil {
			return err
		}
	}
	slices.SortFunc(n.children, func(a, b *layerNode) int { return strings.Compare(a.name, b.name) })
	for _, c := range n.children {
		if err := lw.node(c, path.Join(name, c.name)); err != nil {
			return err
		}
	}
	return nil
}

func (lw *layerWalk) emit(p []byte) error {
	if lw.w == nil {
		lw.n += int64(len(p))
		return nil
	}
	_, err := lw.w.Write(p)
	return err
}

// walkLayer writes ul's layer tar to w, or counts its bytes when w is
// nil.
func walkLayer(w io.Writer, ul uniqueLayer) (int64, error) {
	root, err := layerTree(ul.layer, ul.fsPaths)
	if err != nil {
		return 0, err
	}
	lw := &layerWalk{w: w, mtime: ul.mtime, count: ul.count, sizes: ul.narSizes}
	if err := lw.node(root, ""); err != nil {
		return 0, err
	}
	if err := lw.emit(zeroBlock[:]); err != nil { // the two zero blocks that end a tar
		return 0, err
	}
	return lw.n, lw.emit(zeroBlock[:])
}

// LayerSize is the length of l's layer tar, computed from the items'
// metadata (folder listings, lstat, symlink targets) without reading their
// contents. mtime is in Unix seconds; fsPaths says where each store item's
// files are.
func LayerSize(l *gen.Layer, mtime int64, fsPaths map[store.Path]string) (int64, error) {
	n, err := walkLayer(nil, uniqueLayer{layer: l, mtime: mtime, fsPaths: fsPaths})
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", l.ID, err)
	}
	return n, nil
}

// WriteLayer writes l's layer tar to w, reading each file once, and
// returns its diff id (sha256 of the tar) and length, computed while
// writing. mtime is in Unix seconds; fsPaths says where each store item's
// files are. A file whose length changes while it is read is an error.
// The files are walked and read ahead in another goroutine (nar.Stream);
// w is only called from the calling goroutine, which also hashes.
func WriteLayer(w io.Writer, l *gen.Layer, mtime int64, fsPaths map[store.Path]string) (digest.Digest, int64, error) {
	return writeLayer(w, uniqueLayer{layer: l, mtime: mtime, fsPaths: fsPaths})
}

// writeLayer is WriteLayer for ul, counting its items on ul.count.
func writeLayer(w io.Writer, ul uniqueLayer) (digest.Digest, int64, error) {
	dw := newDigestWriter(w)
	if _, err := walkLayer(dw, ul); err != nil {
		return "", 0, fmt.Errorf("layer %s: %w", ul.layer.ID, err)
	}
	return dw.digest(), dw.n, nil
}

// digestWriter passes writes on while hashing and counting them.
type digestWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func newDigestWriter(w io.Writer) *digestWriter { return &digestWriter{w: w, h: sha256.New()} }

func (d *digestWriter) Write(p []byte) (int, error) {
	n, err := d.w.Write(p)
	d.h.Write(p[:n])
	d.n += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return n, err
}

func (d *digestWriter) digest() digest.Digest { return digest.NewDigest(digest.SHA256, d.h) }

// closureFS maps each closure item of sys to the place its files are read.
func closureFS(sys *gen.System) map[store.Path]string {
	m := make(map[store.Path]string, len(sys.Closure))
	for i := range sys.Closure {
		m[sys.Closure[i].Path] = sys.Closure[i].FSPath
	}
	return m
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

// byteCounter counts the bytes written to it and drops them.
type byteCounter int64

func (c *byteCounter) Write(p []byte) (int, error) {
	*c += byteCounter(len(p))
	return len(p), nil
}
