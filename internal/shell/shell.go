// Package shell is the one home of how storepack writes POSIX shell:
// quoting words and checking the names of exported variables, for the
// scripts the trees carry (squashfs's runscript and environment, an
// AppImage's AppRun).
package shell

import "strings"

// Name reports whether k is a name a POSIX shell can export.
func Name(k string) bool {
	for i, c := range k {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return k != ""
}

// Quote quotes s for a POSIX shell: in single quotes, where each single
// quote of s ends the quoting, is escaped with a backslash, and the
// quoting starts again.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
