package export

import (
	"os"

	"golang.org/x/sys/unix"
)

// exchange swaps the folders a and b in one step (renameat2 with
// RENAME_EXCHANGE); it fails on file systems that cannot.
func exchange(a, b string) error {
	return unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
}

// startWriteback starts writing n bytes of f at off to disk, without
// waiting (sync_file_range), so that a later fsync has less to wait for.
// It is a hint: errors are left to that fsync.
func startWriteback(f *os.File, off, n int64) {
	unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// flushData makes the data written to f durable (fdatasync), with the
// metadata needed to read it back.
func flushData(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }

// dropPages drops n bytes of f at off from the page cache
// (posix_fadvise's DONTNEED), once they are durable. It is a hint.
func dropPages(f *os.File, off, n int64) { unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED) }
