// Package spec loads storepack's HCL spec files into typed specs. Every
// problem is an hcl.Diagnostic pointing at file, line and column.
//
// The language is the one docs/spec.md describes, with these
// choices:
//
//   - A spec is every *.hcl file of a folder (not starting with a dot),
//     read in name order. Syntax errors stop the load: only they are
//     reported. Otherwise every problem is reported, sorted by file and
//     position (those about no place in the spec first).
//   - Variables take --var, else STOREPACK_VAR_<name>, else the default.
//     Values for string, number and bool variables and untyped ones are
//     taken as written; list, map, object, set, tuple and any are parsed
//     as HCL expressions. A default may call functions but refer to
//     nothing.
//   - Locals, sources and the store block may refer to each other in any
//     order; a cycle is one diagnostic naming the chain. source.<name> has
//     store_path, path (absolute), name and nar_hash ("sha256:<hex>").
//   - Functions: go-cty's standard library under Terraform's names
//     (FunctionNames lists them; replace takes a /regex/ too), try, can,
//     env(NAME) ("" when unset) and file(PATH) (relative to the folder).
//   - store.dir and store.db, when relative, are taken from the spec
//     folder. Without store.dir, the store folder is the one every store
//     path of the exports' paths is in (as far as they can be evaluated
//     before the store is known), when they name one; else NIX_STORE_DIR,
//     else /gnu/store when it exists, else /nix/store. A source's
//     references are the items of the store folder whose hash parts its
//     NAR mentions (none when the folder is missing).
//   - paths lists store items: a path inside an item is an error naming
//     the item. Paths must be in the store folder on disk or be a
//     source's store path. An entry point's first element, when in the
//     store, must exist; symlink targets in the store need their item.
//   - Formats, their kinds, default outputs and compressions are package
//     format's. Image attributes (tag ... insecure, and entrypoint and cmd
//     of system blocks) on an export of another kind are errors, not
//     warnings, but for compression on the formats that take one (a binary
//     cache's NARs: "xz", "zstd" or "none"). sign_key names a
//     secret key file (relative to the spec folder): a Nix key, as
//     `nix-store --generate-binary-cache-key` writes it, for the formats
//     that sign narinfos (format.NixKey), else a PEM key whose signatures
//     cosign verifies; a missing or bad key is an error at load time, and the export reads the file again when it
//     writes. insecure without push is a warning.
//   - systems, when unset, is the system blocks' names, else the host's
//     (LoadOptions.System); systems named only by a block are added after
//     those listed.
//   - Defaults filled in: output <name>.nar, <name>.tar or <name> (oci
//     and binary-cache); max_layers 100; compression "none" (images) or
//     "xz" (binary-cache); created from SOURCE_DATE_EPOCH
//     else 1970-01-01T00:00:01Z; exposed ports "N" become "N/tcp"; each
//     System gets the export's paths, entrypoint and cmd unless its block
//     overrides them. Tag "" still means gen's default.
package spec

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store"
)

