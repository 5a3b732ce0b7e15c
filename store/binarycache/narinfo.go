package binarycache

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/bounded"
	"github.com/storepack/storepack/internal/compress"
	"github.com/storepack/storepack/internal/signing"
	"github.com/storepack/storepack/store"
)

// Compressions a cache's NARs may have, as the Compression field and the
// compression option write them.
const (
	CompressionXZ   = "xz"
	CompressionZstd = "zstd"
	CompressionNone = "none"
)

// narCompressions are the compressions a narinfo may name: those Nix
// writes, in the order messages list them, each with whether
// NewDecompressor reads a NAR file of it (all but br).
var narCompressions = []struct {
	name string
	read bool
}{
	{CompressionXZ, true}, {CompressionZstd, true}, {CompressionNone, true},
	{"bzip2", true}, {"gzip", true}, {"br", false},
}

// NarInfoCompressions lists the compressions a narinfo's Compression
// field may name: those Nix writes (xz, zstd, none, bzip2, gzip, br).
// ParseNarInfo and MarshalText take no other; NewDecompressor reads all
// but br.
func NarInfoCompressions() []string { return compressions(false) }

// compressions lists the names of narCompressions, only those
// NewDecompressor reads when readable is set.
func compressions(readable bool) []string {
	var out []string
	for _, c := range narCompressions {
		if c.read || !readable {
			out = append(out, c.name)
		}
	}
	return out
}

// narExt is the extension Nix gives a NAR file of each compression:
// ".nar" and the compressed file's extension.
func narExt(compression string) string {
	switch compression {
	case "bzip2":
		return ".nar.bz2"
	case "br":
		return ".nar.br"
	}
	return ".nar" + compress.Ext(format.Compression(compression))
}

// NarInfoFile is the name of p's narinfo in a cache: the hash part of
// its store path, then ".narinfo".
func NarInfoFile(p store.Path) string { return p.HashPart() + ".narinfo" }

// NarInfo is the content of a .narinfo file.
type NarInfo struct {
	// StorePath is the item's full store path.
	StorePath store.Path
	// URL is where its compressed NAR is, relative to the cache folder
	// (nar/<filehash>.nar.xz).
	URL string
	// Compression is the NAR file's compression: xz, zstd, none, ...
	Compression string
	// FileHash and FileSize are the sha256 and size of the NAR file.
	FileHash store.Hash
	FileSize int64
	// NarHash and NarSize are the sha256 and size of the NAR itself.
	NarHash store.Hash
	NarSize int64
	// References are the items it refers to, full paths, sorted (the file
	// holds their base names).
	References []store.Path
	// Deriver is the full path of the derivation that built it, or "".
	Deriver store.Path
	// System is the system it was built for, or "" (Nix writes none).
	System string
	// Sigs are its signatures, "<key name>:<base64>", in file order.
	Sigs []string
	// CA is its content address (e.g. "fixed:r:sha256:..."), or "".
	CA string
}

// Fingerprint is what a signature of n signs.
func (n *NarInfo) Fingerprint() string {
	return Fingerprint(n.StorePath, n.NarHash, n.NarSize, n.References)
}

// Fingerprint is the text a binary cache signature signs:
// "1;<path>;sha256:<nix32 NAR hash>;<NAR size>;<refs>", the references
// being full store paths, sorted, joined by commas.
func Fingerprint(p store.Path, narHash store.Hash, narSize int64, refs []store.Path) string {
	sorted := slices.Clone(refs)
	slices.Sort(sorted)
	var b strings.Builder
	b.WriteString("1;")
	b.WriteString(string(p))
	b.WriteString(";")
	b.WriteString(narHash.String())
	b.WriteString(";")
	b.WriteString(strconv.FormatInt(narSize, 10))
	b.WriteString(";")
	for i, r := range sorted {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(string(r))
	}
	return b.String()
}

