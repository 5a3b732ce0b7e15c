package store

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// compressHash folds a digest into size bytes by XOR, as Nix does.
func compressHash(d []byte, size int) []byte {
	out := make([]byte, size)
	for i, b := range d {
		out[i%size] ^= b
	}
	return out
}

// MakePath computes a store path from its type string, a sha256 digest and a
// name, as Nix's makeStorePath does.
func (d Dir) MakePath(typ string, sha256Digest []byte, name string) (Path, error) {
	if err := ValidName(name); err != nil {
		return "", err
	}
	s := typ + ":sha256:" + hex.EncodeToString(sha256Digest) + ":" + string(d) + ":" + name
	sum := sha256.Sum256([]byte(s))
	return d.Join(Encode32(compressHash(sum[:], 20)) + "-" + name), nil
}

// SourcePath is the content-addressed path of a file or tree whose NAR has
// the sha256 digest narHash, as `nix-store --add` computes it (recursive
// ingestion). refs are the other store items it refers to, self whether it
// refers to itself; with none, the path is exactly what `nix-store --add`
// gives.
func (d Dir) SourcePath(narHash []byte, name string, refs []Path, self bool) (Path, error) {
	var typ strings.Builder
	typ.WriteString("source")
	for _, r := range SortPaths(refs) {
		typ.WriteString(":")
		typ.WriteString(string(r))
	}
	if self {
		typ.WriteString(":self")
	}
	return d.MakePath(typ.String(), narHash, name)
}
