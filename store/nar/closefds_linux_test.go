package nar

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCloseFds closes some of a row of open files, with close_range and
// without: exactly those are closed, the ones between them stay open.
func TestCloseFds(t *testing.T) {
	for _, withRange := range []bool{true, false} {
		name := "close_range"
		if !withRange {
			name = "close"
		}
		t.Run(name, func(t *testing.T) {
			defer noCloseRange.Store(noCloseRange.Load())
			noCloseRange.Store(!withRange)
			var fds []int
			for range 9 {
				fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
				if err != nil {
					t.Fatal(err)
				}
				fds = append(fds, fd)
			}
			closed := map[int]bool{}
			defer func() {
				for _, fd := range fds {
					if !closed[fd] {
						unix.Close(fd)
					}
				}
			}()
			// Three runs and a single one, given out of order; the
			// others stay open.
			var give []int
			for _, i := range []int{8, 1, 2, 0, 5, 4, 6} {
				give = append(give, fds[i])
				closed[fds[i]] = true
			}
			closeFds(give)
			for _, fd := range fds {
				_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
				if open := err == nil; open == closed[fd] {
					t.Errorf("fd %d: open %v after closeFds, want %v", fd, open, !closed[fd])
				}
			}
			if withRange && noCloseRange.Load() {
				t.Log("close_range refused here: closed one by one")
			}
		})
	}
}
