// Package format is the registry of storepack's output formats: what each
// format declares it takes (its attributes and blocks, compressions,
// sign_key's kind) and writes (its kind of output, default output name,
// one output per system or one for all). spec checks a spec against it,
// gen plans by kind and calls a format's own planning, and export writes
// with the format's writer: each asks the registry, none names a format.
//
// A format is one file of package export (or a package of its own) whose
// value has a Def method, the planning it alone needs (gen.TreePlanner,
// gen.ImagePlanner) and a writer, registered by one line in export's
// registry (export/formats.go). The registry is filled when package export
// is linked: a program that loads specs without writing them imports it
// for its registry (`import _ "github.com/storepack/storepack/export"`).
package format

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Format is an export's format, as a spec names it.
type Format string

// Kind is the kind of output a format writes.
type Kind int

// The kinds of output.
const (
	// Store outputs hold store items with their metadata (NAR hashes,
	// references): nar bundles, binary caches.
	Store Kind = iota + 1
	// Tree outputs hold a file system tree of the closure: the store
	// items at their store paths, with folders, symlinks and files.
	Tree
	// Image outputs are container images: layers of a tree plus a config.
	Image
)

// String names the kind: "store", "tree" or "image".
func (k Kind) String() string {
	switch k {
	case Store:
		return "store"
	case Tree:
		return "tree"
	case Image:
		return "image"
	}
	return "unknown"
}

// Compression names a compression.
type Compression string

// The compressions.
const (
	None Compression = "none"
	Gzip Compression = "gzip"
	Zstd Compression = "zstd"
	XZ   Compression = "xz"
	// ZstdChunked is zstd as containers/storage writes it for partial
	// pulls: a frame per file, a table of contents (image layers only).
	ZstdChunked Compression = "zstd:chunked"
	// Estargz is eStargz: gzip with a member per file chunk and a table
	// of contents, for lazy pulls (image layers only).
	Estargz Compression = "estargz"
)

// Key is the kind of key a format's sign_key names.
type Key int

// The kinds of signing key.
const (
	// PEMKey is a PEM key (ed25519 or ECDSA P-256) whose signatures
	// cosign verifies: the default.
	PEMKey Key = iota
	// NixKey is a Nix binary cache key that signs narinfos.
	NixKey
)

// The attributes that formats of several kinds share, for their Defs'
// Attrs. An export's format, paths, systems, output, sign_key, sbom,
// provenance and profile, and its system and profile blocks, are every
// format's; compression is
// taken by the formats that list Compressions.
var (
	// ImageAttrs are the attributes of an image's config, tag, layering,
	// registry and base.
	ImageAttrs = []string{"tag", "working_dir", "user", "labels", "exposed_ports", "volumes", "max_layers", "push", "mount_from", "insecure", "annotations", "base"}
	// RunAttrs say how the output's program runs (also in system blocks).
	RunAttrs = []string{"entrypoint", "cmd", "env"}
	// TreeAttrs shape a file system tree: its symlinks and time.
	TreeAttrs = []string{"symlinks", "created"}
	// DatabaseAttrs ask for the store database inside the output.
	DatabaseAttrs = []string{"database"}
	// RelocatableAttrs are those of formats whose packs run from wherever
	// they are unpacked (export/relocate).
	RelocatableAttrs = []string{"relocatable"}
)

// The blocks that formats of several kinds share, for their Defs' Blocks.
var (
	// ContentBlocks add accounts and files to a tree or an image.
	ContentBlocks = []Block{{Name: "account"}, {Name: "file"}}
	// LayerBlocks choose an image layer's items.
	LayerBlocks = []Block{{Name: "layer"}}
)

// Block is a block type that a format takes inside its export blocks.
type Block struct {
	// Name is the block's type.
	Name string
	// Required is set when an export of the format must have one.
	Required bool
	// Recommended maps attributes of the block that an export should set
	// to why and how, which a warning at the block gives when one is
	// unset.
	Recommended map[string]string
}

// Def is what a format declares.
type Def struct {
	// Name is the format's name in specs.
	Name Format
	// Kind is the kind of output it writes.
	Kind Kind
	// Ext is the default output's extension after the export's name
	// (".nar"); "" for formats that write a folder. Exts, when set, gives
	// it by compression instead (".tar.gz").
	Ext  string
	Exts map[Compression]string
	// PerSystem is set for formats that write one output per system; the
	// others hold every system in one.
	PerSystem bool
	// Compressions are the values the compression attribute takes, the
	// default first; nil when the format takes none. CompressionOf names
	// what the compression applies to in messages, when not the image's
	// layers.
	Compressions  []Compression
	CompressionOf string
	// Attrs are the optional attributes the format takes besides every
	// format's (ImageAttrs, RunAttrs, ... composed).
	Attrs []string
	// Blocks are the blocks it takes besides system blocks.
	Blocks []Block
	// Requires are the attributes an export of the format must set:
	// "entrypoint" (every system has one: the output runs one program),
	// "profile" and "relocatable" (set true: the output runs from
	// wherever it is mounted).
	Requires []string
	// SignKey is the kind of key its sign_key names.
	SignKey Key
	// BinLink is set for formats whose tree, without a symlinks
	// attribute, links /bin to the first path's bin folder; formats
	// installed into an existing root (packages) leave it unset.
	BinLink bool
	// RemoteOutput, when set, tells whether an output names a place
	// outside the output folder (a binary cache's s3:// bucket) and
	// checks it: such an output is taken as it is, never made a path.
	// nil for formats that only write into the output folder.
	RemoteOutput func(output string) (remote bool, err error)
}

