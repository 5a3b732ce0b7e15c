//go:build !linux

package export

import (
	"errors"
	"os"
)

// exchange is not available outside Linux: swapDir then moves the old
// folder aside first.
func exchange(a, b string) error { return errors.New("no atomic exchange of folders on this system") }

// startWriteback does nothing outside Linux: the fsync does the work.
func startWriteback(f *os.File, off, n int64) {}
