// Package spec loads storepack's HCL spec files into typed specs. Every
// problem is an hcl.Diagnostic pointing at file, line and column.
package spec

import (
	"github.com/hashicorp/hcl/v2"

	"github.com/storepack/storepack/store"
)

// Formats a spec may ask for.
const (
	FormatNAR    = "nar"
	FormatDocker = "docker"
	FormatOCI    = "oci"
)

// Spec is a fully evaluated spec: every expression has been resolved.
type Spec struct {
	// Dir is the folder the spec files were loaded from (absolute).
	Dir string
	// Files are the spec files loaded, sorted, relative to Dir.
	Files []string
	// Store is the store block, with defaults applied.
	Store Store
	// Sources are the source blocks, sorted by name.
	Sources []Source
	// Exports are the export blocks, sorted by name.
	Exports []Export
}

// Store is the store block.
type Store struct {
	// Dir is the store folder.
	Dir store.Dir
	// DB is "auto", "none" or a database path (absolute).
	DB string
	// Range is where the block is (empty when the spec has none).
	Range hcl.Range
}

// Source is a local file or folder added as a content-addressed store item.
type Source struct {
	// Name is the block label.
	Name string
	// Path is the file or folder, absolute.
	Path string
	// StoreName is the store item's name (default: Path's base name).
	StoreName string
	// StorePath is the content-addressed store path it gets.
	StorePath store.Path
	// NarHash is the sha256 of its NAR serialisation; NarSize its length.
	NarHash [32]byte
	NarSize int64
	// References are the store items its contents refer to, sorted.
	References []store.Path
	// Range is where the block is.
	Range hcl.Range
}

// Export is one export block.
type Export struct {
	// Name is the block label.
	Name string
	// Format is FormatNAR, FormatDocker or FormatOCI.
	Format string
	// Systems are the Guix/Nix system names, in the order given
	// (default: the host's); each has its paths and entry point.
	Systems []System
	// Output is the output file or folder, relative to the output folder.
	Output string
	// Image holds the image settings (docker and oci only).
	Image Image
	// Push is the registry reference to push to, or "".
	Push string
	// Insecure allows plain http for Push.
	Insecure bool
	// Range is where the block is; Attrs where each attribute set is, by name.
	Range hcl.Range
	Attrs map[string]hcl.Range
}

// System is one target system of an export.
type System struct {
	// Name is the system name, e.g. x86_64-linux.
	Name string
	// Paths are the store paths whose closure is exported.
	Paths []store.Path
	// Entrypoint and Cmd, per system (defaulting to the export's).
	Entrypoint []string
	Cmd        []string
}

// Image holds the settings of docker and oci exports.
type Image struct {
	Tag          string // "" means the default, computed by gen
	Entrypoint   []string
	Cmd          []string
	Env          map[string]string
	WorkingDir   string
	User         string
	Labels       map[string]string
	ExposedPorts []string
	Volumes      []string
	// Symlinks maps a link in the image to its target; nil means the
	// default (/bin -> <first path>/bin when it exists), empty none.
	Symlinks    map[string]string
	MaxLayers   int    // 1..127, default 100
	Compression string // "none", "gzip" or "zstd"
	Created     string // RFC 3339; "" means SOURCE_DATE_EPOCH or 1970-01-01T00:00:01Z
}
