//go:build !linux

package layercache

import "errors"

// reflink is only tried on Linux.
func reflink(src, dst string) error { return errors.New("no reflink") }
