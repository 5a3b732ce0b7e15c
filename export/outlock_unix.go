//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package export

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockOutDir takes the exclusive advisory lock (flock) on the output
// folder's OutLockFile, waiting while another export holds it, and returns
// the function that releases it. The lock goes away with the process, so a
// killed export never leaves the folder locked.
func lockOutDir(outDir string) (func(), error) {
	p := filepath.Join(outDir, OutLockFile)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("output folder %s: cannot create the lock file %s: %w", outDir, OutLockFile, bare(err))
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("output folder %s: lock %s: %w", outDir, p, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
