//go:build !linux

package export

import "errors"

// exchange is not available outside Linux: swapDir then moves the old
// folder aside first.
func exchange(a, b string) error { return errors.New("no atomic exchange of folders on this system") }
