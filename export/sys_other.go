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

// flushData does nothing outside Linux: the fsync does the work.
func flushData(f *os.File) error { return nil }

// dropPages does nothing outside Linux.
func dropPages(f *os.File, off, n int64) {}
