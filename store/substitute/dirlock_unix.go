//go:build unix

package substitute

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/storepack/storepack/internal/atomicfile"
)

// useDir marks the substitutes folder dir in use by this run for as long
// as it is (a shared lock on dir/.lock), first removing the temporary
// folders killed runs left there when no other run uses it (when it gets
// the lock exclusively).
func useDir(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("substitutes: %w", err)
	}
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
		atomicfile.RemoveTemps(dir, false)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("substitutes: lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}
