// Package format is the one definition of storepack's output formats:
// their names, the kind of output each writes, the default output name and
// the compressions each takes. spec checks a spec against it, gen plans by
// kind, and export maps each format to its writer (export/formats.go).
//
// Adding a format is one entry in defs below, one writer file in export
// with its entry in export's table, and its docs (docs/architecture.md
// walks through it).
package format

import (
	"slices"
	"strings"

	"github.com/storepack/storepack/internal/platform"
)

// Format is an export's format, as a spec names it.
type Format string

// The formats.
const (
	// NAR is an export bundle: the closure's NARs with their metadata, as
	// `nix-store --export` writes them; one file per system.
	NAR Format = "nar"
	// Docker is a Docker Image Specification v1.2 archive (docker load).
	Docker Format = "docker"
	// OCI is an OCI image layout folder, or an oci-archive when its
	// output ends with ".tar".
	OCI Format = "oci"
	// BinaryCache is a Nix binary cache folder: nix-cache-info, narinfos
	// and compressed NARs.
	BinaryCache Format = "binary-cache"
	// Tarball is a tar of the file system tree, compressed; one file per
	// system.
	Tarball Format = "tarball"
	// Deb is a Debian binary package of the tree; one per system.
	Deb Format = "deb"
	// RPM is an RPM v4 package of the tree; one per system.
	RPM Format = "rpm"
	// Squashfs is a squashfs 4.0 image of the tree laid out for
	// Apptainer and Singularity; one per system.
	Squashfs Format = "squashfs"
)

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
)

// Def is what a format is.
type Def struct {
	// Kind is the kind of output it writes.
	Kind Kind
	// Ext is the default output's extension after the export's name
	// (".nar"); "" for formats that write a folder. Exts, when set, gives
	// it by compression instead (".tar.gz").
	Ext  string
	Exts map[Compression]string
	// PerSystem is set for formats that write one output per system
	// (named by Output); the others hold every system in one.
	PerSystem bool
	// Compressions are the values the compression attribute takes, the
	// default first; nil when the format takes none.
	Compressions []Compression
	// CompressionOf names what the compression applies to in messages,
	// when not the image's layers.
	CompressionOf string
	// Uncompressed is set when the format writes its contents
	// uncompressed whatever compression says: docker archives hold plain
	// layer tars; they take the attribute as every image does.
	Uncompressed bool
	// NixSigned is set for formats whose sign_key is a Nix binary cache
	// key that signs their narinfos; the others take a PEM key and sign
	// as cosign verifies (package signing).
	NixSigned bool
	// Database is set for formats that can hold the store database of
	// their closure (database = true).
	Database bool
	// Runs is set for formats that say how their program runs
	// (entrypoint, cmd, env): images, and squashfs's runscript.
	Runs bool
	// Package is set for formats that take a package block (deb, rpm);
	// PackageArch names a platform's architecture as the format does.
	Package     bool
	PackageArch func(platform.Platform) string
	// Installs is set for formats whose tree is installed into an existing
	// root (deb, rpm) rather than being one: they get no default /bin
	// symlink, which would clash with the root's /bin.
	Installs bool
}

// Compression is the default compression of outputs of the format, or
// "" for formats that take none.
func (d Def) Compression() Compression {
	if len(d.Compressions) == 0 {
		return ""
	}
	return d.Compressions[0]
}

// imageCompressions are the layer compressions of images.
var imageCompressions = []Compression{None, Gzip, Zstd}

// defs is the table of formats, in the order messages list them.
var defs = []struct {
	f   Format
	def Def
}{
	{NAR, Def{Kind: Store, Ext: ".nar", PerSystem: true}},
	{Docker, Def{Kind: Image, Ext: ".tar", Compressions: imageCompressions, Uncompressed: true, Database: true, Runs: true}},
	{OCI, Def{Kind: Image, Compressions: imageCompressions, Database: true, Runs: true}},
	{BinaryCache, Def{Kind: Store, Compressions: []Compression{XZ, Zstd, None}, CompressionOf: "a binary cache's NARs", NixSigned: true}},
	{Tarball, Def{Kind: Tree, PerSystem: true, Database: true,
		Compressions: []Compression{Gzip, Zstd, XZ, None},
		Exts:         map[Compression]string{Gzip: ".tar.gz", Zstd: ".tar.zst", XZ: ".tar.xz", None: ".tar"}}},
	{Deb, Def{Kind: Tree, Ext: ".deb", PerSystem: true, Database: true,
		Compressions: []Compression{XZ, Gzip, Zstd, None}, CompressionOf: "a deb's data.tar",
		Package: true, PackageArch: platform.Platform.Debian, Installs: true}},
	{RPM, Def{Kind: Tree, Ext: ".rpm", PerSystem: true, Database: true,
		Compressions: []Compression{Zstd, Gzip, XZ}, CompressionOf: "an rpm's payload",
		Package: true, PackageArch: platform.Platform.RPM, Installs: true}},
	{Squashfs, Def{Kind: Tree, Ext: ".squashfs", PerSystem: true, Database: true, Runs: true,
		Compressions: []Compression{Gzip, Zstd, XZ}, CompressionOf: "a squashfs image"}},
}

// All lists every format, in the order messages list them.
func All() []Format {
	out := make([]Format, len(defs))
	for i, d := range defs {
		out[i] = d.f
	}
	return out
}

// Parse returns the format named s, or false.
func Parse(s string) (Format, bool) {
	f := Format(s)
	_, ok := f.lookup()
	return f, ok
}

func (f Format) lookup() (Def, bool) {
	for _, d := range defs {
		if d.f == f {
			return d.def, true
		}
	}
	return Def{}, false
}

// Def returns what f is; the zero Def for an unknown format.
func (f Format) Def() Def {
	d, _ := f.lookup()
	return d
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

// OfKind lists the formats of kind k, in the order of All.
func OfKind(k Kind) []Format { return Where(func(d Def) bool { return d.Kind == k }) }

// NixSigning lists the formats whose sign_key is a Nix key.
func NixSigning() []Format { return Where(func(d Def) bool { return d.NixSigned }) }

// Where lists the formats whose Def satisfies pred, in the order of All.
func Where(pred func(Def) bool) []Format {
	var out []Format
	for _, d := range defs {
		if pred(d.def) {
			out = append(out, d.f)
		}
	}
	return out
}

// Takes reports whether f's compression attribute takes c.
func (f Format) Takes(c Compression) bool { return slices.Contains(f.Def().Compressions, c) }

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