// Spec is a fully evaluated spec: every expression has been resolved.
type Spec struct {
	// Dir is the folder the spec files were loaded from (absolute).
	Dir string
	// Files are the spec files loaded, sorted, relative to Dir, and
	// FileSHA256 the sha256 (hex) of each, by name: what provenance
	// records.
	Files      []string
	FileSHA256 map[string]string `json:",omitempty"`
	// Variables are the values of the spec's variables, each as JSON.
	Variables map[string]string `json:",omitempty"`
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
	// Root is the folder a chroot store lives in (absolute), or "": item
	// Dir/x is then read from Root/Dir/x, as with `nix --store ROOT`.
	Root string
	// Substituters are binary caches (file://, http://, https://) that
	// items missing from the store are read from, in order;
	// TrustedPublicKeys the keys ("name:base64") one of whose signatures
	// each of their narinfos must carry.
	Substituters      []string `json:",omitempty"`
	TrustedPublicKeys []string `json:",omitempty"`
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
	NarHash Digest
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
	// Format is the export's format (package format lists them).
	Format format.Format
	// Systems are the Guix/Nix system names, in the order given
	// (default: the host's); each has its paths and entry point.
	Systems []System
	// Output is the output file or folder, relative to the output folder.
	Output string
	// Profile, when set, adds a profile of the paths to each system's
	// closure.
	Profile *Profile `json:",omitempty"`
	// AppImage is the appimage block of an AppImage export, or nil.
	AppImage *AppImage `json:",omitempty"`
	// Relocatable makes the pack run from wherever it is unpacked: the
	// profile's programs wrapped (export/relocate), the pack's symlinks
	// relative.
	Relocatable bool `json:",omitempty"`
	// OutputDefault is set when the spec names no output, and Output is
	// the format's default name for the export (a format may name each
	// system's output from its plan instead: gen.OutputNamer).
	OutputDefault bool `json:",omitempty"`
	// Entrypoint, Cmd and Env say how the output's program runs, for
	// formats that say it (those taking format.RunAttrs: an image's config, squashfs's
	// runscript and environment); a system block may set its own
	// Entrypoint and Cmd.
	Entrypoint []string
	Cmd        []string
	Env        map[string]string
	// Symlinks maps a link in the tree (images and file system trees) to
	// its target; nil means the default (/bin -> <first path>/bin when it
	// exists), empty none.
	Symlinks map[string]string
	// Created is the output's creation time, RFC 3339 (images and trees):
	// the spec's created, else SOURCE_DATE_EPOCH's time, else
	// DefaultCreated (Load applies that rule); "" means DefaultCreated.
	Created string `json:",omitempty"`
	// Database asks for the store database of the closure inside the
	// output (formats taking format.DatabaseAttrs).
	Database bool `json:",omitempty"`
	// Accounts are the account blocks (users in /etc/passwd, with their
	// home folders) and Files the file blocks, in spec order: images and
	// trees.
	Accounts []Account `json:",omitempty"`
	Files    []File    `json:",omitempty"`
	// Package is the package metadata of deb and rpm exports; nil for the
	// other formats.
	Package *Package `json:",omitempty"`
	// Image holds the settings only images have (docker and oci).
	Image Image
	// Push is the registry reference to push to, or "".
	Push string
	// MountFrom are repositories of Push's registry whose blobs a push
	// mounts instead of uploading (mount_from).
	MountFrom []string
	// Insecure allows plain http for Push.
	Insecure bool
	// Compression is the compression of what a format other than an
	// image's compresses, one of the format's (the default first): the
	// NARs of a binary cache ("xz", as Nix, "zstd" or "none"), a tree's
	// output (a tarball's: "gzip", "zstd", "xz" or "none"); "" for
	// formats that take none. Images have theirs in Image.
	Compression format.Compression `json:",omitempty"`
	// SignKey is the secret key file (absolute) that signs the export, or
	// "": a Nix key for a binary cache's narinfos (format.NixKey),
	// else a PEM key (ed25519 or ECDSA P-256, PKCS#8, or cosign's
	// encrypted key) for signatures cosign verifies. Load checks it; the
	// export reads it again when it writes.
	SignKey string `json:",omitempty"`
	// SBOM lists the SBOM formats written beside the output ("spdx",
	// "cyclonedx"); Provenance asks for an in-toto provenance statement.
	SBOM       []string `json:",omitempty"`
	Provenance bool     `json:",omitempty"`
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

// Image holds the settings only docker and oci exports have.
type Image struct {
	Tag          string // "" means the default, computed by gen
	WorkingDir   string
	User         string
	Labels       map[string]string
	ExposedPorts []string
	Volumes      []string
	MaxLayers    int                // 1..127, default 100
	Compression  format.Compression // "none", "gzip" or "zstd"
	// Annotations go on every image manifest and on the index.
	Annotations map[string]string `json:",omitempty"`
	// Base is the image to build on: a registry reference pinned by
	// digest, "oci:DIR[:TAG]" or "docker-archive:FILE" (paths made
	// absolute); "" for none.
	Base string `json:",omitempty"`
	// Layers are the layer blocks, in spec order: each a layer of its own,
	// at the bottom, for the listed items and their closures' items not
	// placed by an earlier block (docs/layers.md).
	Layers []LayerBlock `json:",omitempty"`
}

// LayerBlock is a layer block of an image.
type LayerBlock struct {
	Name  string
	Paths []store.Path
}

// Profile asks for a profile: a store item uniting the export's paths
// (store/profile), which relative symlink targets and entry points name.
type Profile struct {
	// AllowCollisions lets the first path win where two provide the same
	// file; otherwise that is an error naming both.
	AllowCollisions bool `json:",omitempty"`
}

// Package is the package metadata of a deb or rpm export.
type Package struct {
	// Name is the package's name, by default the export's.
	Name string
	// Version is required; Release is rpm's release, by default "1".
	Version string
	Release string
	// Maintainer, Description, License and Homepage are optional.
	Maintainer  string `json:",omitempty"`
	Description string `json:",omitempty"`
	License     string `json:",omitempty"`
	Homepage    string `json:",omitempty"`
	// Section and Priority are a deb's control fields (the deb format
	// says their defaults).
	Section  string `json:",omitempty"`
	Priority string `json:",omitempty"`
	// Scripts are the maintainer scripts (deb) and scriptlets (rpm), each
	// starting with its #! line: the package block's own, or
	// "#!/bin/sh" (plan.DefaultInterpreter) added before a script
	// without one.
	Scripts plan.Scripts `json:",omitzero"`
}

// CreatedTime is Created as a UTC time, DefaultCreated when empty: what
// an image's config records and, rounded down to the second, the mtime of
// every entry of a tree (and of an image's layers).
func (e *Export) CreatedTime() (time.Time, error) {
	c := e.Created
	if c == "" {
		c = DefaultCreated
	}
	t, err := parseCreated(c)
	if err != nil {
		return time.Time{}, fmt.Errorf("created = %q: %w", c, err)
	}
	return t, nil
}

// errBefore1970 is a created time before 1970, which tar cannot hold.
var errBefore1970 = errors.New("the time is before 1970")

// parseCreated reads a created time: RFC 3339, not before 1970; UTC.
func parseCreated(c string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, c)
	if err != nil {
		return time.Time{}, fmt.Errorf("not an RFC 3339 time: %w", err)
	}
	if t.Unix() < 0 {
		return time.Time{}, errBefore1970
	}
	return t.UTC(), nil
}

// Digest is a sha256 digest. It is written as text (and JSON) as
// "sha256:<64 hex digits>", the form of Nix's database.
type Digest [32]byte

// String gives d as "sha256:<hex>".
func (d Digest) String() string { return "sha256:" + store.Hash(d).Hex() }

// MarshalText gives d as "sha256:<hex>".
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads "sha256:<hex>".
func (d *Digest) UnmarshalText(b []byte) error {
	h, err := store.ParseHexHash(string(b))
	if err != nil {
		return fmt.Errorf("digest %q is not sha256:<64 hex digits>", b)
	}
	*d = Digest(h)
	return nil
}