// Remote reports whether the output o of an export of this format is a
// place outside the output folder (RemoteOutput), not a path in it.
func (d *Def) Remote(o string) bool {
	if d.RemoteOutput == nil {
		return false
	}
	remote, err := d.RemoteOutput(o)
	return remote && err == nil
}

// Entry is a registered format: its Def, and whatever the packages that
// use the registry ask of it (its planning, its writer).
type Entry interface {
	Def() *Def
}

var registry struct {
	sync.RWMutex
	order   []Format
	entries map[Format]Entry
}

// Register adds formats to the registry, in the order messages list them.
// It panics when a name is registered twice: a programming error.
func Register(es ...Entry) {
	registry.Lock()
	defer registry.Unlock()
	if registry.entries == nil {
		registry.entries = map[Format]Entry{}
	}
	for _, e := range es {
		name := e.Def().Name
		if _, ok := registry.entries[name]; ok {
			panic(fmt.Sprintf("format %q registered twice", name))
		}
		registry.entries[name] = e
		registry.order = append(registry.order, name)
	}
}

// Lookup returns the registered format named f.
func Lookup(f Format) (Entry, bool) {
	registry.RLock()
	defer registry.RUnlock()
	e, ok := registry.entries[f]
	return e, ok
}

// All lists every registered format, in the order messages list them.
func All() []Format {
	registry.RLock()
	defer registry.RUnlock()
	return slices.Clone(registry.order)
}

// Parse returns the format named s, or false.
func Parse(s string) (Format, bool) {
	_, ok := Lookup(Format(s))
	return Format(s), ok
}

// Def returns what f is; the zero Def for an unknown format.
func (f Format) Def() Def {
	if e, ok := Lookup(f); ok {
		return *e.Def()
	}
	return Def{}
}

// Entry is f's registered value, nil for an unknown format.
func (f Format) Entry() Entry {
	e, _ := Lookup(f)
	return e
}

// Kind is the kind of output f writes (0 for an unknown format).
func (f Format) Kind() Kind { return f.Def().Kind }

// String is the format's name.
func (f Format) String() string { return string(f) }

// Output is the default output of an export named name whose compression
// is c: a file named with the format's extension (for c, when it depends
// on the compression), or a folder.
func (f Format) Output(name string, c Compression) string { return name + f.Ext(c) }

// Ext is the extension of the format's outputs compressed as c.
func (f Format) Ext(c Compression) string {
	d := f.Def()
	if ext, ok := d.Exts[c]; ok {
		return ext
	}
	return d.Ext
}

// Takes reports whether f's compression attribute takes c.
func (f Format) Takes(c Compression) bool { return slices.Contains(f.Def().Compressions, c) }

// TakesAttr reports whether the format takes the optional attribute name
// (compression when it lists Compressions).
func (d Def) TakesAttr(name string) bool {
	if name == "compression" {
		return d.Compressions != nil
	}
	return slices.Contains(d.Attrs, name)
}

// Block returns the format's block of type name, or false.
func (d Def) Block(name string) (Block, bool) {
	for _, b := range d.Blocks {
		if b.Name == name {
			return b, true
		}
	}
	return Block{}, false
}

// Compression is the default compression of outputs of the format, or
// "" for formats that take none.
func (d Def) Compression() Compression {
	if len(d.Compressions) == 0 {
		return ""
	}
	return d.Compressions[0]
}

// OfKind lists the formats of kind k, in the order of All.
func OfKind(k Kind) []Format { return Where(func(d Def) bool { return d.Kind == k }) }

// TakingAttr lists the formats that take the optional attribute name.
func TakingAttr(name string) []Format { return Where(func(d Def) bool { return d.TakesAttr(name) }) }

// TakingBlock lists the formats that take blocks of type name.
func TakingBlock(name string) []Format {
	return Where(func(d Def) bool { _, ok := d.Block(name); return ok })
}

// Where lists the formats whose Def satisfies pred, in the order of All.
func Where(pred func(Def) bool) []Format {
	var out []Format
	for _, f := range All() {
		if pred(f.Def()) {
			out = append(out, f)
		}
	}
	return out
}

// Join lists formats for messages: "docker and oci", "a, b and c".
func Join(fs []Format) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = string(f)
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
