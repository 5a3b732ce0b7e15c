package nar

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Limits the Reader and Writer apply. Nix writes nothing beyond them: Linux
// file names are at most 255 bytes (NAME_MAX) and symlink targets at most
// 4095 (PATH_MAX less its NUL). Newer Nix parsers bound tags, names and
// targets the same way; the depth bound is storepack's own, so that a
// hostile archive cannot make every header carry a huge path.
const (
	maxTag    = 32   // longest token accepted where a keyword is expected
	maxName   = 255  // longest entry name
	maxTarget = 4095 // longest symlink target
	maxDepth  = 256  // deepest nesting of folders below the root
)

// checkName enforces what Nix allows as a folder entry name.
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty entry name")
	case name == "." || name == "..":
		return fmt.Errorf("entry name %q is not allowed", name)
	case strings.IndexByte(name, '/') >= 0:
		return fmt.Errorf("entry name %s contains '/'", quote(name))
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("entry name %s contains NUL", quote(name))
	case len(name) > maxName:
		return fmt.Errorf("entry name of %d bytes is longer than %d", len(name), maxName)
	}
	return nil
}

// checkTarget enforces what a symlink target may be: what symlink(2) and
// Nix's parser accept.
func checkTarget(target string) error {
	switch {
	case target == "":
		return errors.New("empty symlink target")
	case strings.IndexByte(target, 0) >= 0:
		return fmt.Errorf("symlink target %s contains NUL", quote(target))
	case len(target) > maxTarget:
		return fmt.Errorf("symlink target of %d bytes is longer than %d", len(target), maxTarget)
	}
	return nil
}

// quote renders a name for an error message, escaping what is not
// printable; long names are cut.
func quote(s string) string {
	if len(s) > 80 {
		return strconv.Quote(s[:80]) + "..."
	}
	return strconv.Quote(s)
}
