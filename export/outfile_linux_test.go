package export

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestWritebackDropsPages: what a writebackFile made durable leaves the
// page cache, so that later writes reuse its pages.
func TestWritebackDropsPages(t *testing.T) {
	dir := t.TempDir()
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Type == unix.TMPFS_MAGIC {
		t.Skipf("%s is a tmpfs, whose pages are the files themselves and are never dropped", dir)
	}
	f, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const flushChunk = 512 << 10
	data, r := randomBytes(3 << 20)
	w := newWritebackFile(f, writeback{chunk: 64 << 10, flushChunk: flushChunk, flush: flushData})
	writeUneven(t, w, data, r)
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, len(data), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	pages := (len(data) + os.Getpagesize() - 1) / os.Getpagesize()
	resident := make([]byte, pages)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&resident[0]))); errno != 0 {
		t.Fatalf("mincore: %v", errno)
	}
	// The first flushed chunk was dropped before the last ones were
	// written: none of its pages are left.
	first := flushChunk / os.Getpagesize()
	for i, v := range resident[:first] {
		if v&1 != 0 {
			t.Fatalf("page %d of %d in the first %d bytes, made durable, is still in the page cache", i, first, flushChunk)
		}
	}
	// The end, written after the last flush, is still there.
	if resident[pages-1]&1 == 0 {
		t.Errorf("the last page, not flushed yet, is not in the page cache")
	}
}
