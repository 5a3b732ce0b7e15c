// Package plan holds the data of a plan: what an export run writes,
// fully determined by the spec and the store. gen builds a plan; the
// writers read it and never write into it. It says what to write, not how
// a format encodes it.
//
// The plan imports nothing of storepack above the store: the writers read
// it without linking the spec language, the store's database or a
// registry client.
package plan

import (
	digest "github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/platform"
	"github.com/storepack/storepack/store"
)

// DefaultCreated is the creation time of outputs whose spec gives none
// (neither created nor SOURCE_DATE_EPOCH), RFC 3339.
const DefaultCreated = "1970-01-01T00:00:01Z"

// Plan is everything an export run will write, fully determined by the spec
// and the store.
type Plan struct {
	// StoreDir is the store folder the plan reads.
	StoreDir store.Dir `json:"store_dir"`
	// Exports are the spec's exports, sorted by name.
	Exports []Export `json:"exports"`
	// SpecFiles are the spec's files and Variables the values of its
	// variables (as JSON): what an export's provenance records.
	SpecFiles []SpecFile        `json:"spec_files,omitempty"`
	Variables map[string]string `json:"variables,omitempty"`
}

// SpecFile is one file of the spec, relative to its folder, with the
// sha256 (hex) of its bytes.
type SpecFile struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// Export is the plan of one export block.
type Export struct {
	Name   string        `json:"name"`
	Format format.Format `json:"format"`
	// Output is the output file or folder, relative to the output folder.
	Output string `json:"output"`
	// Push is the registry reference the image goes to, or "".
	Push string `json:"push,omitempty"`
	// MountFrom are repositories of Push's registry that a push mounts
	// blobs from instead of uploading them, besides those the layer cache
	// recorded pushes to.
	MountFrom []string `json:"mount_from,omitempty"`
	Insecure  bool     `json:"insecure,omitempty"`
	// Compression is the compression of what a format other than an
	// image's compresses (a binary cache's NARs: xz, zstd, none; a
	// tree's output); SignKey the secret key file that signs the outputs
	// (a binary cache's narinfos with a Nix key; the others with a PEM
	// key, as cosign verifies).
	Compression format.Compression `json:"compression,omitempty"`
	SignKey     string             `json:"sign_key,omitempty"`
	// SBOM lists the SBOM formats written beside each output ("spdx",
	// "cyclonedx"); Provenance asks for the in-toto provenance statement.
	SBOM       []string `json:"sbom,omitempty"`
	Provenance bool     `json:"provenance,omitempty"`
	// Systems are the export's systems in spec order.
	Systems []System `json:"systems"`
}

// System is the plan of one export for one target system.
type System struct {
	// Name is the Guix/Nix system name, e.g. x86_64-linux.
	Name string `json:"system"`
	// Roots are the store paths the spec names.
	Roots []store.Path `json:"roots"`
	// Closure is every item the roots need, dependencies first (and the
	// profile last, when the export has one).
	Closure []Item `json:"closure"`
	// Profile is the profile item uniting the roots (store/profile), when
	// the export asks for one; ProfileEnv the search paths its
	// etc/profile sets, as NAME=VALUE without earlier values.
	Profile    store.Path `json:"profile,omitempty"`
	ProfileEnv []string   `json:"profile_env,omitempty"`
	// ClosureDigest identifies the closure: the sha256 of each item's path
	// and NAR hash, one a line, in closure order.
	ClosureDigest digest.Digest `json:"closure_digest"`
	// Output is the file this system's archive goes to, relative to the
	// output folder, for formats that write one file per system (nar,
	// the file system trees);
	// empty when the export's Output holds every system.
	Output string `json:"output,omitempty"`
	// Image is the image plan for images (docker and oci exports).
	Image *Image `json:"image,omitempty"`
	// Tree is the output's plan for file system tree formats (tarball,
	// squashfs, deb, rpm).
	Tree *TreeOutput `json:"tree,omitempty"`
}

// Item is one store item of a closure.
type Item struct {
	Path store.Path `json:"path"`
	// NarHash and NarSize are those of the item's NAR serialisation.
	NarHash store.Hash `json:"nar_hash"`
	NarSize int64      `json:"nar_size"`
	// References are the items it refers to, sorted, itself included.
	References []store.Path `json:"references"`
	Deriver    string       `json:"deriver,omitempty"`
	// Source is the spec's source block name when the item was added from
	// a local file or folder (it is not in the store folder).
	Source string `json:"source,omitempty"`
	// FSPath is where the item's files are read from: the store path, or
	// the source's local path.
	FSPath string `json:"-"`
}

// Items indexes a closure's items by store path.
func Items(closure []Item) map[store.Path]*Item {
	m := make(map[store.Path]*Item, len(closure))
	for i := range closure {
		m[closure[i].Path] = &closure[i]
	}
	return m
}

// Settings are what a spec asks of one system's output, in the plan's
// terms: what a format's own planning reads (gen.TreePlanner,
// gen.ImagePlanner). They are not part of the plan.
type Settings struct {
	// Export and System name the output.
	Export string
	System string
	// Platform is the system's image platform and architecture names.
	Platform platform.Platform
	// Roots are the store paths the spec names; Items the closure's
	// items, by path.
	Roots []store.Path
	Items map[store.Path]*Item
	// Entrypoint, Cmd and Env say how the output's program runs (the
	// system's entry point and cmd when it sets them).
	Entrypoint []string
	Cmd        []string
	Env        map[string]string
	// Profile is the system's profile item (store/profile), or "": its
	// etc/profile sets the search paths of what the roots hold.
	// Relocatable says its programs are wrapped to run from wherever the
	// output is unpacked or mounted (export/relocate).
	Profile     store.Path
	Relocatable bool
	// AppImage is the appimage block, or nil.
	AppImage *AppImage
	// Package is the package block's metadata with no architecture, or
	// nil.
	Package *Package
}
