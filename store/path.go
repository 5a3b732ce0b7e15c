// Package store reads Guix and Nix stores: store paths, Nix base32,
// content-addressed paths, the store database, reference scanning and
// closures. It never writes to a store.
package store

import (
	"fmt"
	"path"
	"strings"
)

// HashLen is the length of the hash part of a store path's base name.
const HashLen = 32

// MaxNameLen is the longest name a store path may have.
const MaxNameLen = 211

// Dir is a store folder, such as /gnu/store or /nix/store.
type Dir string

// Path is the full path of a store item, such as
// /gnu/store/fv3w4afhjjxq9558jq5kaj3jcj81a8rc-hello-2.12.
type Path string

// ParseDir validates a store folder: absolute, clean, not the root.
func ParseDir(d string) (Dir, error) {
	if d == "" || d[0] != '/' {
		return "", fmt.Errorf("store folder %q: not an absolute path", d)
	}
	if c := path.Clean(d); c != d || d == "/" {
		return "", fmt.Errorf("store folder %q: not a clean path (want %q)", d, c)
	}
	return Dir(d), nil
}

// Parse validates p as the path of a store item directly inside d.
func (d Dir) Parse(p string) (Path, error) {
	prefix := string(d) + "/"
	if !strings.HasPrefix(p, prefix) {
		return "", fmt.Errorf("%s: not in the store folder %s", p, d)
	}
	base := p[len(prefix):]
	if err := ValidBase(base); err != nil {
		return "", fmt.Errorf("%s: not a valid store path: %w", p, err)
	}
	return Path(p), nil
}

// ParseInside splits p, a path inside a store item (or the item itself),
// into the item's path and the rest, which is empty or starts with "/".
func (d Dir) ParseInside(p string) (Path, string, error) {
	prefix := string(d) + "/"
	if !strings.HasPrefix(p, prefix) {
		return "", "", fmt.Errorf("%s: not in the store folder %s", p, d)
	}
	base, rest := p[len(prefix):], ""
	if i := strings.IndexByte(base, '/'); i >= 0 {
		base, rest = base[:i], base[i:]
	}
	item, err := d.Parse(prefix + base)
	return item, rest, err
}

// Join gives the store path of base name base in d, unvalidated.
func (d Dir) Join(base string) Path { return Path(string(d) + "/" + base) }

// ValidBase checks a store item's base name: hash part, dash, name.
func ValidBase(base string) error {
	if len(base) < HashLen+2 || base[HashLen] != '-' {
		return fmt.Errorf("base name %q is not <32-character hash>-<name>", base)
	}
	for i := 0; i < HashLen; i++ {
		if nix32Index[base[i]] < 0 {
			return fmt.Errorf("hash part %q has a character outside Nix base32", base[:HashLen])
		}
	}
	return ValidName(base[HashLen+1:])
}

// ValidName checks the name part of a store path.
func ValidName(name string) error {
	if name == "" {
		return fmt.Errorf("empty name")
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("name %q is longer than %d characters", name, MaxNameLen)
	}
	if name[0] == '.' {
		return fmt.Errorf("name %q starts with a dot", name)
	}
	for i := 0; i < len(name); i++ {
		if !nameChar(name[i]) {
			return fmt.Errorf("name %q has the character %q, not allowed in store names", name, name[i])
		}
	}
	return nil
}

func nameChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("+-._?=", c) >= 0
}

// Dir is the store folder holding p.
func (p Path) Dir() Dir { return Dir(path.Dir(string(p))) }

// Base is the base name of p: hash part, dash, name.
func (p Path) Base() string { return path.Base(string(p)) }

// HashPart is the 32-character hash part of p.
func (p Path) HashPart() string { return p.Base()[:HashLen] }

// Name is the name part of p, after the hash and the dash.
func (p Path) Name() string { return p.Base()[HashLen+1:] }

// SplitName splits a store item's name into a package name and version
// as Nix does: the version starts after the first "-" that a digit
// follows ("hello-2.12" is hello 2.12, "gcc-lib" has no version).
func SplitName(name string) (pname, version string) {
	for i := 0; i+1 < len(name); i++ {
		if name[i] == '-' && name[i+1] >= '0' && name[i+1] <= '9' {
			return name[:i], name[i+1:]
		}
	}
	return name, ""
}

// String returns p as a plain string.
func (p Path) String() string { return string(p) }
