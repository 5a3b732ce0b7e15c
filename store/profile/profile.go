// Package profile builds profiles as guix pack and Nix make them: the
// union of several store items' trees as a symlink forest (Guix's
// union-build, Nix's buildEnv), with an etc/profile that sets the search
// paths of what it holds, added to the store as a content-addressed item.
//
// The union of inputs, in order:
//
//   - an entry that one input alone has is one symlink to that input's
//     file or folder;
//   - a folder that several inputs have (a symlink to a folder counts as
//     one, as stat sees it) is a real folder whose entries are united the
//     same way;
//   - the same name from several inputs where one is not a folder is a
//     collision, unless they are the same (files of equal bytes and modes,
//     or symlinks with equal targets), or Options.AllowCollisions says the
//     first input wins.
//
// etc/profile names the profile's own store path, so the item refers to
// itself: it is content-addressed as `nix store make-content-addressed`
// addresses such an item (Path). Links are absolute, to the inputs' store
// paths, as in Guix and Nix profiles.
//
// The profile is written once into a cache folder, named by its store
// path, from where the writers read it as they read the store. It is hand
// written: no library builds Nix profiles outside Nix.
package profile

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/storepack/storepack/internal/atomicfile"
	"github.com/storepack/storepack/internal/countw"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/nar"
)

// Name is the profile item's name: its store path ends with "-profile".
const Name = "profile"

// Input is one of the store items a profile unites.
type Input struct {
	// Path is the item's store path; FSPath where its files are read.
	Path   store.Path
	FSPath string
}

// Options adjust Build.
type Options struct {
	// AllowCollisions makes the first input win where inputs collide.
	AllowCollisions bool
	// Resolve gives where the files of a store item are read (its FSPath),
	// for symlinks of the inputs that point into other items; false when
	// the item is unknown (the symlink is then taken as a file). It is
	// called from several goroutines at once.
	Resolve func(store.Path) (string, bool)
	// Wrap, when set, gives the file that stands for each program of the
	// profile's bin, sbin and libexec (an executable regular file, as the
	// link to it leads), given the program's store path: a relocatable
	// pack's wrapper (export/relocate). Folders there are made real.
	Wrap func(program string) ([]byte, error)
}

// WrapDirs are the folders of a profile whose programs Options.Wrap
// wraps.
var WrapDirs = []string{"bin", "sbin", "libexec"}

// Profile is a profile built into the cache.
type Profile struct {
	// Path is the profile's store path; FSPath the folder holding it.
	Path   store.Path
	FSPath string
	// NarHash and NarSize are its NAR's sha256 and length.
	NarHash [32]byte
	NarSize int64
	// References are the inputs it links to and itself, sorted.
	References []store.Path
	// Vars are the search paths its etc/profile exports, in the order of
	// SearchPaths.
	Vars []Var
}

// Var is one variable etc/profile sets: to Dirs inside the profile.
type Var struct {
	Name string
	// Dirs are relative to the profile.
	Dirs []string
	// Prefix says the value goes before what the variable held, joined
	// by ':'; otherwise it replaces it.
	Prefix bool
}

// Value is v's value for the profile at p (without the earlier value).
func (v Var) Value(p store.Path) string {
	var parts []string
	for _, d := range v.Dirs {
		parts = append(parts, string(p)+"/"+d)
	}
	return strings.Join(parts, ":")
}

// SearchPaths are the variables an etc/profile may set and the folders
// (or files) of the profile they name, each set when one of its folders
// exists.
var SearchPaths = []Var{
	{"PATH", []string{"bin", "sbin"}, true},
	{"XDG_DATA_DIRS", []string{"share"}, true},
	{"XDG_CONFIG_DIRS", []string{"etc/xdg"}, true},
	{"MANPATH", []string{"share/man"}, true},
	{"INFOPATH", []string{"share/info"}, true},
	{"PKG_CONFIG_PATH", []string{"lib/pkgconfig", "share/pkgconfig"}, true},
	{"ACLOCAL_PATH", []string{"share/aclocal"}, true},
	{"TERMINFO_DIRS", []string{"share/terminfo"}, true},
	{"GUIX_LOCPATH", []string{"lib/locale"}, true},
	{"SSL_CERT_DIR", []string{"etc/ssl/certs"}, false},
	{"SSL_CERT_FILE", []string{"etc/ssl/certs/ca-certificates.crt"}, false},
}

// CollisionError is two inputs providing the same file.
type CollisionError struct {
	// Rel is the file's path inside the profile.
	Rel           string
	First, Second store.Path
}

