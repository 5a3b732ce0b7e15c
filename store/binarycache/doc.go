// Package binarycache reads, writes and checks Nix binary caches: the
// folders that `nix copy --to file://DIR` writes and that Nix (and Guix,
// whose `guix publish` serves the same narinfo format) substitutes store
// paths from.
//
// A cache folder holds:
//
//   - nix-cache-info: "StoreDir: <store folder>", "WantMassQuery: 1",
//     "Priority: 40";
//   - <hashpart>.narinfo for each store item: its store path, the URL of its
//     compressed NAR, the compression, the sha256 and size of the
//     compressed file (FileHash, FileSize) and of the NAR (NarHash,
//     NarSize), its references (base names), its deriver and its
//     signatures;
//   - nar/<filehash>.nar.xz, .nar.zst or .nar: the NARs, named by the Nix
//     base32 sha256 of the file itself.
//
// A signature is ed25519 over the item's fingerprint
// "1;<store path>;sha256:<nix32 NAR hash>;<NAR size>;<references>" (full
// paths, sorted, comma-joined), written "<key name>:<base64>". Keys are
// written as `nix-store --generate-binary-cache-key` writes them:
// "<name>:<base64 of the 64-byte secret key>" and "<name>:<base64 of the
// 32-byte public key>", without a newline.
//
// Write adds a closure to a cache, streaming each NAR through the
// compressor into a temporary file next to its final name, so memory stays
// bounded whatever the size of an item, and renaming it into place before
// the narinfo that points at it: a reader of the cache never sees a narinfo
// without its NAR. Entries already in the cache are checked and never
// rewritten. Verify checks a whole cache against a public key.
//
// A cache is a Cache: a folder (Dir) or an S3 bucket (S3, an s3:// URL as
// Nix names them, reached with aws-sdk-go-v2 and its default credential
// chain), holding the same files under the same names; WriteCache and
// VerifyCache work on either.
package binarycache
