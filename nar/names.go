package nar

import (
	"errors"
	"strings"
)

// checkName enforces what Nix allows as a directory entry name.
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty entry name")
	case name == "." || name == "..":
		return errors.New("entry name " + name + " is not allowed")
	case strings.ContainsAny(name, "/\x00"):
		return errors.New("entry name " + quote(name) + " contains '/' or NUL")
	}
	return nil
}

func quote(s string) string { return "\"" + strings.ReplaceAll(s, "\"", "\\\"") + "\"" }