func (e *CollisionError) Error() string {
	return fmt.Sprintf("profile: %s and %s both provide %s (allow_collisions = true in the profile block lets the first win)", e.First, e.Second, e.Rel)
}

// node is an entry of the union: a real folder (children), a symlink to
// an input's entry (src), the generated etc/profile (file), or a wrapped
// program (data).
type node struct {
	children map[string]*node
	src      *entry
	file     bool
	data     []byte
}

// entry is a file or folder of an input.
type entry struct {
	input  int
	target string // the link text: the input's store path and the path in it
	fsPath string // where it is read (a symlink to a folder resolved)
	dir    bool
}

type builder struct {
	dir    store.Dir
	inputs []Input
	o      Options
	used   map[int]bool
}

// Build unites inputs (store items that are folders) into a profile in
// the store folder storeDir, written into cacheDir unless it is already
// there, and returns it.
func Build(storeDir store.Dir, inputs []Input, cacheDir string, o Options) (*Profile, error) {
	if len(inputs) == 0 {
		return nil, errors.New("profile: no paths to unite")
	}
	b := &builder{dir: storeDir, inputs: inputs, o: o, used: map[int]bool{}}
	var tops []entry // read by merge, which refuses files
	for i, in := range inputs {
		tops = append(tops, entry{input: i, target: string(in.Path), fsPath: in.FSPath, dir: true})
	}
	root, err := b.merge("", tops)
	if err != nil {
		return nil, err
	}
	if err := b.addEtcProfile(root); err != nil {
		return nil, err
	}
	if o.Wrap != nil {
		for _, d := range WrapDirs {
			if c := root.children[d]; c != nil {
				w, err := b.wrap(d, c)
				if err != nil {
					return nil, err
				}
				root.children[d] = w
			}
		}
	}
	vars := b.vars(root)
	return b.write(root, vars, cacheDir)
}

// merge unites the folders srcs at rel.
func (b *builder) merge(rel string, srcs []entry) (*node, error) {
	lists, err := b.readAll(srcs)
	if err != nil {
		return nil, err
	}
	byName := map[string][]entry{}
	for _, l := range lists {
		for _, e := range l {
			name := e.target[strings.LastIndexByte(e.target, '/')+1:]
			byName[name] = append(byName[name], e)
		}
	}
	n := &node{children: map[string]*node{}}
	for name, es := range byName {
		r := path.Join(rel, name)
		if len(es) == 1 {
			n.children[name] = b.link(es[0])
			continue
		}
		if !slices.ContainsFunc(es, func(e entry) bool { return !e.dir }) {
			c, err := b.merge(r, es)
			if err != nil {
				return nil, err
			}
			n.children[name] = c
			continue
		}
		for _, e := range es[1:] {
			if b.o.AllowCollisions || same(es[0], e) {
				continue
			}
			return nil, &CollisionError{Rel: r, First: b.inputs[es[0].input].Path, Second: b.inputs[e.input].Path}
		}
		n.children[name] = b.link(es[0])
	}
	return n, nil
}

// readAll reads the folders srcs (by several goroutines when there are
// many: a profile of many inputs reads as many folders at each level) and
// returns the entries of each, in the order of srcs.
func (b *builder) readAll(srcs []entry) ([][]entry, error) {
	lists := make([][]entry, len(srcs))
	errs := make([]error, len(srcs))
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= len(srcs) {
				return
			}
			lists[i], errs[i] = b.read(srcs[i])
		}
	}
	if workers := min(ioWorkers, len(srcs)/16); workers > 1 {
		var wg sync.WaitGroup
		for range workers {
			wg.Go(work)
		}
		wg.Wait()
	} else {
		work()
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return lists, nil
}

// read is the entries of the folder s; a symlink to a folder (resolved)
// counts as one.
func (b *builder) read(s entry) ([]entry, error) {
	des, err := os.ReadDir(s.fsPath)
	if in := b.inputs[s.input].Path; err != nil && s.target == string(in) { // an input itself
		if errors.Is(err, syscall.ENOTDIR) {
			return nil, fmt.Errorf("profile: %s is a file, not a folder: a profile unites folders", in)
		}
		return nil, fmt.Errorf("profile: %s: %w", in, err)
	}
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	out := make([]entry, 0, len(des))
	for _, de := range des {
		p := filepath.Join(s.fsPath, de.Name())
		e := entry{input: s.input, target: s.target + "/" + de.Name(), fsPath: p}
		if de.Type()&fs.ModeSymlink != 0 {
			if r, ok := b.resolve(p); ok {
				if fi, err := os.Stat(r); err == nil && fi.IsDir() {
					e.dir, e.fsPath = true, r
				}
			}
		} else {
			e.dir = de.IsDir()
		}
		out = append(out, e)
	}
	return out, nil
}

