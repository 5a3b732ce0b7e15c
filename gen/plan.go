// Package gen evaluates a spec against a store into a deterministic Plan:
// closures, layers, image configs and manifests, output names. It writes no
// archive; export writes plans.
package gen

import (
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/store"
)

// Plan is everything an export run will write, fully determined by the spec
// and the store.
type Plan struct {
	// StoreDir is the store folder the plan reads.
	StoreDir store.Dir `json:"store_dir"`
	// Exports are the spec's exports, sorted by name.
	Exports []Export `json:"exports"`
}

// Export is the plan of one export block.
type Export struct {
	Name   string        `json:"name"`
	Format format.Format `json:"format"`
	// Output is the output file or folder, relative to the output folder.
	Output string `json:"output"`
	// Systems are the export's systems in spec order.
	Systems []System `json:"systems"`
	// Push is the registry reference the image goes to, or "".
	Push     string `json:"push,omitempty"`
	Insecure bool   `json:"insecure,omitempty"`
	// Compression is how a binary cache compresses its NARs (xz, zstd,
	// none); SignKey the secret key file that signs its narinfos.
	Compression format.Compression `json:"compression,omitempty"`
	SignKey     string             `json:"sign_key,omitempty"`
}

// System is the plan of one export for one target system.
type System struct {
	// Name is the Guix/Nix system name, e.g. x86_64-linux.
	Name string `json:"system"`
	// Roots are the store paths the spec names.
	Roots []store.Path `json:"roots"`
	// Closure is every item the roots need, dependencies first.
	Closure []Item `json:"closure"`
	// ClosureDigest identifies the closure: "sha256:<hex>" over each item's
	// path and NAR hash, in closure order.
	ClosureDigest string `json:"closure_digest"`
	// Output is the file this system's archive goes to, relative to the
	// output folder, for formats that write one file per system (nar);
	// empty when the export's Output holds every system.
	Output string `json:"output,omitempty"`
	// Image is the image plan for docker and oci exports.
	Image *Image `json:"image,omitempty"`
}

// Item is one store item of a closure.
type Item struct {
	Path store.Path `json:"path"`
	// NarHash is "sha256:<nix base32>" of the item's NAR serialisation.
	NarHash string `json:"nar_hash"`
	NarSize int64  `json:"nar_size"`
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
