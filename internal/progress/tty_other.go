//go:build !linux

package progress

import "os"

// terminalWidth reports whether f is a terminal: never, on systems other
// than Linux, which get plain lines.
func terminalWidth(f *os.File) (int, bool) { return 0, false }