// link is a symlink node to e, whose input the profile then refers to.
func (b *builder) link(e entry) *node {
	b.used[e.input] = true
	return &node{src: &e}
}

// resolve follows the symlink at p (a few levels), mapping absolute
// targets in the store folder to their items' files.
func (b *builder) resolve(p string) (string, bool) {
	for range 8 {
		t, err := os.Readlink(p)
		if err != nil {
			return p, true
		}
		switch {
		case strings.HasPrefix(t, string(b.dir)+"/"):
			item, rest, err := b.dir.ParseInside(t)
			if err != nil || b.o.Resolve == nil {
				return "", false
			}
			fsPath, ok := b.o.Resolve(item)
			if !ok {
				return "", false
			}
			p = filepath.Join(fsPath, rest)
		case filepath.IsAbs(t):
			return "", false // outside the store: not the pack's
		default:
			p = filepath.Join(filepath.Dir(p), t)
		}
	}
	return "", false
}

// same reports whether two non-folder entries are the same: equal link
// targets, or regular files of equal bytes and executable bits.
func same(a, b entry) bool {
	la, ea := os.Readlink(a.fsPath)
	lb, eb := os.Readlink(b.fsPath)
	if ea == nil || eb == nil {
		return ea == nil && eb == nil && la == lb
	}
	fa, err1 := os.Stat(a.fsPath)
	fb, err2 := os.Stat(b.fsPath)
	if err1 != nil || err2 != nil || !fa.Mode().IsRegular() || !fb.Mode().IsRegular() ||
		fa.Size() != fb.Size() || fa.Mode()&0o100 != fb.Mode()&0o100 {
		return false
	}
	x, err1 := os.ReadFile(a.fsPath)
	y, err2 := os.ReadFile(b.fsPath)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// addEtcProfile puts the generated etc/profile into the union: etc is
// made a real folder (a link to one input's etc is replaced by links to
// its entries).
func (b *builder) addEtcProfile(root *node) error {
	etc := root.children["etc"]
	switch {
	case etc == nil:
		etc = &node{children: map[string]*node{}}
		root.children["etc"] = etc
	case etc.src != nil && etc.src.dir:
		expanded, err := b.merge("etc", []entry{*etc.src})
		if err != nil {
			return err
		}
		etc = expanded
		root.children["etc"] = etc
	case etc.src != nil:
		return fmt.Errorf("profile: %s provides etc as a file, where etc/profile goes", b.inputs[etc.src.input].Path)
	}
	if p := etc.children["profile"]; p != nil && p.src != nil && !b.o.AllowCollisions {
		return fmt.Errorf("profile: %s provides etc/profile, where the profile writes its search paths (allow_collisions = true lets the profile's own win)", b.inputs[p.src.input].Path)
	}
	etc.children["profile"] = &node{file: true}
	return nil
}

// wrap replaces each program under n (at rel) by Options.Wrap's file:
// links to folders become real folders, links to executable regular files
// wrapped programs; other entries stay links.
func (b *builder) wrap(rel string, n *node) (*node, error) {
	if n.src != nil && !n.src.dir {
		r, ok := b.resolve(n.src.fsPath)
		if !ok {
			return n, nil
		}
		fi, err := os.Stat(r)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
			return n, nil
		}
		data, err := b.o.Wrap(n.src.target)
		if err != nil {
			return nil, fmt.Errorf("profile: %s: %w", rel, err)
		}
		b.used[n.src.input] = true
		return &node{data: data}, nil
	}
	if n.src != nil {
		expanded, err := b.merge(rel, []entry{*n.src})
		if err != nil {
			return nil, err
		}
		n = expanded
	}
	if n.children == nil {
		return n, nil
	}
	for name, c := range n.children {
		w, err := b.wrap(path.Join(rel, name), c)
		if err != nil {
			return nil, err
		}
		n.children[name] = w
	}
	return n, nil
}

// vars are the search paths with a folder (or file) in the union.
func (b *builder) vars(root *node) []Var {
	var out []Var
	for _, v := range SearchPaths {
		var dirs []string
		for _, d := range v.Dirs {
			if exists(root, d) {
				dirs = append(dirs, d)
			}
		}
		if len(dirs) > 0 {
			out = append(out, Var{Name: v.Name, Dirs: dirs, Prefix: v.Prefix})
		}
	}
	return out
}