// MarshalText writes n as Nix writes a .narinfo file: the fields in Nix's
// order, each "Key: value" on its own line, empty optional fields left
// out (References is always written, empty when there are none).
func (n *NarInfo) MarshalText() ([]byte, error) {
	if err := n.check(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	field := func(k, v string) {
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(v)
		b.WriteByte('\n')
	}
	field("StorePath", string(n.StorePath))
	field("URL", n.URL)
	field("Compression", n.Compression)
	field("FileHash", n.FileHash.String())
	field("FileSize", strconv.FormatInt(n.FileSize, 10))
	field("NarHash", n.NarHash.String())
	field("NarSize", strconv.FormatInt(n.NarSize, 10))
	refs := make([]string, len(n.References))
	for i, r := range n.References {
		refs[i] = r.Base()
	}
	field("References", strings.Join(refs, " "))
	if n.Deriver != "" {
		field("Deriver", n.Deriver.Base())
	}
	if n.System != "" {
		field("System", n.System)
	}
	for _, s := range n.Sigs {
		field("Sig", s)
	}
	if n.CA != "" {
		field("CA", n.CA)
	}
	return b.Bytes(), nil
}

// check validates the fields of n that MarshalText and ParseNarInfo
// share.
func (n *NarInfo) check() error {
	dir := n.StorePath.Dir()
	if _, err := dir.Parse(string(n.StorePath)); err != nil {
		return fmt.Errorf("StorePath: %w", err)
	}
	if err := checkURL(n.URL); err != nil {
		return err
	}
	if names := NarInfoCompressions(); !slices.Contains(names, n.Compression) {
		return fmt.Errorf("Compression %q is not one of %s", n.Compression, strings.Join(names, ", "))
	}
	if n.FileSize <= 0 {
		return fmt.Errorf("FileSize %d is not a positive number", n.FileSize)
	}
	if n.NarSize <= 0 {
		return fmt.Errorf("NarSize %d is not a positive number", n.NarSize)
	}
	for i, r := range n.References {
		if r.Dir() != dir {
			return fmt.Errorf("References: %s is not in the store folder %s of %s", r, dir, n.StorePath)
		}
		if _, err := dir.Parse(string(r)); err != nil {
			return fmt.Errorf("References: %w", err)
		}
		if i > 0 && n.References[i-1] >= r {
			return fmt.Errorf("References: %s and %s are not sorted or not unique", n.References[i-1].Base(), r.Base())
		}
	}
	if n.Deriver != "" {
		if n.Deriver.Dir() != dir {
			return fmt.Errorf("Deriver %s is not in the store folder %s", n.Deriver, dir)
		}
		if _, err := dir.Parse(string(n.Deriver)); err != nil {
			return fmt.Errorf("Deriver: %w", err)
		}
	}
	if n.System != "" && !signing.Printable(n.System) {
		return fmt.Errorf("System %q holds white space or control characters", n.System)
	}
	for _, s := range n.Sigs {
		if _, _, err := signing.ParseSignature(s); err != nil {
			return fmt.Errorf("Sig: %w", err)
		}
	}
	if n.CA != "" && !signing.Printable(n.CA) {
		return fmt.Errorf("CA %q holds white space or control characters", n.CA)
	}
	return nil
}

// checkURL accepts the URL of a NAR file inside the cache folder: a clean
// relative path, such as nar/<filehash>.nar.xz.
func checkURL(u string) error {
	if u == "" || path.IsAbs(u) || path.Clean(u) != u || u == "." || u == ".." || strings.HasPrefix(u, "../") ||
		!signing.Printable(u) || strings.ContainsAny(u, "\\?#") || strings.Contains(u, "://") {
		return fmt.Errorf("URL %q is not a clean relative path inside the cache folder", u)
	}
	return nil
}

// narInfoFields are the fields a narinfo may have; those marked true are
// required.
var narInfoFields = map[string]bool{
	"StorePath": true, "URL": true, "Compression": true, "FileHash": true,
	"FileSize": true, "NarHash": true, "NarSize": true, "References": true,
	"Deriver": false, "System": false, "Sig": false, "CA": false,
}

// narInfoOrder is the order of the required fields, for messages.
var narInfoOrder = []string{"StorePath", "URL", "Compression", "FileHash", "FileSize", "NarHash", "NarSize", "References"}

// ParseNarInfo reads a .narinfo file strictly: every line "Key: value"
// ending in a newline, only the fields Nix writes (StorePath, URL,
// Compression, FileHash, FileSize, NarHash, NarSize, References, Deriver,
// System, Sig, CA), the first eight required, none but Sig repeated,
// hashes as sha256:<Nix base32>, sizes positive decimal numbers,
// references valid base names in the store path's folder, sorted and
// unique, the URL a relative path inside the cache. A Deriver of
// "unknown-deriver" (written by old tools) means none. Errors give the
// line number.
func ParseNarInfo(data []byte) (*NarInfo, error) {
	if len(data) > bounded.NarInfo {
		return nil, fmt.Errorf("narinfo of %d bytes, more than %d: %w", len(data), bounded.NarInfo, bounded.ErrTooLarge)
	}
	if len(data) == 0 {
		return nil, errors.New("empty narinfo")
	}
	if data[len(data)-1] != '\n' {
		return nil, errors.New("narinfo does not end with a newline")
	}
	lines := strings.Split(string(data[:len(data)-1]), "\n")
	values := map[string]string{}
	lineOf := map[string]int{}
	n := &NarInfo{}
	for i, line := range lines {
		ln := i + 1
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			if k, _, ok := strings.Cut(line, ":"); ok && narInfoFields[k] && line == k+":" {
				return nil, fmt.Errorf("line %d: %q has no space after the colon (Nix writes \"%s: \")", ln, line, k)
			}
			return nil, fmt.Errorf("line %d: %q is not \"Key: value\"", ln, line)
		}
		if _, known := narInfoFields[k]; !known {
			return nil, fmt.Errorf("line %d: unknown field %q", ln, k)
		}
		if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return nil, fmt.Errorf("line %d: %s holds a control character", ln, k)
		}
		if k == "Sig" {
			if _, _, err := signing.ParseSignature(v); err != nil {
				return nil, fmt.Errorf("line %d: Sig: %w", ln, err)
			}
			n.Sigs = append(n.Sigs, v)
			continue
		}
		if prev, dup := lineOf[k]; dup {
			return nil, fmt.Errorf("line %d: %s repeats the field of line %d", ln, k, prev)
		}
		values[k], lineOf[k] = v, ln
	}
	for _, k := range narInfoOrder {
		if _, ok := values[k]; !ok {
			return nil, fmt.Errorf("no %s field", k)
		}
	}
	at := func(k string, err error) error { return fmt.Errorf("line %d: %w", lineOf[k], err) }

	sp := values["StorePath"]
	dir := store.Dir(path.Dir(sp))
	if _, err := store.ParseDir(string(dir)); err != nil {
		return nil, at("StorePath", fmt.Errorf("StorePath %q: %w", sp, err))
	}
	p, err := dir.Parse(sp)
	if err != nil {
		return nil, at("StorePath", fmt.Errorf("StorePath: %w", err))
	}
	n.StorePath = p
	n.URL = values["URL"]
	n.Compression = values["Compression"]
	for _, h := range []struct {
		k   string
		dst *store.Hash
	}{{"FileHash", &n.FileHash}, {"NarHash", &n.NarHash}} {
		if *h.dst, err = store.ParseHash(values[h.k]); err != nil {
			return nil, at(h.k, fmt.Errorf("%s: %w", h.k, err))
		}
	}
	for _, s := range []struct {
		k   string
		dst *int64
	}{{"FileSize", &n.FileSize}, {"NarSize", &n.NarSize}} {
		if *s.dst, err = parseSize(values[s.k]); err != nil {
			return nil, at(s.k, fmt.Errorf("%s: %w", s.k, err))
		}
	}
	if refs := values["References"]; refs != "" {
		for _, base := range strings.Split(refs, " ") {
			if err := store.ValidBase(base); err != nil {
				return nil, at("References", fmt.Errorf("References: %q: %w", base, err))
			}
			n.References = append(n.References, dir.Join(base))
		}
	}
	if d, ok := values["Deriver"]; ok && d != "unknown-deriver" {
		if err := store.ValidBase(d); err != nil {
			return nil, at("Deriver", fmt.Errorf("Deriver: %w", err))
		}
		n.Deriver = dir.Join(d)
	}
	n.System = values["System"]
	if _, ok := values["System"]; ok && n.System == "" {
		return nil, at("System", errors.New("empty System"))
	}
	n.CA = values["CA"]
	if _, ok := values["CA"]; ok && n.CA == "" {
		return nil, at("CA", errors.New("empty CA"))
	}
	if err := n.check(); err != nil {
		for k := range lineOf {
			if strings.HasPrefix(err.Error(), k) {
				return nil, at(k, err)
			}
		}
		return nil, err
	}
	return n, nil
}

// parseSize reads a positive decimal number without sign or leading zero.
func parseSize(s string) (int64, error) {
	if s == "" || s[0] == '0' || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a positive decimal number", s)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return v, nil
}