// exists reports whether rel is in the union.
func exists(n *node, rel string) bool {
	for i, part := range strings.Split(rel, "/") {
		if n.src != nil {
			rest := strings.Join(strings.Split(rel, "/")[i:], "/")
			_, err := os.Stat(filepath.Join(n.src.fsPath, rest))
			return err == nil
		}
		c, ok := n.children[part]
		if !ok {
			return false
		}
		n = c
	}
	if n.src != nil {
		_, err := os.Stat(n.src.fsPath)
		return err == nil
	}
	return true
}

// etcProfile is etc/profile for the profile at p.
func etcProfile(p store.Path, vars []Var) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# The search paths of the profile %s: source this file\n# (. %s/etc/profile) from sh or bash.\n", p, p)
	for _, v := range vars {
		if v.Prefix {
			fmt.Fprintf(&b, "export %s=\"%s${%s:+:}$%s\"\n", v.Name, v.Value(p), v.Name, v.Name)
		} else {
			fmt.Fprintf(&b, "export %s=\"%s\"\n", v.Name, v.Value(p))
		}
	}
	return []byte(b.String())
}

// write computes the profile's store path and NAR from the union in
// memory: its NAR with a placeholder path in etc/profile gives the store
// path modulo that placeholder (Path), and its NAR with the final path
// the NAR hash. It writes the union into cacheDir, first in a temporary
// folder renamed to the path's base name, unless a profile of that name
// is already there (renamed there whole, so complete).
func (b *builder) write(root *node, vars []Var, cacheDir string) (*Profile, error) {
	placeholder := b.dir.Join(strings.Repeat("0", store.HashLen) + "-" + Name)
	var refs []store.Path
	for i := range b.inputs {
		if b.used[i] {
			refs = append(refs, b.inputs[i].Path)
		}
	}
	refs = slices.Compact(store.SortPaths(refs))
	mh := NewModuloHash(placeholder.HashPart())
	if _, err := dumpNAR(mh, root, etcProfile(placeholder, vars)); err != nil {
		return nil, err
	}
	modulo := mh.Sum()
	final, err := b.dir.SourcePath(modulo[:], Name, refs, true)
	if err != nil {
		return nil, err
	}
	profile := etcProfile(final, vars)
	h := sha256.New()
	narSize, err := dumpNAR(h, root, profile)
	if err != nil {
		return nil, err
	}
	var narHash [32]byte
	h.Sum(narHash[:0])
	fsPath := filepath.Join(cacheDir, final.Base())
	if _, err := os.Lstat(fsPath); err != nil {
		if err := writeInto(cacheDir, fsPath, root, profile); err != nil {
			return nil, err
		}
	}
	return &Profile{Path: final, FSPath: fsPath, NarHash: narHash, NarSize: narSize,
		References: store.SortPaths(append(refs, final)), Vars: vars}, nil
}

// writeInto writes the union at fsPath, in cacheDir: into a temporary
// folder there, renamed to fsPath unless another run put it there first.
func writeInto(cacheDir, fsPath string, root *node, profile []byte) error {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	tmp, err := os.MkdirTemp(cacheDir, atomicfile.UnnamedPattern("profile"))
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "p")
	if err := writeNode(dir, root, profile); err != nil {
		return err
	}
	if err := os.Rename(dir, fsPath); err != nil && !errors.Is(err, fs.ErrExist) && !errors.Is(err, os.ErrExist) {
		if _, serr := os.Stat(fsPath); serr != nil {
			return fmt.Errorf("profile: %w", err)
		}
	}
	return nil
}

// dumpNAR writes the NAR of the union, etc/profile holding profile, to w
// and returns its length: the bytes nar.Dump gives of the folder
// writeNode writes.
func dumpNAR(w io.Writer, root *node, profile []byte) (int64, error) {
	cw := &countw.Writer{W: w}
	nw := nar.NewWriter(cw)
	if err := dumpNode(nw, "/", root, profile); err != nil {
		return 0, fmt.Errorf("profile: %w", err)
	}
	if err := nw.Close(); err != nil {
		return 0, fmt.Errorf("profile: %w", err)
	}
	return cw.N, nil
}

// dumpNode writes n, at p in the NAR, and what is under it to w.
func dumpNode(w *nar.Writer, p string, n *node, profile []byte) error {
	switch {
	case n.src != nil:
		return w.WriteHeader(&nar.Header{Path: p, Type: nar.TypeSymlink, LinkTarget: n.src.target})
	case n.file || n.data != nil:
		data, exec := n.data, true
		if n.file {
			data, exec = profile, false
		}
		if err := w.WriteHeader(&nar.Header{Path: p, Type: nar.TypeRegular, Executable: exec, Size: int64(len(data))}); err != nil {
			return err
		}
		_, err := w.Write(data)
		return err
	}
	if err := w.WriteHeader(&nar.Header{Path: p, Type: nar.TypeDirectory}); err != nil {
		return err
	}
	names := slices.Sorted(maps.Keys(n.children))
	prefix := strings.TrimSuffix(p, "/") + "/"
	for _, name := range names {
		if err := dumpNode(w, prefix+name, n.children[name], profile); err != nil {
			return err
		}
	}
	return nil
}

// ioWorkers is how many goroutines read a profile's input folders (when
// there are many) and create its links and files: creating them is most
// of the cost of writing a large profile (an ext4 symlink whose target
// does not fit its inode, as a store path does not, takes a block of its
// own), and the kernel reads and creates entries of different folders at
// the same time.
var ioWorkers = max(2, runtime.GOMAXPROCS(0))

// leaf is a link or file of the union to create, at p.
type leaf struct {
	p string
	n *node
}

// writeNode writes n at p: folders 0755 (made first, in order), then
// etc/profile 0444, wrapped programs 0555 and symlinks, split into runs of
// consecutive entries (mostly of the same folder) among ioWorkers
// goroutines.
func writeNode(p string, n *node, profile []byte) error {
	var leaves []leaf
	var dirs func(p string, n *node) error
	dirs = func(p string, n *node) error {
		if n.src != nil || n.file || n.data != nil {
			leaves = append(leaves, leaf{p, n})
			return nil
		}
		if err := os.Mkdir(p, 0o755); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
		for _, name := range slices.Sorted(maps.Keys(n.children)) {
			if err := dirs(filepath.Join(p, name), n.children[name]); err != nil {
				return err
			}
		}
		return nil
	}
	if err := dirs(p, n); err != nil {
		return err
	}
	workers := min(ioWorkers, (len(leaves)+63)/64)
	if workers <= 1 {
		return writeLeaves(leaves, profile)
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		part := leaves[w*len(leaves)/workers : (w+1)*len(leaves)/workers]
		wg.Go(func() { errs[w] = writeLeaves(part, profile) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// writeLeaves creates the links and files ls.
func writeLeaves(ls []leaf, profile []byte) error {
	for _, l := range ls {
		var err error
		switch {
		case l.n.src != nil:
			err = os.Symlink(l.n.src.target, l.p)
		case l.n.file:
			err = os.WriteFile(l.p, profile, 0o444)
		default:
			err = os.WriteFile(l.p, l.n.data, 0o555)
		}
		if err != nil {
			return fmt.Errorf("profile: %w", err)
		}
	}
	return nil
}

// HashModulo is the sha256 of a NAR modulo a hash part, as Nix's
// HashModuloSink computes it for content-addressed items that refer to
// themselves: each occurrence of hashPart counted as as many NUL bytes,
// then each occurrence's offset in the NAR, as "|N", after the NAR.
func HashModulo(narBytes []byte, hashPart string) [32]byte {
	m := NewModuloHash(hashPart)
	m.Write(narBytes)
	return m.Sum()
}

// ModuloHash computes HashModulo over a NAR written to it in pieces,
// holding no more of it than a hash part's length.
type ModuloHash struct {
	h       hash.Hash
	from    []byte
	pending []byte // bytes that may start an occurrence
	pos     int64  // bytes of the NAR before pending
	matches []int64
}

// NewModuloHash starts a ModuloHash modulo hashPart.
func NewModuloHash(hashPart string) *ModuloHash {
	return &ModuloHash{h: sha256.New(), from: []byte(hashPart)}
}

// Write hashes p, occurrences of the hash part as NUL bytes.
func (m *ModuloHash) Write(p []byte) (int, error) {
	m.pending = append(m.pending, p...)
	for {
		i := bytes.Index(m.pending, m.from)
		if i < 0 {
			break
		}
		m.h.Write(m.pending[:i])
		m.h.Write(make([]byte, len(m.from)))
		m.matches = append(m.matches, m.pos+int64(i))
		m.pos += int64(i + len(m.from))
		m.pending = m.pending[i+len(m.from):]
	}
	if keep := len(m.from) - 1; len(m.pending) > keep {
		n := len(m.pending) - keep
		m.h.Write(m.pending[:n])
		m.pos += int64(n)
		m.pending = append(m.pending[:0:0], m.pending[n:]...)
	}
	return len(p), nil
}

// Sum ends the NAR and returns the hash.
func (m *ModuloHash) Sum() [32]byte {
	m.h.Write(m.pending)
	m.pos += int64(len(m.pending))
	m.pending = nil
	for _, p := range m.matches {
		fmt.Fprintf(m.h, "|%d", p)
	}
	var d [32]byte
	m.h.Sum(d[:0])
	return d
}
